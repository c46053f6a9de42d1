"""The face pipeline, whatever runs the models: detect, align, embed, score; liveness; best frame.

Every endpoint goes through these steps, each written once here; the model calls go to a
`ModelRuntime` (Triton in the server, ONNX Runtime in-process elsewhere), the CPU work to the
`Stages` pool, and each step is timed there (``detect``, ``align``, ``embed``, ``liveness``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from frontend.inference.runtime import ModelRuntime
from frontend.service.scores import ScoreCalibration
from frontend.service.stages import Stages
from preprocessing.alignment import face_chips, liveness_crops
from preprocessing.detection import (
    DEFAULT_SCORE_THRESHOLD,
    Face,
    detector_size,
    detector_sizes,
    faces_from_detections,
    letterbox,
    nearest_to_centre,
)
from preprocessing.quality import measure
from preprocessing.recapture import chroma_ripple, recapture_score


@dataclass(frozen=True)
class EmbeddedFace:
    face: Face
    descriptor: np.ndarray


@dataclass(frozen=True)
class Sighting:
    """One face in one picture: a photo, a liveness_file frame or a video frame.

    Attributes:
        image: the picture, H x W x 3 uint8 BGR.
        face: the face in it.
        timestamp_s: the picture's time in its capture (0 for a photo).
    """

    image: np.ndarray
    face: Face
    timestamp_s: float = 0.0


@dataclass(frozen=True)
class PictureEvidence:
    """What single pictures of a face say about liveness, over a capture's sightings.

    Attributes:
        p_real: mean MiniFASNet P(real).
        moire: median colour ripple of a screen's pixel grid (`preprocessing.recapture`).
        moire_score: its score, 1 live-like .. 0 screen-like; nan when not measured.
    """

    p_real: float
    moire: float
    moire_score: float


def fuse(cues: dict[str, float]) -> tuple[float, str]:
    """One score from the cues: the lowest of those with evidence, so each can veto, and the
    cue that gave it. A cue without evidence (nan: a face that never moved, no frame measured)
    abstains; P(real) always has evidence."""
    present = {name: value for name, value in cues.items() if not math.isnan(value)}
    decided_by = min(present, key=present.get)
    return float(np.clip(present[decided_by], 0.0, 1.0)), decided_by


SPOOF_TYPES = {"motion": "still_photo", "moire": "screen"}
"""The spoof type each refusing cue stands for. MiniFASNet's own classes did not tell a print
from a screen on the shared spoofs (both class 2), so a refusal by P(real) is ``unknown``."""


@dataclass(frozen=True)
class Verification:
    """A face against up to three reference faces: each score in order, and the best."""

    scores: tuple[float, ...]

    @property
    def best(self) -> float:
        return max(self.scores)


@dataclass(frozen=True)
class Match:
    """The best-quality sighting of a capture and its scores against the reference faces."""

    best: Sighting
    verification: Verification


class FacePipeline:
    """Args:
    models: the runtime that runs the models.
    stages: where CPU steps run and how they are timed (default: the loop's pool, untimed).
    calibration: descriptor pair -> verification_score (default: the shipped table).
    score_threshold: detector score below which a candidate is not a face.
    mirror: average each descriptor with its mirror image's (+0.4 points on LFW).
    detector_sizes: the detector inputs to choose from (`detector_size`); 640 only by
        default (`Settings.small_detector`).
    """

    def __init__(
        self,
        models: ModelRuntime,
        stages: Stages | None = None,
        *,
        calibration: ScoreCalibration | None = None,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        mirror: bool = True,
        detector_sizes: tuple[int, ...] = detector_sizes(small_detector=False),
    ) -> None:
        self.models = models
        self.stages = stages or Stages()
        self.calibration = calibration or ScoreCalibration.from_file()
        self.score_threshold = score_threshold
        self.mirror = mirror
        self.detector_sizes = detector_sizes

    async def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """All faces in a picture, highest score first."""
        with self.stages.timed("detect"):
            size = detector_size(image_bgr.shape, self.detector_sizes)
            boxed = await self.stages.cpu(letterbox, image_bgr, size)
            detections = await self.models.detect(boxed.image[None])
            return await self.stages.cpu(
                faces_from_detections, detections[0], boxed.scale, self.score_threshold
            )

    async def embed(self, image_bgr: np.ndarray, faces: list[Face]) -> list[EmbeddedFace]:
        """Descriptors of the given faces, in one batched model call."""
        if not faces:
            return []
        with self.stages.timed("align"):
            chips = await self.stages.cpu(face_chips, image_bgr, faces, self.mirror)
        with self.stages.timed("embed"):
            descriptors = await self.models.embed(chips)
        if self.mirror:
            descriptors = (descriptors[0::2] + descriptors[1::2]) / 2
        return [EmbeddedFace(face, d) for face, d in zip(faces, descriptors, strict=True)]

    async def main_face(self, image_bgr: np.ndarray) -> EmbeddedFace | None:
        """The face nearest the picture's centre, embedded; None when there is no face."""
        faces = await self.detect(image_bgr)
        if not faces:
            return None
        (embedded,) = await self.embed(image_bgr, [nearest_to_centre(faces, image_bgr.shape)])
        return embedded

    def compare(self, a: EmbeddedFace, b: EmbeddedFace) -> float:
        """The calibrated verification_score of two faces."""
        return self.calibration.compare(a.descriptor, b.descriptor)

    def verify(self, descriptor: np.ndarray, references: Sequence[EmbeddedFace]) -> Verification:
        """A face's descriptor scored against each reference (a descriptor alone: a liveness
        session keeps only that between its capture and its result)."""
        return Verification(
            tuple(self.calibration.compare(descriptor, r.descriptor) for r in references))

    def compare_all(self, first: list[EmbeddedFace], second: list[EmbeddedFace]) -> np.ndarray:
        """Scores of each face of `first` (rows) against each face of `second` (columns)."""
        return self.calibration.compare_all(
            np.stack([e.descriptor for e in first]), np.stack([e.descriptor for e in second])
        )

    async def liveness(self, sightings: Sequence[Sighting]) -> np.ndarray:
        """MiniFASNet P(real) of each sighting's face, in one batched model call."""
        with self.stages.timed("liveness"):
            crops = await self.stages.cpu(
                lambda: [liveness_crops(s.image, s.face) for s in sightings]
            )
            p_real = await self.models.liveness(
                np.stack([c[0] for c in crops]), np.stack([c[1] for c in crops])
            )
        return np.asarray(p_real, dtype=np.float64).reshape(-1)

    async def picture_liveness(self, sightings: Sequence[Sighting]) -> PictureEvidence:
        """P(real) and the screen moire over the sightings (the liveness_file's frames, a
        video's sampled frames), the two computed side by side."""
        p_real, ripples = await asyncio.gather(
            self.liveness(sightings),
            self.stages.cpu(lambda: [chroma_ripple(s.image, s.face.box) for s in sightings]),
        )
        moire, moire_score = recapture_score(ripples)
        return PictureEvidence(float(np.mean(p_real)), moire, moire_score)

    async def best_by_quality(self, sightings: Sequence[Sighting]) -> Sighting:
        """The sighting whose face has the highest `preprocessing.quality` score (the first of
        equals)."""
        scores = await self.stages.cpu(lambda: [measure(s.image, s.face).score for s in sightings])
        return sightings[int(np.argmax(scores))]

    async def best_embedded(self, sightings: Sequence[Sighting]) -> tuple[Sighting, EmbeddedFace]:
        """A capture's best-quality sighting and its face embedded."""
        best = await self.best_by_quality(sightings)
        (embedded,) = await self.embed(best.image, [best.face])
        return best, embedded

    async def match(
        self, sightings: Sequence[Sighting], references: Sequence[EmbeddedFace]
    ) -> Match:
        """A capture's best-quality face, embedded and scored against each reference."""
        best, embedded = await self.best_embedded(sightings)
        return Match(best, self.verify(embedded.descriptor, references))
