"""The embedder served by Triton computes dlib's own descriptor: exactly in f32 (the ONNX
file against dlib: tests/unit/test_embedder_onnx.py), and to within bfloat16 rounding where
its `ModelSpec.cpu_runtime` serves it in bf16."""

from __future__ import annotations

import cv2
import dlib
import numpy as np
import pytest

from model_repository.specs import FACE_EMBEDDER
from model_repository.weights import default_cache_dir, locate
from preprocessing.alignment import align_chip


@pytest.fixture(scope="module")
async def real_chips(pipeline, data_dir) -> np.ndarray:
    chips = []
    for path in sorted((data_dir / "faces").glob("*/*_0001.jpg"))[:12]:
        image = cv2.imread(str(path))
        faces = await pipeline.detect(image)
        chips.append(align_chip(image, faces[0].landmarks))
    return np.stack(chips)


async def test_triton_face_embedder_matches_dlib_on_the_same_real_chips(models, real_chips):
    dat = locate(FACE_EMBEDDER.weights[0], None, default_cache_dir())
    dlib_net = dlib.face_recognition_model_v1(str(dat))
    expected = np.array([dlib_net.compute_face_descriptor(chip) for chip in real_chips])
    served = await models.embed(real_chips)
    assert served.shape == (len(real_chips), 128)
    if FACE_EMBEDDER.cpu_runtime.precision == "f32":
        assert np.abs(served - expected).max() < 1e-4
    else:  # bf16: the same descriptor; distances move by well under the calibration's step
        cosine = (served * expected).sum(1) / np.linalg.norm(served, axis=1) / np.linalg.norm(
            expected, axis=1)
        assert cosine.min() > 0.9999
        assert np.linalg.norm(served - expected, axis=1).max() < 0.02  # same-person d ~0.4
