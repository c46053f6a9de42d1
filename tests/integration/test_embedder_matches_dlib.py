"""The embedder served by Triton computes dlib's own descriptor."""

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
    assert np.abs(served - expected).max() < 1e-4
