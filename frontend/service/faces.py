"""The face pipeline as a library: photo -> faces -> aligned chips -> descriptors -> distance.

CPU work (letterbox, NMS, alignment) runs in an executor; the event loop only awaits Triton.
Concurrent callers each send their own request, and Triton's dynamic batcher merges them.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from frontend.executor import run_cpu
from frontend.inference.triton import TritonModels
from preprocessing.alignment import align_chip
from preprocessing.detection import (
    DEFAULT_SCORE_THRESHOLD,
    Face,
    detector_size,
    detector_sizes,
    faces_from_detections,
    letterbox,
)

ObserveStage = Callable[[str, float], None]
"""Called with a stage's name and its seconds (`frontend.api.metrics.Metrics.observe_stage`)."""


@contextmanager
def timed(observe: ObserveStage, stage: str) -> Iterator[None]:
    """Report the wall time of the ``with`` block as `stage`, whether it returns or raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        observe(stage, time.perf_counter() - started)


@dataclass(frozen=True)
class EmbeddedFace:
    face: Face
    descriptor: np.ndarray


def face_chips(image_bgr: np.ndarray, faces: list[Face], mirror: bool) -> np.ndarray:
    """Each face's chip, followed by its mirror image when `mirror`: [N or 2N, 150, 150, 3]."""
    chips = []
    for face in faces:
        chip = align_chip(image_bgr, face.landmarks)
        chips += [chip, chip[:, ::-1]] if mirror else [chip]
    return np.stack(chips)


def nearest_to_centre(faces: list[Face], image_shape: tuple[int, ...]) -> Face:
    """The face whose box centre is closest to the photo's centre."""
    height, width = image_shape[:2]
    return min(faces, key=lambda f: (f.center[0] - width / 2) ** 2 + (f.center[1] - height / 2) ** 2)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two descriptors (dlib's metric; < 0.6 means same person)."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


class FacePipeline:
    """Detect, align and embed faces through Triton.

    Args:
        models: the Triton client.
        executor: where CPU-bound steps run.
        score_threshold: detector score below which a candidate is not a face.
        mirror: average each descriptor with its mirror image's (+0.4 points on LFW).
        observe_stage: called with ``detect``, ``align`` or ``embed`` and its seconds (metrics).
        detector_sizes: the detector inputs to choose from (`detector_size`); 640 only by
            default (`Settings.small_detector`).
    """

    def __init__(
        self,
        models: TritonModels,
        executor: concurrent.futures.Executor | None = None,
        *,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        mirror: bool = True,
        observe_stage: ObserveStage = lambda stage, seconds: None,
        detector_sizes: tuple[int, ...] = detector_sizes(small_detector=False),
    ) -> None:
        self.models = models
        self.detector_sizes = detector_sizes
        self.executor = executor
        self.score_threshold = score_threshold
        self.mirror = mirror
        self.observe_stage = observe_stage


    async def _run(self, function, *args):
        return await run_cpu(self.executor, function, *args)

    async def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """All faces in a photo, highest score first."""
        with timed(self.observe_stage, "detect"):
            size = detector_size(image_bgr.shape, self.detector_sizes)
            boxed = await self._run(letterbox, image_bgr, size)
            detections = await self.models.detect(boxed.image[None])
            return await self._run(
                faces_from_detections, detections[0], boxed.scale, self.score_threshold
            )

    async def embed(self, image_bgr: np.ndarray, faces: list[Face]) -> list[EmbeddedFace]:
        """Descriptors of the given faces, in one batched model call."""
        if not faces:
            return []
        with timed(self.observe_stage, "align"):
            chips = await self._run(face_chips, image_bgr, faces, self.mirror)
        with timed(self.observe_stage, "embed"):
            descriptors = await self.models.embed(chips)
        if self.mirror:
            descriptors = (descriptors[0::2] + descriptors[1::2]) / 2
        return [EmbeddedFace(face, d) for face, d in zip(faces, descriptors)]

    async def main_face(self, image_bgr: np.ndarray) -> EmbeddedFace | None:
        """The face nearest the photo's centre, embedded; None when there is no face."""
        faces = await self.detect(image_bgr)
        if not faces:
            return None
        (embedded,) = await self.embed(image_bgr, [nearest_to_centre(faces, image_bgr.shape)])
        return embedded
