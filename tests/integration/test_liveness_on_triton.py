"""The liveness model served by Triton gives the torch reference's probabilities: to 1e-4 in
f32 (the ONNX file itself: tests/unit/test_liveness_onnx.py), to within bfloat16 rounding where
its `ModelSpec.cpu_runtime` serves it in bf16."""

from __future__ import annotations

import numpy as np

from model_repository.specs import FACE_LIVENESS
from tests.unit.test_liveness_onnx import PROBS_TOLERANCE, REFERENCE, _photo_crops, _random_crops

SERVED_TOLERANCE = PROBS_TOLERANCE if FACE_LIVENESS.cpu_runtime.precision == "f32" else 0.03
"""bf16 moved P(real) by at most 0.01 on the photo crops and a class probability by 0.02 on
random crops; it changed no liveness decision on the 305 clips of benchmarks/README.md."""


async def test_triton_face_liveness_matches_the_torch_reference(models):
    photo_v2, photo_v1se = _photo_crops()
    random_v2, random_v1se = _random_crops()
    result = await models.infer(FACE_LIVENESS, {
        "crop_v2": np.concatenate([photo_v2, random_v2]),
        "crop_v1se": np.concatenate([photo_v1se, random_v1se]),
    })
    assert np.abs(result["probs"] - REFERENCE["probs"]).max() < SERVED_TOLERANCE
    assert np.abs(result["p_real"] - REFERENCE["p_real"]).max() < SERVED_TOLERANCE


async def test_liveness_helper_returns_one_probability_per_face(models):
    crop_v2, crop_v1se = _photo_crops()
    p_real = await models.liveness(crop_v2, crop_v1se)
    assert p_real.shape == (len(crop_v2),)
    np.testing.assert_allclose(p_real, REFERENCE["p_real"][: len(crop_v2), 0],
                               atol=SERVED_TOLERANCE)
