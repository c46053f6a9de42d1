"""Temporal liveness evidence: does the face move like a flat picture?

A photo held up to the camera is a plane, so between two frames its image moves by one
homography however it is tilted or shaken; a live face does not. For each pair of sampled
frames, corners in the face are tracked (pyramidal Lucas-Kanade, two passes), a homography is
fitted, and the RMS residual of the corners from it, in % of the face width, is the pair's
evidence; `planarity` takes the 90th percentile over the pairs where the face moved and
ramps it to a score. A pair where the face barely moved says nothing (a still live face and a
still print look alike), so it is no evidence, never "flat"; with too few moving pairs the cue
abstains. Why each step, the measured separation and where it fails: docs/motion.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[float, float, float, float]

PAIR_GAP_S = (0.15, 0.3)  # frames further apart than this are not compared
FACE_WIDTH_PX = 180.0  # faces are scaled to this width before tracking
MIN_FACE_PX = 40.0  # narrower faces (in the frame as given) are not measured
CROP_MARGIN = 0.35  # of the face width, around both boxes: room for widening and windows
MASK_WIDEN = 0.1  # the box is widened by this much of its width on each side for corners
PRE_BLUR_PX = 1.5  # Gaussian sigma, at FACE_WIDTH_PX
MAX_CORNERS = 120
CORNER_QUALITY = 0.01
CORNER_DISTANCE_PX = 6
MIN_CORNERS = 12
LK_WINDOW_PX = 21
LK_LEVELS = 3  # first pass: up to ~80 px of motion at FACE_WIDTH_PX
REFINE_LEVELS = 1  # second pass, after the warp: the motion left is small
FB_MAX_PX = 0.5  # forward-backward tracking disagreement allowed
RANSAC_PX = 1.0
# score = 0 at or below RAMP_LOW_PCT, 1 at or above RAMP_HIGH_PCT, linear between
# (residual_p90 in % of face width; chosen from the measurements in benchmarks/motion.md).
RAMP_LOW_PCT = 0.5
RAMP_HIGH_PCT = 0.9
# Which pairs are evidence (benchmarks/liveness_robustness.md): the face must have moved at
# least MIN_MOTION_PCT of its width; pairs are looked for over the whole window, at most
# MAX_PAIRS moving ones are used and the tracking work is capped at BUDGET_PAIRS full pairs
# (a still pair stops after the forward track and costs STILL_PAIR_COST); with fewer than
# MIN_PAIRS moving pairs the cue gives no evidence.
WINDOW_S = 10.0
MIN_MOTION_PCT = 1.5
MAX_PAIRS = 17
MIN_PAIRS = 3
BUDGET_PAIRS = 17.0
STILL_PAIR_COST = 0.5

_LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)


@dataclass(frozen=True)
class MotionEvidence:
    """How far a face's motion is from that of a flat picture.

    Attributes:
        residual_p90: 90th percentile over the moving frame pairs of the RMS distance of
            tracked corners from the best homography, in % of the face width; nan without
            evidence (fewer than the minimum of moving pairs).
        pairs: moving frame pairs measured.
        score: 0 (moves like a plane: photo-like) to 1 (non-rigid: live-like), a linear ramp
            over residual_p90 from RAMP_LOW_PCT to RAMP_HIGH_PCT; nan when residual_p90 is.
        still_pairs: pairs where the face moved too little to say anything.
    """

    residual_p90: float
    pairs: int
    score: float
    still_pairs: int = 0


@dataclass(frozen=True)
class PairEvidence:
    """One frame pair: how far the face moved (% of its width), and its residual from the
    homography (None when it moved too little to be measured)."""

    motion_pct: float
    residual: float | None


def ramp_score(residual_p90: float) -> float:
    """The score for a residual_p90: RAMP_LOW_PCT -> 0, RAMP_HIGH_PCT -> 1, clipped; nan -> nan."""
    if math.isnan(residual_p90):
        return math.nan
    return float(np.clip((residual_p90 - RAMP_LOW_PCT) / (RAMP_HIGH_PCT - RAMP_LOW_PCT), 0, 1))


def planarity(
    frames: Sequence[np.ndarray], times_s: Sequence[float], boxes: Sequence[Box | None], *,
    window_s: float = WINDOW_S, min_motion_pct: float = MIN_MOTION_PCT,
    max_pairs: int = MAX_PAIRS, min_pairs: int = MIN_PAIRS, budget_pairs: float = BUDGET_PAIRS,
) -> MotionEvidence:
    """Measure how non-planar the subject's face moves where it moves.

    Args:
        frames: BGR (or grey) images of one video at increasing times, about 0.2 s apart,
            all at one scale (downscaled is fine while the face stays >= MIN_FACE_PX wide).
        times_s: each frame's time in seconds.
        boxes: the tracked subject's face box (x, y, w, h) in each frame, None where there is
            no face.
        window_s: only pairs whose later frame lies within this many seconds of the first
            frame count.
        min_motion_pct: a pair whose face moved less is no evidence.
        max_pairs: at most this many moving pairs are measured.
        min_pairs: with fewer moving pairs there is no evidence (nan).
        budget_pairs: the tracking work allowed, in full pairs (a still pair costs
            STILL_PAIR_COST): no clip costs more than this many pairs.

    Returns:
        The evidence; residual_p90 and score are nan when fewer than `min_pairs` moving
        pairs could be measured.

    Raises:
        ValueError: frames, times_s and boxes differ in length.
    """
    if not len(frames) == len(times_s) == len(boxes):
        raise ValueError(
            f"frames, times_s and boxes differ in length: {len(frames)}, {len(times_s)}, "
            f"{len(boxes)}"
        )
    residuals: list[float] = []
    still, spent = 0, 0.0
    for i in range(len(frames) - 1):
        if (times_s[i + 1] - times_s[0] > window_s + 1e-6 or len(residuals) >= max_pairs
                or spent >= budget_pairs - 1e-9):
            break
        gap = times_s[i + 1] - times_s[i]
        if boxes[i] is None or boxes[i + 1] is None or not PAIR_GAP_S[0] <= gap <= PAIR_GAP_S[1]:
            continue
        pair = measure_pair(frames[i], frames[i + 1], boxes[i], boxes[i + 1],
                            min_motion_pct=min_motion_pct)
        if pair is None or pair.residual is None:
            still += pair is not None
            spent += STILL_PAIR_COST
            continue
        residuals.append(pair.residual)
        spent += 1.0
    if len(residuals) < max(min_pairs, 1):
        return MotionEvidence(math.nan, len(residuals), math.nan, still)
    p90 = float(np.percentile(residuals, 90))
    return MotionEvidence(p90, len(residuals), ramp_score(p90), still)


def pair_residual(frame0: np.ndarray, frame1: np.ndarray, box0: Box, box1: Box) -> float | None:
    """RMS distance (% of face width) of the face's corners from the homography between two
    frames, or None when it cannot be measured (face too small, too few corners tracked)."""
    pair = measure_pair(frame0, frame1, box0, box1, min_motion_pct=0.0)
    return None if pair is None else pair.residual


def measure_pair(
    frame0: np.ndarray, frame1: np.ndarray, box0: Box, box1: Box, *, min_motion_pct: float
) -> PairEvidence | None:
    """The face's motion between two frames and, when it moved at least `min_motion_pct` of
    its width, its residual from the homography; None when it cannot be measured (face too
    small, too few corners tracked). A still pair stops after the forward track."""
    corners = _corners(frame0, frame1, box0, box1)
    if corners is None:
        return None
    grey0, grey1, mask, start = corners
    moved, found = _flow(grey0, grey1, start, LK_LEVELS)
    if found.sum() < MIN_CORNERS:
        return None
    if _motion_pct(start[found], moved[found]) < min_motion_pct:
        return PairEvidence(_motion_pct(start[found], moved[found]), None)
    kept = found & _tracks_back(grey0, grey1, start, moved, LK_LEVELS)
    if kept.sum() < MIN_CORNERS:
        return None
    motion = _motion_pct(start[kept], moved[kept])
    if motion < min_motion_pct:
        return PairEvidence(motion, None)
    rough, _ = cv2.findHomography(start[kept], moved[kept], cv2.RANSAC, RANSAC_PX)
    if rough is None:
        return None
    height, width_px = grey0.shape
    back = cv2.warpPerspective(grey1, rough, (width_px, height),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
    back = _match_brightness(back, grey0, mask)
    refined, kept_again = _track(grey0, back, start, REFINE_LEVELS)
    kept &= kept_again
    if kept.sum() < MIN_CORNERS:
        return None
    fine, _ = cv2.findHomography(start[kept], refined[kept], cv2.RANSAC, RANSAC_PX)
    if fine is None:
        return None
    off = cv2.perspectiveTransform(start[kept], fine) - refined[kept]
    rms_px = float(np.sqrt(np.mean(np.sum(off**2, axis=-1))))
    return PairEvidence(motion, 100 * rms_px / FACE_WIDTH_PX)


def pair_motion(frame0: np.ndarray, frame1: np.ndarray, box0: Box, box1: Box) -> float | None:
    """How far the face moved between two frames (% of its width), from the corners that track
    both ways; None when it cannot be measured."""
    corners = _corners(frame0, frame1, box0, box1)
    if corners is None:
        return None
    grey0, grey1, _, start = corners
    moved, kept = _track(grey0, grey1, start, LK_LEVELS)
    return None if kept.sum() < MIN_CORNERS else _motion_pct(start[kept], moved[kept])


def _corners(frame0: np.ndarray, frame1: np.ndarray, box0: Box, box1: Box
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Both frames' face crops, the corner mask, and the corners to track in the first."""
    if (box0[2] + box1[2]) / 2 < MIN_FACE_PX:
        return None
    crops = _face_crops(frame0, frame1, box0, box1)
    if crops is None:
        return None
    grey0, grey1, mask = crops
    start = cv2.goodFeaturesToTrack(grey0, MAX_CORNERS, CORNER_QUALITY, CORNER_DISTANCE_PX,
                                    mask=mask, blockSize=5)
    if start is None or len(start) < MIN_CORNERS:
        return None
    return grey0, grey1, mask, start


def _motion_pct(start: np.ndarray, moved: np.ndarray) -> float:
    shift = (moved - start).reshape(-1, 2)
    return float(100 * np.sqrt(np.mean(np.sum(shift**2, axis=1))) / FACE_WIDTH_PX)


def _face_crops(frame0: np.ndarray, frame1: np.ndarray, box0: Box, box1: Box
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The same region of both frames around both boxes, grey, scaled and blurred, and the
    corner mask (frame 0's box, widened) in it; None when the boxes lie mostly outside."""
    width = (box0[2] + box1[2]) / 2
    margin = CROP_MARGIN * width
    height_px, width_px = frame0.shape[:2]
    x0 = max(0, int(min(box0[0], box1[0]) - margin))
    y0 = max(0, int(min(box0[1], box1[1]) - margin))
    x1 = min(width_px, int(math.ceil(max(box0[0] + box0[2], box1[0] + box1[2]) + margin)))
    y1 = min(height_px, int(math.ceil(max(box0[1] + box0[3], box1[1] + box1[3]) + margin)))
    if x1 - x0 < MIN_FACE_PX or y1 - y0 < MIN_FACE_PX:
        return None
    scale = FACE_WIDTH_PX / width
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR

    def prepare(frame: np.ndarray) -> np.ndarray:
        crop = frame[y0:y1, x0:x1]
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=interpolation)
        return cv2.GaussianBlur(grey, (0, 0), PRE_BLUR_PX)

    grey0, grey1 = prepare(frame0), prepare(frame1)
    mask = np.zeros(grey0.shape, np.uint8)
    bx, by, bw, bh = box0
    left = (bx - MASK_WIDEN * bw - x0) * scale
    right = (bx + (1 + MASK_WIDEN) * bw - x0) * scale
    cv2.rectangle(mask, (int(left), int((by - y0) * scale)),
                  (int(right), int((by + bh - y0) * scale)), 255, -1)
    return grey0, grey1, mask


def _flow(grey0: np.ndarray, grey1: np.ndarray, points: np.ndarray, levels: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """Lucas-Kanade from grey0 to grey1: where each point went, and whether it was found."""
    params = {"winSize": (LK_WINDOW_PX, LK_WINDOW_PX), "maxLevel": levels,
              "criteria": _LK_CRITERIA}
    moved, found, _ = cv2.calcOpticalFlowPyrLK(grey0, grey1, points, None, **params)
    return moved, found.ravel() == 1


def _tracks_back(grey0: np.ndarray, grey1: np.ndarray, points: np.ndarray, moved: np.ndarray,
                 levels: int) -> np.ndarray:
    """Whether each moved point tracks back from grey1 to within FB_MAX_PX of where it began."""
    back, found_back = _flow(grey1, grey0, moved, levels)
    error = np.linalg.norm((back - points).reshape(-1, 2), axis=1)
    return found_back & (error < FB_MAX_PX)


def _track(grey0: np.ndarray, grey1: np.ndarray, points: np.ndarray, levels: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Lucas-Kanade from grey0 to grey1 and back; kept: found both ways and back within
    FB_MAX_PX of the start."""
    moved, found = _flow(grey0, grey1, points, levels)
    return moved, found & _tracks_back(grey0, grey1, points, moved, levels)


def _match_brightness(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """image with the mean and contrast of reference inside mask (auto-exposure, flicker)."""
    inside = mask > 0
    mean, std = float(image[inside].mean()), float(image[inside].std())
    ref_mean, ref_std = float(reference[inside].mean()), float(reference[inside].std())
    gain = ref_std / max(std, 1e-3)
    return np.clip(image * np.float32(gain) + np.float32(ref_mean - gain * mean), 0, 255
                   ).astype(np.uint8)
