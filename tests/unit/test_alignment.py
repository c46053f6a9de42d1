"""Alignment and liveness crops put the face where the models expect it."""

from __future__ import annotations

import numpy as np
import pytest

from preprocessing.alignment import (
    CHIP_SIZE,
    CHIP_TEMPLATE,
    LIVENESS_CROP_SIZE,
    align_chip,
    liveness_crops,
    similarity_transform,
)
from preprocessing.detection import Face


def test_similarity_transform_recovers_a_known_rotation_scale_and_shift():
    angle, scale, shift = np.deg2rad(17), 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = CHIP_TEMPLATE
    target = scale * source @ rotation.T + shift
    matrix = similarity_transform(source, target)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)


def test_align_chip_puts_a_landmark_dot_on_its_template_position():
    image = np.zeros((400, 400, 3), dtype=np.uint8)
    landmarks = CHIP_TEMPLATE * 2 + 50
    nose = landmarks[2].round().astype(int)
    image[nose[1] - 2:nose[1] + 3, nose[0] - 2:nose[0] + 3] = (0, 0, 255)  # red in BGR
    chip = align_chip(image, landmarks)
    assert chip.shape == (CHIP_SIZE, CHIP_SIZE, 3)
    y, x = np.unravel_index(chip[:, :, 0].argmax(), chip.shape[:2])  # red channel in RGB
    assert (x, y) == pytest.approx(tuple(CHIP_TEMPLATE[2]), abs=1.5)


def test_liveness_crops_are_80x80_and_stay_inside_a_small_photo():
    image = np.random.default_rng(0).integers(0, 255, (120, 100, 3), dtype=np.uint8)
    face = Face(box=(60.0, 70.0, 40.0, 45.0), landmarks=np.zeros((5, 2), np.float32), score=0.9)
    crop_v2, crop_v1se = liveness_crops(image, face)
    assert crop_v2.shape == crop_v1se.shape == (LIVENESS_CROP_SIZE, LIVENESS_CROP_SIZE, 3)
