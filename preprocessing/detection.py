"""Before and after the face detector: letterboxing a photo, and NMS over the decoded anchors.

The detector model (`model_repository/detector_onnx.py`) takes a square BGR image (320 or 640
px: `detector_size` picks) and returns, per anchor, box, five landmarks and score. Here the
photo is scaled to fit that square (padding at the bottom and right, so coordinates map back by
one division), and the anchors are reduced to faces as OpenCV's FaceDetectorYN does: score
threshold, then NMS on the boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from model_repository.specs import DETECTORS
from model_repository.specs import YUNET_INPUT_SIZE as DETECTOR_INPUT_SIZE

DETECTOR_SIZES = tuple(spec.inputs[0].dims[0] for spec in DETECTORS)
"""Input sides of the served detectors, smallest first."""

DEFAULT_SCORE_THRESHOLD = 0.6
DEFAULT_NMS_THRESHOLD = 0.3
DEFAULT_TOP_K = 5000


@dataclass(frozen=True)
class Face:
    """A detected face in the coordinates of the photo it was found in.

    Attributes:
        box: x, y (top left), width, height in pixels.
        landmarks: 5x2 array: right eye, left eye, nose tip, right and left mouth corner
            ("right" is the person's right, which is the image's left).
        score: detector confidence in [0, 1].
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2, y + h / 2

    @property
    def upright_turn(self) -> int:
        """Degrees to turn the photo clockwise (0, 90, 180, 270) so this face stands upright.

        Decided by where the face's "up" (from the mouth corners' midpoint to the eyes'
        midpoint) points: a photo stored sideways still shows YuNet a face, lying down.
        """
        eyes = self.landmarks[:2].mean(axis=0)
        mouth = self.landmarks[3:].mean(axis=0)
        up_x, up_y = eyes - mouth
        if abs(up_y) >= abs(up_x):
            return 0 if up_y <= 0 else 180
        return 270 if up_x > 0 else 90


@dataclass(frozen=True)
class Letterboxed:
    """A photo scaled into the detector's square input.

    Attributes:
        image: DETECTOR_INPUT_SIZE x DETECTOR_INPUT_SIZE x 3 uint8 BGR.
        scale: detector pixels per photo pixel.
    """

    image: np.ndarray
    scale: float


def detector_sizes(small_detector: bool) -> tuple[int, ...]:
    """The detector inputs a pipeline chooses from: 640 only, or 320 and 640."""
    return DETECTOR_SIZES if small_detector else DETECTOR_SIZES[-1:]


def detector_size(shape: tuple[int, ...], sizes: tuple[int, ...] = DETECTOR_SIZES) -> int:
    """The detector input for a photo: the smallest of `sizes` that holds it without
    shrinking, else the largest. With the 320 detector in `sizes`, a 250x250 photo goes there
    (a quarter of the 640 one's arithmetic); anything larger goes to 640."""
    longest = max(shape[:2])
    return next((size for size in sizes if longest <= size), sizes[-1])


def letterbox(image_bgr: np.ndarray, size: int = DETECTOR_INPUT_SIZE) -> Letterboxed:
    """Scale a BGR photo to fit a size x size square, padding the bottom and right with black.

    Args:
        image_bgr: H x W x 3 uint8.
        size: side of the square.

    Returns:
        The padded image and the scale applied.
    """
    height, width = image_bgr.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = min(size, round(width * scale)), min(size, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    # scaled straight into the canvas: no second 1.2 MB picture to allocate and copy
    cv2.resize(image_bgr, (new_w, new_h), dst=canvas[:new_h, :new_w], interpolation=interpolation)
    return Letterboxed(canvas, scale)


def faces_from_detections(
    detections: np.ndarray,
    scale: float = 1.0,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    nms_threshold: float = DEFAULT_NMS_THRESHOLD,
    top_k: int = DEFAULT_TOP_K,
) -> list[Face]:
    """Turn one image's decoded anchors into faces, best first.

    Args:
        detections: [anchors, 15] from the detector: x, y, w, h, 10 landmark coordinates, score.
        scale: the letterbox scale, to map coordinates back to the photo.
        score_threshold: anchors scoring below it are dropped.
        nms_threshold: IoU above which a weaker overlapping box is suppressed.
        top_k: at most this many anchors enter NMS.

    Returns:
        Faces in photo coordinates, highest score first.
    """
    scores = detections[:, 14]
    candidates = np.flatnonzero(scores >= score_threshold)
    if candidates.size == 0:
        return []
    boxes = detections[candidates, :4]
    keep = cv2.dnn.NMSBoxes(
        boxes.tolist(), scores[candidates].tolist(), score_threshold, nms_threshold, top_k=top_k
    )
    faces = []
    for index in np.asarray(keep, dtype=np.int64).ravel():
        row = detections[candidates[index]] / np.float32(scale)
        faces.append(
            Face(
                box=tuple(float(v) for v in row[:4]),
                landmarks=row[4:14].reshape(5, 2).astype(np.float32),
                score=float(detections[candidates[index], 14]),
            )
        )
    faces.sort(key=lambda face: face.score, reverse=True)
    return faces


def nearest_to_centre(faces: list[Face], image_shape: tuple[int, ...]) -> Face:
    """The face whose box centre is closest to the photo's centre: the one a photo is about."""
    height, width = image_shape[:2]
    return min(
        faces, key=lambda f: (f.center[0] - width / 2) ** 2 + (f.center[1] - height / 2) ** 2
    )
