"""The FLOP counts behind the peak and the models' shares agree with each other."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.flops import KERNELS, _kernel_model, count_flops, kernel_flops


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_peak_kernels_are_counted_as_the_models_are(kernel, tmp_path):
    op, shape, weight_shape = KERNELS[kernel]
    path = tmp_path / "kernel.onnx"
    path.write_bytes(_kernel_model(op, shape, np.zeros(weight_shape, dtype=np.float32)))
    assert count_flops(path) == pytest.approx(kernel_flops(kernel))
