"""Per-face quality measures computed from pixels: occlusion, blur, brightness, pose, size.

Occlusion, blur and brightness are measured on the face's aligned 150x150 chip
(`preprocessing.alignment.align_chip`), where eyes, nose and mouth sit at fixed positions
(`CHIP_TEMPLATE`; the eyes 56 px apart) whatever the photo's scale and roll, so each measure is
relative to the face. Coordinates below are chip pixels. Pose and size come from the landmarks.
No model and no Triton: 2-4 ms per face on a 2-core machine.

Occlusion: per region, 0 (clear) .. 1 (covered); ``occluded`` when any region reaches
`OCCLUSION_THRESHOLD` (0.5). There is no occlusion model: each region has cues from image
evidence, each cue is mapped to 0..1 by a linear ramp that crosses 0.5 at its decision value,
and the region's score is its largest cue.

- eyes: a visible eye is not much darker than the face's skin and has the strong gradients
  of iris, lids and lashes. Per eye, *darkness* is the 75th percentile of luminance in a
  28x22 window around the eye (the area a dark lens covers, down to the cheekbone) over the
  skin luminance (median of the same-side cheek, the forehead and between the brows: the
  median of three keeps side light or a covered cheek from moving it far), and *structure*
  is the mean gradient magnitude in a 24x12 window on the eye, per unit of skin luminance,
  over its clear-face median. The eye's *visibility* is their geometric mean (darkness
  capped at 1.2, structure at 1.5). The detector puts eye landmarks on a bar's or lens's edge
  when the eyes are hidden, so the windows are also tried 6 and 12 px higher and lower, and
  each eye keeps its least visible position; the region takes the less visible eye (from
  `PROFILE_YAW` on, only the near eye: the far one is hidden by the face, which is pose).
  Decision: visibility 0.33. Dark lenses and bars are dark and flat; a shadowed socket keeps
  its structure and the bright skin under the eye, which lenses cover and brow shadows do not.
- nose (a 25x30 window over the tip and nostrils) and mouth (58x24 over the lips):
  *structure*, the mean gradient magnitude per unit of skin luminance over its clear-face
  median; for the mouth, the gradient of the window's lower half only (the lower lip's edge:
  the detector often takes a hand's or mask's top edge for the lip line), averaged with the
  *lip line*, the depth of the darkest row of the mouth's row-mean luminance profile relative
  to the skin rows above and below, over its clear-face median. Decisions: 0.27 (nose), 0.31
  (mouth). *Foreign colour*: how far the region's chroma has moved from the skin chroma of the
  upper face (forehead and between the brows, which masks leave bare) towards blue or grey
  (Cr down, Cb up, in YCrCb units), at the region's 25th percentile, so that three quarters
  of it must have moved: lips are redder, and a grey moustache or teeth cover less. A photo
  without colour has no shift. Decisions: 20 (nose), 32 (mouth). *Darkness*, the 75th
  percentile of luminance over skin luminance, for black masks and scarves: decisions 0.5
  (nose) and 0.35 (mouth), below beards and nostrils.

How the decision values were chosen: on 7,274 clear LFW faces outside the evaluation set
(deep-funneled 250x250, faces ~100 px wide, so chips are upsampled and soft), each cue's
decision sits at or below about its 0.4th percentile, so that all cues together flag 0.8% of
them (some of which wear sunglasses nobody labelled); then checked on 45 LFW faces with dark
sunglasses and 2 with the mouth covered (found by eye, kept out of those 7,274) and on
occluders painted on real photos. The evaluation on held-out photos is
``python -m benchmarks.quality_eval``, its numbers in ``benchmarks/quality.md``.
Known misses: light, gradient-tinted or mirrored lenses, narrow lenses full of reflections, a
skin-coloured hand over the eyes, textured occluders (fingers, a hand holding a glass);
known false alarms: an eye in very deep shadow, a flat closed mouth on a soft photo.

Blur: 0 (sharp) .. 1 (very blurry). Crete-Roffet et al.'s "blur effect" (2007) on the luminance
of the inner face (x 25..125, y 20..130) of the chip halved to 75x75: the share of the
neighbouring-pixel variation that survives a 9-pixel box re-blur, taking the worse of the two
directions. Contrast-invariant, and relative to the face's size. At half size LFW's
upsampled chips are not penalised, and uint8 rounding does not make heavy blur look sharper
(at full size the measure fell again past a 4 px blur): the median over 30 LFW faces is 0.39,
and 0.44, 0.53, 0.61, 0.68, 0.75 after a Gaussian blur of 1, 2, 3, 4, 6 px on the photo;
large sharp faces (CompreFace, deepface photos) 0.31-0.37.

Brightness: 0 .. 1, the mean luminance (BT.601 Y / 255) of the chip's inner face
(x 30..120, y 25..125). LFW's median is ~0.46.

Pose, in degrees: an estimate from the five landmarks, with no 3D model fit, so only as good
as YuNet's landmarks: turning an LFW photo by 20 degrees changes its roll by 20 +- 3 degrees
(median error over 40 photos, at most 10), and a mirrored photo's yaw is the negative of the
original's only to within a few degrees.

- roll: the eye line's angle; positive when the face is turned counter-clockwise as seen in
  the photo (the person's left eye, on the image's right, is higher), the sense of a
  positive angle in ``cv2.getRotationMatrix2D``.
- yaw: with roll undone, the nose tip's horizontal offset from the line through the eyes'
  and the mouth corners' midpoints, in template pixels, over the nose tip's depth in front
  of the eyes and mouth, `NOSE_DEPTH` (24 template px, ~27 mm; anthropometric averages, not
  fitted): ``asin(offset / depth)``. Positive when the nose points to the image's right (the
  person turns towards their own left).
- pitch: where the nose tip sits between the eye line and the mouth line, against the
  template's neutral 0.570: ``atan((0.570 - ratio) * 56.7 / NOSE_DEPTH)``, 56.7 px being the
  template's eye-to-mouth distance. Positive when the face looks up.
The scale comes from the eye-to-mouth distance, which yaw does not shorten.

Face size, in photo pixels: the inter-eye distance (between the two eye landmarks), the
resolution measure of ISO/IEC 19794-5. It shrinks with yaw. LFW's is 30-52 px (1st-99th
percentile).

Score: 0 .. 1, the product of five factors, each 1 when that aspect is fine:
``1 - max occlusion``; blur (1 up to 0.5, 0 from 0.8); brightness (1 within 0.25..0.85,
falling to 0 at 0.05 and at 1.0); pose (1 while yaw and pitch are within 20 degrees, 0 from
60); size (1 from an inter-eye distance of 32 px, about LFW's smallest, where the embedder
verifies at 99%; 0 at 10 px).
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
