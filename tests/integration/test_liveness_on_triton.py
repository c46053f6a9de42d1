"""The liveness model served by Triton gives the torch reference's probabilities."""

from __future__ import annotations

import numpy as np

from model_repository.specs import FACE_LIVENESS
from tests.unit.test_liveness_onnx import PROBS_TOLERANCE, REFERENCE, _photo_crops, _random_crops


async def test_triton_face_liveness_matches_the_torch_reference(models):
    photo_v2, photo_v1se = _photo_crops()
    random_v2, random_v1se = _random_crops()
    result = await models.infer(FACE_LIVENESS, {
        "crop_v2": np.concatenate([photo_v2, random_v2]),
        "crop_v1se": np.concatenate([photo_v1se, random_v1se]),
    })
    assert np.abs(result["probs"] - REFERENCE["probs"]).max() < PROBS_TOLERANCE
    assert np.abs(result["p_real"] - REFERENCE["p_real"]).max() < PROBS_TOLERANCE


async def test_liveness_helper_returns_one_probability_per_face(models):
    crop_v2, crop_v1se = _photo_crops()
    p_real = await models.liveness(crop_v2, crop_v1se)
    assert p_real.shape == (len(crop_v2),)
    np.testing.assert_allclose(p_real, REFERENCE["p_real"][: len(crop_v2), 0], atol=PROBS_TOLERANCE)
