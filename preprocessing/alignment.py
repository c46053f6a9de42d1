"""Face chips for the embedder and context crops for the liveness nets, from YuNet's landmarks.

The embedder (dlib's ResNet) was trained on chips cut by dlib's ``get_face_chip(150, 0.25)``.
`CHIP_TEMPLATE` places YuNet's five landmarks where that geometry puts them; it was measured on
1,000 LFW images outside the evaluation folds (../shared/docs/FACTS.md) and is stable to 0.45 px.
A plain least-squares similarity fit (Umeyama) maps the face onto it: RANSAC keeps all five
points in too few faces and loses accuracy.

MiniFASNet was trained on crops of 2.7x and 4.0x its own RetinaFace detector's box. YuNet's box
is tighter and sits higher, so `liveness_crops` first maps YuNet's box onto that convention
(measured over 333 faces: 1.156x as wide, 0.869x as tall, centre 5.8% of the height lower),
then cuts each crop the way upstream's ``CropImage`` does: enlarged about the centre, shrunk if
the photo is too small, shifted back inside the photo, resized to 80x80.
"""

from __future__ import annotations

import cv2
import numpy as np

from model_repository.specs import EMBEDDER_CHIP_SIZE as CHIP_SIZE
from model_repository.specs import LIVENESS_CROP_SIZE
from preprocessing.detection import Face

CHIP_TEMPLATE = np.array(
    [
        [46.703, 44.574],   # right eye (the person's right: image left)
        [102.912, 45.290],  # left eye
        [74.299, 77.284],   # nose tip
        [50.980, 101.438],  # right mouth corner
        [98.767, 101.903],  # left mouth corner
    ],
    dtype=np.float64,
)

LIVENESS_SCALES = (2.7, 4.0)
_RETINA_WIDTH, _RETINA_HEIGHT, _RETINA_CENTRE_SHIFT = 1.156, 0.869, 0.058


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) from source to target.

    Umeyama's closed form, with the reflection guard. Returns a 2x3 matrix for cv2.warpAffine.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    centred_s, centred_t = source - mean_s, target - mean_t
    covariance = centred_t.T @ centred_s / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    variance_s = (centred_s**2).sum() / len(source)
    scale = np.trace(np.diag(singular) @ sign) / variance_s
    translation = mean_t - scale * rotation @ mean_s
    return np.hstack([scale * rotation, translation[:, None]])


def align_chip(image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Cut the 150x150 RGB chip the embedder expects.

    Args:
        image_bgr: the photo, H x W x 3 uint8 BGR.
        landmarks: the face's 5x2 YuNet landmarks in photo pixels.

    Returns:
        150 x 150 x 3 uint8 RGB.
    """
    matrix = similarity_transform(landmarks, CHIP_TEMPLATE)
    chip = cv2.warpAffine(
        image_bgr, matrix, (CHIP_SIZE, CHIP_SIZE), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )
    return cv2.cvtColor(chip, cv2.COLOR_BGR2RGB)


def face_chips(image_bgr: np.ndarray, faces: list[Face], mirror: bool) -> np.ndarray:
    """Each face's chip, followed by its mirror image when `mirror`: [N or 2N, 150, 150, 3]."""
    chips = []
    for face in faces:
        chip = align_chip(image_bgr, face.landmarks)
        chips += [chip, chip[:, ::-1]] if mirror else [chip]
    return np.stack(chips)


def _liveness_box(face: Face) -> tuple[float, float, float, float]:
    """YuNet's box mapped onto the RetinaFace convention MiniFASNet was trained with."""
    x, y, w, h = face.box
    centre_x, centre_y = x + w / 2, y + h / 2 + _RETINA_CENTRE_SHIFT * h
    new_w, new_h = w * _RETINA_WIDTH, h * _RETINA_HEIGHT
    return centre_x - new_w / 2, centre_y - new_h / 2, new_w, new_h


def _context_crop(image: np.ndarray, box: tuple[float, float, float, float],
                  scale: float) -> np.ndarray:
    height, width = image.shape[:2]
    x, y, box_w, box_h = box
    scale = min((height - 1) / box_h, (width - 1) / box_w, scale)
    new_w, new_h = box_w * scale, box_h * scale
    centre_x, centre_y = x + box_w / 2, y + box_h / 2
    left, top = centre_x - new_w / 2, centre_y - new_h / 2
    left -= min(left, 0.0) + max(left + new_w - width, 0.0)
    top -= min(top, 0.0) + max(top + new_h - height, 0.0)
    left_i, top_i = int(left), int(top)
    right_i, bottom_i = int(left + new_w), int(top + new_h)
    patch = image[top_i:bottom_i, left_i:right_i]
    return cv2.resize(patch, (LIVENESS_CROP_SIZE, LIVENESS_CROP_SIZE))


def liveness_crops(image_bgr: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
    """The two 80x80 BGR crops of `face` for MiniFASNetV2 (2.7x) and MiniFASNetV1SE (4.0x)."""
    box = _liveness_box(face)
    v2_scale, v1se_scale = LIVENESS_SCALES
    return _context_crop(image_bgr, box, v2_scale), _context_crop(image_bgr, box, v1se_scale)


def face_crop(image_bgr: np.ndarray, face: Face, margin: float = 0.3) -> np.ndarray:
    """The face's box grown by `margin` of its size on each side, clipped to the picture."""
    x, y, w, h = face.box
    height, width = image_bgr.shape[:2]
    left, top = max(0, int(x - margin * w)), max(0, int(y - margin * h))
    right = min(width, int(x + w * (1 + margin)))
    bottom = min(height, int(y + h * (1 + margin)))
    return image_bgr[top:bottom, left:right]
