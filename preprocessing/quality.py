"""Per-face quality measures from pixels: occlusion, blur, brightness, pose, size, and a score.

Measured on the face's aligned 150x150 chip (`preprocessing.alignment.align_chip`), where eyes,
nose and mouth sit at fixed positions, so each measure is relative to the face; no model, no
Triton, 2-4 ms per face on 2 cores. Each cue, its decision value and how it was chosen:
docs/quality.md; the evaluation on held-out photos: ``python -m benchmarks.quality_eval``
(benchmarks/quality.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from preprocessing.alignment import CHIP_TEMPLATE, align_chip
from preprocessing.detection import Face

OCCLUSION_THRESHOLD = 0.5
PROFILE_YAW = 35.0

# Windows in chip pixels: x0, x1, y0, y1.
_RIGHT_CHEEK = (28, 50, 64, 86)
_LEFT_CHEEK = (100, 122, 64, 86)
_FOREHEAD = (52, 98, 10, 26)
_GLABELLA = (66, 84, 28, 42)
_NOSE = (62, 87, 58, 88)
_MOUTH = (46, 104, 90, 114)
_LOWER_LIP = (46, 104, 103, 114)
_LIP_PROFILE = (60, 90, 88, 116)  # rows 4..21 of it hold the lips, the rest is skin
_INNER_FACE_BLUR = (25, 125, 20, 130)
_INNER_FACE_BRIGHTNESS = (30, 120, 25, 125)
_EYES = ((47, 45), (103, 45))
_EYE_OFFSETS = (-12, -6, 0, 6, 12)

# Medians on clear LFW faces of each structure measure (gradient per unit of skin luminance;
# the lip line's relative depth), which the cues are divided by.
_EYE_STRUCTURE, _NOSE_STRUCTURE, _LOWER_LIP_STRUCTURE, _LIP_LINE = 0.057, 0.041, 0.049, 0.335

# Ramps: (value where a cue says "clear" (0), value where it says "covered" (1)); each crosses
# OCCLUSION_THRESHOLD halfway, at the decision value given in the module docstring.
_EYE_VISIBILITY_RAMP = (0.60, 0.06)
_NOSE_STRUCTURE_RAMP = (0.50, 0.04)
_MOUTH_STRUCTURE_RAMP = (0.55, 0.07)
_NOSE_FOREIGN_RAMP = (10.0, 30.0)
_MOUTH_FOREIGN_RAMP = (24.0, 40.0)
_NOSE_DARKNESS_RAMP = (0.70, 0.30)
_MOUTH_DARKNESS_RAMP = (0.50, 0.20)

NOSE_DEPTH = 24.0  # template px
_NEUTRAL_NOSE_RATIO = (CHIP_TEMPLATE[2, 1] - CHIP_TEMPLATE[:2, 1].mean()) / (
    CHIP_TEMPLATE[3:, 1].mean() - CHIP_TEMPLATE[:2, 1].mean()
)
_TEMPLATE_EYE_TO_MOUTH = float(CHIP_TEMPLATE[3:, 1].mean() - CHIP_TEMPLATE[:2, 1].mean())


@dataclass(frozen=True)
class Occlusion:
    """How covered each region is: 0 clear .. 1 fully covered."""

    eyes: float
    nose: float
    mouth: float


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees, estimated from the landmarks (see the module docstring)."""

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class FaceQuality:
    """The quality measures of one face (ranges and definitions in the module docstring)."""

    occlusion: Occlusion
    blur: float
    brightness: float
    pose: Pose
    face_size: float
    score: float

    @property
    def occluded(self) -> bool:
        """Whether any region is at or above `OCCLUSION_THRESHOLD`."""
        o = self.occlusion
        return max(o.eyes, o.nose, o.mouth) >= OCCLUSION_THRESHOLD


def measure(image_bgr: np.ndarray, face: Face) -> FaceQuality:
    """Measure one detected face.

    Args:
        image_bgr: the photo the face was found in, H x W x 3 uint8 BGR.
        face: the detection (box, five landmarks, score) in that photo's pixels.

    Returns:
        The face's quality measures.
    """
    chip = align_chip(image_bgr, face.landmarks)
    ycrcb = cv2.cvtColor(chip, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    pose = pose_of_landmarks(face.landmarks)
    occlusion = occlusion_of_chip(ycrcb, yaw=pose.yaw)
    blur = blur_of_chip(ycrcb[..., 0])
    brightness = float(_window(ycrcb[..., 0], _INNER_FACE_BRIGHTNESS).mean() / 255.0)
    face_size = float(np.linalg.norm(face.landmarks[1] - face.landmarks[0]))
    return FaceQuality(
        occlusion=occlusion,
        blur=blur,
        brightness=brightness,
        pose=pose,
        face_size=face_size,
        score=overall_score(occlusion, blur, brightness, pose, face_size),
    )


def blur_of_face(image_bgr: np.ndarray, face: Face) -> float:
    """The blur measure of `measure` alone (0 sharp .. 1 very blurry), without the rest."""
    chip = align_chip(image_bgr, face.landmarks)
    luma = cv2.cvtColor(chip, cv2.COLOR_RGB2YCrCb)[..., 0].astype(np.float32)
    return blur_of_chip(luma)


def _window(array: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    x0, x1, y0, y1 = window
    return array[max(y0, 0):y1, max(x0, 0):x1]


def _ramp(value: float, clear: float, occluded: float) -> float:
    """0 at `clear`, 1 at `occluded`, linear between (either direction), clipped."""
    return float(np.clip((value - clear) / (occluded - clear), 0.0, 1.0))


def occlusion_of_chip(ycrcb: np.ndarray, yaw: float = 0.0) -> Occlusion:
    """Occlusion per region from an aligned chip in float32 YCrCb (OpenCV's channel order).

    Args:
        ycrcb: the 150x150 chip, float32 YCrCb.
        yaw: the face's yaw in degrees; from `PROFILE_YAW` on, the far eye, which the face
            itself hides, is left out.
    """
    cues = occlusion_cues(ycrcb)
    if yaw >= PROFILE_YAW:  # nose to the image's right: the person's left eye is the far one
        visibility = cues["right_eye_visibility"]
    elif yaw <= -PROFILE_YAW:
        visibility = cues["left_eye_visibility"]
    else:
        visibility = min(cues["right_eye_visibility"], cues["left_eye_visibility"])
    eyes = _ramp(visibility, *_EYE_VISIBILITY_RAMP)
    nose = max(
        _ramp(cues["nose_structure"], *_NOSE_STRUCTURE_RAMP),
        _ramp(cues["nose_foreign"], *_NOSE_FOREIGN_RAMP),
        _ramp(cues["nose_darkness"], *_NOSE_DARKNESS_RAMP),
    )
    mouth = max(
        _ramp(cues["mouth_structure"], *_MOUTH_STRUCTURE_RAMP),
        _ramp(cues["mouth_foreign"], *_MOUTH_FOREIGN_RAMP),
        _ramp(cues["mouth_darkness"], *_MOUTH_DARKNESS_RAMP),
    )
    return Occlusion(eyes=eyes, nose=nose, mouth=mouth)


def occlusion_cues(ycrcb: np.ndarray) -> dict[str, float]:
    """The raw cues behind `occlusion_of_chip` (for evaluation and tuning)."""
    luma = ycrcb[..., 0]
    smooth = cv2.GaussianBlur(luma, (0, 0), 1.0)
    gradient = np.hypot(
        cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    ) / 8.0
    patches = {
        name: _window(luma, window)
        for name, window in (
            ("right", _RIGHT_CHEEK), ("left", _LEFT_CHEEK),
            ("forehead", _FOREHEAD), ("glabella", _GLABELLA),
        )
    }
    skin_luma = max(float(np.median(np.concatenate([p.ravel() for p in patches.values()]))), 20.0)
    upper = [float(np.median(patches["forehead"])), float(np.median(patches["glabella"]))]

    cues: dict[str, float] = {}
    for side, centre in zip(("right", "left"), _EYES, strict=True):
        reference = max(float(np.median([np.median(patches[side]), *upper])), 8.0)
        cues[f"{side}_eye_visibility"] = _eye_visibility(
            luma, gradient, centre, reference, skin_luma
        )
    cues.update(_colour_cues(ycrcb, skin_luma))
    nose_structure = float(_window(gradient, _NOSE).mean()) / skin_luma
    cues["nose_structure"] = nose_structure / _NOSE_STRUCTURE
    cues["mouth_structure"] = _mouth_structure(smooth, gradient, skin_luma)
    return cues


def _eye_visibility(luma: np.ndarray, gradient: np.ndarray, centre: tuple[int, int],
                    reference: float, skin_luma: float) -> float:
    """The eye's least visibility over the vertical offsets tried (module docstring)."""
    eye_x, eye_y = centre
    visibility = np.inf
    for offset in _EYE_OFFSETS:
        y = eye_y + offset
        lens = _window(luma, (eye_x - 14, eye_x + 14, y - 8, y + 14))
        darkness = float(np.percentile(lens, 75)) / reference
        structure = float(_window(gradient, (eye_x - 12, eye_x + 12, y - 6, y + 6)).mean())
        structure /= skin_luma * _EYE_STRUCTURE
        visibility = min(visibility, float(np.sqrt(min(darkness, 1.2) * min(structure, 1.5))))
    return visibility


def _colour_cues(ycrcb: np.ndarray, skin_luma: float) -> dict[str, float]:
    """Foreign colour and darkness of the nose and mouth windows."""
    upper = np.concatenate(
        [_window(ycrcb, _FOREHEAD).reshape(-1, 3), _window(ycrcb, _GLABELLA).reshape(-1, 3)]
    )
    skin_chroma = np.median(upper[:, 1:], axis=0)
    cues = {}
    for name, window in (("nose", _NOSE), ("mouth", _MOUTH)):
        region = _window(ycrcb, window)
        shift = region[..., 1:].reshape(-1, 2) - skin_chroma
        # Towards blue or grey: Cr below the skin's, or Cb above it. The 25th percentile asks
        # for three quarters of the region to have moved: a grey moustache or teeth do not.
        foreign = np.maximum(-shift[:, 0], 0.0) + np.maximum(shift[:, 1], 0.0)
        cues[f"{name}_foreign"] = float(np.percentile(foreign, 25))
        cues[f"{name}_darkness"] = float(np.percentile(region[..., 0], 75)) / skin_luma
    return cues


def _mouth_structure(smooth: np.ndarray, gradient: np.ndarray, skin_luma: float) -> float:
    """Mean of the lower lip's gradient and the lip line's depth, each over its clear median.

    Only the window's lower half counts for the gradient: the detector often takes the top
    edge of a hand or mask for the lip line, and the face above that edge is not flat.
    """
    lower_lip = float(_window(gradient, _LOWER_LIP).mean()) / skin_luma
    profile = _window(smooth, _LIP_PROFILE).mean(axis=1)
    around = 0.5 * (profile[:4].mean() + profile[22:].mean())
    lip_line = 1.0 - float(profile[4:22].min()) / max(float(around), 1.0)
    return 0.5 * lower_lip / _LOWER_LIP_STRUCTURE + 0.5 * max(lip_line, 0.0) / _LIP_LINE


def blur_of_chip(luma: np.ndarray) -> float:
    """Crete-Roffet blur effect of the chip's inner face at half size: 0 sharp .. 1 blurry."""
    half = cv2.resize(luma, (luma.shape[1] // 2, luma.shape[0] // 2), interpolation=cv2.INTER_AREA)
    x0, x1, y0, y1 = (v // 2 for v in _INNER_FACE_BLUR)
    face = half[y0:y1, x0:x1].astype(np.float32)
    scores = []
    for axis, kernel in ((0, (1, 9)), (1, (9, 1))):  # cv2 kernel sizes are (width, height)
        sharp_diff = np.abs(np.diff(face, axis=axis))
        blur_diff = np.abs(np.diff(cv2.blur(face, kernel), axis=axis))
        total = float(sharp_diff.sum())
        if total <= 0.0:
            return 1.0
        lost = float(np.maximum(sharp_diff - blur_diff, 0.0).sum())
        scores.append((total - lost) / total)
    return float(max(scores))


def pose_of_landmarks(landmarks: np.ndarray) -> Pose:
    """Yaw, pitch and roll in degrees from the five landmarks (see the module docstring)."""
    points = np.asarray(landmarks, dtype=np.float64)
    right_eye, left_eye, nose, right_mouth, left_mouth = points
    dx, dy = left_eye - right_eye
    roll = -np.degrees(np.arctan2(dy, dx))
    angle = np.arctan2(dy, dx)
    cos, sin = np.cos(-angle), np.sin(-angle)
    upright = points @ np.array([[cos, sin], [-sin, cos]])  # rotates by -angle: eye line level
    eye_mid = upright[:2].mean(axis=0)
    mouth_mid = upright[3:].mean(axis=0)
    eye_to_mouth = mouth_mid[1] - eye_mid[1]
    if eye_to_mouth <= 1e-6:
        return Pose(yaw=0.0, pitch=0.0, roll=float(roll))
    ratio = (upright[2, 1] - eye_mid[1]) / eye_to_mouth
    midline_x = eye_mid[0] + ratio * (mouth_mid[0] - eye_mid[0])
    scale = eye_to_mouth / _TEMPLATE_EYE_TO_MOUTH  # photo px per template px
    offset = (upright[2, 0] - midline_x) / scale
    yaw = np.degrees(np.arcsin(np.clip(offset / NOSE_DEPTH, -1.0, 1.0)))
    pitch = np.degrees(
        np.arctan((_NEUTRAL_NOSE_RATIO - ratio) * _TEMPLATE_EYE_TO_MOUTH / NOSE_DEPTH)
    )
    return Pose(yaw=float(yaw), pitch=float(pitch), roll=float(roll))


def overall_score(
    occlusion: Occlusion, blur: float, brightness: float, pose: Pose, face_size: float
) -> float:
    """How usable the face is for verification, 0..1 (factors in the module docstring)."""
    occlusion_factor = 1.0 - max(occlusion.eyes, occlusion.nose, occlusion.mouth)
    blur_factor = 1.0 - _ramp(blur, 0.5, 0.8)
    if brightness < 0.25:
        brightness_factor = 1.0 - _ramp(brightness, 0.25, 0.05)
    else:
        brightness_factor = 1.0 - _ramp(brightness, 0.85, 1.0)
    pose_factor = 1.0 - _ramp(max(abs(pose.yaw), abs(pose.pitch)), 20.0, 60.0)
    size_factor = 1.0 - _ramp(face_size, 32.0, 10.0)
    return float(occlusion_factor * blur_factor * brightness_factor * pose_factor * size_factor)
