"""Recapture evidence: the colour moire of a screen's sub-pixel grid over the face.

A camera filming a screen samples the panel's R, G, B stripes without a low-pass filter: they
alias into bands of alternating colour over the face. A face's own detail (skin, eyes, hair) is
mostly in brightness, and video codecs keep colour at half resolution, so in a live face the
band-passed colour energy is a small fraction of the brightness one. It catches a screen held
so close that it fills the frame (no bezel for MiniFASNet to see); live clips, their degraded
copies included, measured at most 0.438, screens filling the frame 0.508-0.526
(benchmarks/liveness_robustness.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import cv2
import numpy as np

Box = tuple[float, float, float, float]

SIDE_PX = 128  # the inner face is scaled to this side
BAND_SIGMAS = (1.0, 4.0)  # difference of Gaussians at SIDE_PX: the stripes' band
SCORE_LOW, SCORE_HIGH = 0.45, 0.50  # ripple: 1 (live-like) at or below LOW, 0 at or above HIGH


def chroma_ripple(image_bgr: np.ndarray, box: Box) -> float | None:
    """RMS band-passed chroma (Cr, Cb) over RMS band-passed luma, inside the central 80% of the
    face box; None for a box (nearly) outside the frame."""
    x, y, w, h = box
    height, width = image_bgr.shape[:2]
    x0, y0 = max(0, int(x + 0.1 * w)), max(0, int(y + 0.1 * h))
    x1, y1 = min(width, int(x + 0.9 * w)), min(height, int(y + 0.9 * h))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    interpolation = cv2.INTER_AREA if w > SIDE_PX else cv2.INTER_LINEAR
    patch = cv2.resize(image_bgr[y0:y1, x0:x1], (SIDE_PX, SIDE_PX), interpolation=interpolation)
    ycc = cv2.cvtColor(patch, cv2.COLOR_BGR2YCrCb).astype(np.float32)
    low, high = BAND_SIGMAS
    band = cv2.GaussianBlur(ycc, (0, 0), low) - cv2.GaussianBlur(ycc, (0, 0), high)
    luma = float(np.sqrt(np.mean(band[..., 0] ** 2)))
    chroma = float(np.sqrt(np.mean(band[..., 1] ** 2 + band[..., 2] ** 2)))
    return chroma / max(luma, 0.5)


def recapture_score(ripples: Iterable[float | None]) -> tuple[float, float]:
    """(median ripple, score): the score 1 at or below SCORE_LOW, 0 at or above SCORE_HIGH,
    linear between; (nan, nan) when no frame could be measured."""
    values = [v for v in ripples if v is not None]
    if not values:
        return math.nan, math.nan
    median = float(np.median(values))
    return median, float(np.clip((SCORE_HIGH - median) / (SCORE_HIGH - SCORE_LOW), 0.0, 1.0))
