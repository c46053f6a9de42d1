"""Which detections are faces that can be compared: not fragments, not too small, not too soft.

The detector also returns partial faces: a face cut by the photo's edge, the part of a face
that another face covers, a background face a few pixels wide or out of focus. Their
descriptors are unreliable, and two such fragments can score as a match, so they are left out
of every comparison. `unusable_reason` says why a detection is left out, or None for a usable
face. The thresholds are measured on the shared group photos and grids of real portraits
(`python -m benchmarks.fragments_eval`, `benchmarks/results/fragments.md`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preprocessing.detection import Face
from preprocessing.quality import blur_of_face

CUT_OFF = "cut_off"
COVERED = "covered"
TOO_SMALL = "too_small"
TOO_BLURRED = "too_blurred"
REASONS = (CUT_OFF, COVERED, TOO_SMALL, TOO_BLURRED)


@dataclass(frozen=True)
class UsabilityRule:
    """Attributes:
    min_face_width_px: faces whose box is narrower are too small (the box, not the eye
        distance, which a turned head shortens).
    max_outside: share of the face's box that may lie outside the photo.
    max_covered: share of the face's box that a more confident face's box may cover.
    max_blur: blurrier faces (`preprocessing.quality` blur, 0 .. 1) are too soft.
    """

    min_face_width_px: float = 30.0
    max_outside: float = 0.2
    max_covered: float = 0.5
    max_blur: float = 0.72


DEFAULT_RULE = UsabilityRule()


def _outside_share(face: Face, shape: tuple[int, ...]) -> float:
    x, y, w, h = face.box
    height, width = shape[:2]
    inside_w = max(0.0, min(x + w, width) - max(x, 0.0))
    inside_h = max(0.0, min(y + h, height) - max(y, 0.0))
    return 1.0 - inside_w * inside_h / (w * h)


def _covered_share(face: Face, others: list[Face]) -> float:
    x, y, w, h = face.box
    share = 0.0
    for other in others:
        if other is face or other.score <= face.score:
            continue
        ox, oy, ow, oh = other.box
        cover_w = max(0.0, min(x + w, ox + ow) - max(x, ox))
        cover_h = max(0.0, min(y + h, oy + oh) - max(y, oy))
        share = max(share, cover_w * cover_h / (w * h))
    return share


def unusable_reason(
    image_bgr: np.ndarray, face: Face, faces: list[Face], rule: UsabilityRule = DEFAULT_RULE
) -> str | None:
    """Why the face cannot be compared (one of `REASONS`), or None when it can.

    Args:
        image_bgr: the photo the faces were found in.
        face: the detection to judge.
        faces: every detection of the photo (a more confident one may cover this one).
        rule: the thresholds.
    """
    if _outside_share(face, image_bgr.shape) > rule.max_outside:
        return CUT_OFF
    if _covered_share(face, faces) > rule.max_covered:
        return COVERED
    if face.box[2] < rule.min_face_width_px:
        return TOO_SMALL
    if blur_of_face(image_bgr, face) > rule.max_blur:
        return TOO_BLURRED
    return None


def usable_faces(
    image_bgr: np.ndarray, faces: list[Face], rule: UsabilityRule = DEFAULT_RULE
) -> list[Face]:
    """The faces that can be compared, in their order."""
    return [f for f in faces if unusable_reason(image_bgr, f, faces, rule) is None]
