"""The colour-moire cue tells a screen's pixel grid from a face's own detail."""

from __future__ import annotations

import math

import cv2
import numpy as np

from preprocessing.recapture import chroma_ripple, recapture_score


def _face_and_screen() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    detail = cv2.GaussianBlur(rng.uniform(60, 200, (160, 160)).astype(np.float32), (0, 0), 1.5)
    tint = np.array([0.75, 0.85, 1.0], np.float32)  # skin: detail in brightness, one colour
    face = np.clip(detail[..., None] * tint, 0, 255).astype(np.uint8)
    stripes = np.zeros((160, 160, 3), np.float32)
    for column in range(160):
        stripes[:, column, (column // 2) % 3] = 40.0  # R, G, B bands two pixels wide
    screen = np.clip(face.astype(np.float32) * 0.8 + stripes, 0, 255).astype(np.uint8)
    return face, screen


def test_a_subpixel_grid_over_the_face_reads_as_a_screen_and_plain_detail_does_not():
    face, screen = _face_and_screen()
    box = (10.0, 10.0, 140.0, 140.0)
    plain, grid = chroma_ripple(face, box), chroma_ripple(screen, box)
    assert plain < 0.45 < grid
    assert recapture_score([plain])[1] == 1.0
    assert recapture_score([grid, grid])[1] < 0.5


def test_no_measurable_frame_is_no_evidence():
    face, _ = _face_and_screen()
    assert chroma_ripple(face, (500.0, 500.0, 50.0, 50.0)) is None
    median, score = recapture_score([None, None])
    assert math.isnan(median) and math.isnan(score)
