"""The photo endpoints' domain logic: verification, multi-face scores, quality, and a
liveness_file's frames against a photo. No HTTP here: inputs are decrypted bytes and flags,
outputs are values, and a client-visible failure is a `ContractError` or a typed input error
(`PhotoError`, `LivenessFileError`) that `frontend/api/errors.py` maps to its code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from frontend.contract.codes import Code, ContractError
from frontend.executor import run_cpu
from frontend.liveness_file import LivenessCapture, LivenessFileError
from frontend.service.faces import (
    EmbeddedFace,
    FacePipeline,
    ObserveStage,
    nearest_to_centre,
    timed,
)
from frontend.service.scores import ScoreCalibration
from preprocessing.alignment import liveness_crops
from preprocessing.detection import Face
from preprocessing.image import PhotoError, PhotoLimits, decode_photo, rotations, turn
from preprocessing.quality import FaceQuality, measure

T = TypeVar("T")


@dataclass(frozen=True)
class Photo:
    """A decoded photo as the faces were found in it (turned when ``auto_rotate`` needed it).

    Attributes:
        image: H x W x 3 uint8 BGR.
        faces: every face, highest detector score first (never empty).
        rotation: degrees clockwise the stored photo was turned (0, 90, 180 or 270).
    """

    image: np.ndarray
    faces: list[Face]
    rotation: int = 0


@dataclass(frozen=True)
class FaceReport:
    face: Face
    quality: FaceQuality


@dataclass(frozen=True)
class MultiFaceResult:
    scores: np.ndarray  # [faces of first, faces of second]
    first: list[Face]
    second: list[Face]


@dataclass(frozen=True)
class FramesLiveness:
    """What the frames of a liveness_file showed.

    Attributes:
        frame_scores: P(real) of the main face of each frame that has one.
        score: their mean.
        best: the frame (image and face) used for comparison.
    """

    frame_scores: list[float]
    score: float
    best: tuple[np.ndarray, Face]


class PhotoService:
    """Args:
    pipeline: detection and embedding through Triton.
    calibration: raw distance -> calibrated verification_score.
    limits: what a photo may be.
    executor: where decoding, quality measures and crops run.
    liveness_threshold: mean P(real) a liveness_file's frames must reach.
    observe_stage: called with a stage's name and its seconds (metrics).
    """

    def __init__(
        self,
        pipeline: FacePipeline,
        calibration: ScoreCalibration,
        limits: PhotoLimits,
        executor: concurrent.futures.Executor | None = None,
        *,
        liveness_threshold: float = 0.5,
        observe_stage: ObserveStage = lambda stage, seconds: None,
    ) -> None:
        self.pipeline = pipeline
        self.calibration = calibration
        self.limits = limits
        self.executor = executor
        self.liveness_threshold = liveness_threshold
        self.observe_stage = observe_stage

    async def _run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_cpu(self.executor, function, *args, **kwargs)

    async def open_photo(self, data: bytes, *, auto_rotate: bool, name: str) -> Photo:
        """Decode a photo and find its faces.

        With ``auto_rotate``, the EXIF orientation is applied, the photo is searched in all four
        turns, and a main face still lying on its side turns the photo upright.

        Raises:
            PhotoError: the photo breaks a limit or does not decode.
            ContractError(4000): no face, upright or (with ``auto_rotate``) turned.
        """
        with timed(self.observe_stage, "decode"):
            image = await self._run(decode_photo, data, self.limits, honour_exif=auto_rotate)
        if not auto_rotate:
            faces = await self.pipeline.detect(image)
            if faces:
                return Photo(image, faces)
            raise ContractError(Code.DETECTION_FAILED, f"no face in {name}")
        # YuNet also finds faces lying sideways or upside down, some with confident landmarks
        # in upright order: all four turns are searched (one batched detector call each, in
        # parallel) and the one whose best face scores highest wins.
        turns = [(0, image), *await self._run(rotations, image)]
        found = await asyncio.gather(*(self.pipeline.detect(turned) for _, turned in turns))
        candidates = [
            Photo(turned, faces, degrees)
            for (degrees, turned), faces in zip(turns, found, strict=True)
            if faces
        ]
        if not candidates:
            raise ContractError(Code.DETECTION_FAILED, f"no face in {name}")
        return await self._upright(max(candidates, key=lambda p: p.faces[0].score))

    async def _upright(self, photo: Photo) -> Photo:
        """The photo turned so that its main face stands upright, when it lies otherwise."""
        degrees = nearest_to_centre(photo.faces, photo.image.shape).upright_turn
        if degrees == 0:
            return photo
        turned = await self._run(turn, photo.image, degrees)
        faces = await self.pipeline.detect(turned)
        if not faces:
            return photo
        return Photo(turned, faces, (photo.rotation + degrees) % 360)

    async def _main_face(self, photo: Photo, *, check_quality: bool, name: str) -> EmbeddedFace:
        face = nearest_to_centre(photo.faces, photo.image.shape)
        if check_quality:
            quality = await self._run(measure, photo.image, face)
            if quality.occluded:
                raise ContractError(Code.FACE_OCCLUSION, f"the face in {name} is occluded")
        (embedded,) = await self.pipeline.embed(photo.image, [face])
        return embedded

    async def embedded_main_face(
        self, data: bytes, *, auto_rotate: bool, check_quality: bool, name: str
    ) -> EmbeddedFace:
        photo = await self.open_photo(data, auto_rotate=auto_rotate, name=name)
        return await self._main_face(photo, check_quality=check_quality, name=name)

    async def verify(
        self, first: bytes, second: bytes, *, auto_rotate: bool, check_quality: bool
    ) -> float:
        """Calibrated score of the main face of one photo against the other's."""
        a, b = await asyncio.gather(
            self.embedded_main_face(
                first,
                auto_rotate=auto_rotate,
                check_quality=check_quality,
                name="first_encrypted_image",
            ),
            self.embedded_main_face(
                second,
                auto_rotate=auto_rotate,
                check_quality=check_quality,
                name="second_encrypted_image",
            ),
        )
        return self.score(a.descriptor, b.descriptor)

    def score(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(self.calibration.score(float(np.linalg.norm(a - b))))

    async def multi_face(
        self, first: bytes, second: bytes, *, auto_rotate: bool
    ) -> MultiFaceResult:
        """Every face of the first photo scored against every face of the second."""

        async def all_faces(data: bytes, name: str) -> tuple[list[Face], np.ndarray]:
            photo = await self.open_photo(data, auto_rotate=auto_rotate, name=name)
            embedded = await self.pipeline.embed(photo.image, photo.faces)
            return photo.faces, np.stack([e.descriptor for e in embedded])

        (faces_a, desc_a), (faces_b, desc_b) = await asyncio.gather(
            all_faces(first, "first_encrypted_image"), all_faces(second, "second_encrypted_image")
        )
        distances = np.linalg.norm(desc_a[:, None, :] - desc_b[None, :, :], axis=-1)
        return MultiFaceResult(np.asarray(self.calibration.score(distances)), faces_a, faces_b)

    async def quality(self, data: bytes) -> list[FaceReport]:
        """Quality measures of every face in the photo."""
        photo = await self.open_photo(data, auto_rotate=False, name="encrypted_image")
        qualities = await self._run(lambda: [measure(photo.image, f) for f in photo.faces])
        return [FaceReport(f, q) for f, q in zip(photo.faces, qualities, strict=True)]

    async def frames_liveness(self, capture: LivenessCapture) -> FramesLiveness:
        """Silent liveness on the main face of each captured frame.

        Raises:
            LivenessFileError: a frame does not decode.
            ContractError(4007): no frame shows a face.
        """
        images = await asyncio.gather(
            *(
                self._run(self._decode_frame, frame.jpeg, index)
                for index, frame in enumerate(capture.frames)
            )
        )
        detections = await asyncio.gather(*(self.pipeline.detect(image) for image in images))
        seen = [
            (image, nearest_to_centre(faces, image.shape))
            for image, faces in zip(images, detections, strict=True)
            if faces
        ]
        if not seen:
            raise ContractError(Code.LIVENESS_CHECK_FAILED, "no face in any liveness frame")
        with timed(self.observe_stage, "liveness"):
            crops = await self._run(lambda: [liveness_crops(image, face) for image, face in seen])
            p_real = await self.pipeline.models.liveness(
                np.stack([c[0] for c in crops]), np.stack([c[1] for c in crops])
            )
        scores = [float(p) for p in np.asarray(p_real).reshape(-1)]
        qualities = await self._run(lambda: [measure(image, face).score for image, face in seen])
        best = seen[int(np.argmax(qualities))]
        return FramesLiveness(scores, float(np.mean(scores)), best)

    def _decode_frame(self, jpeg: bytes, index: int) -> np.ndarray:
        try:
            return decode_photo(jpeg, self.limits, honour_exif=False)
        except PhotoError as error:
            raise LivenessFileError(f"frame {index}: {error}") from error

    async def liveness_verify(
        self,
        capture: LivenessCapture,
        photo_data: bytes,
        *,
        auto_rotate: bool,
        check_quality: bool,
    ) -> float:
        """The liveness_file's best frame against the photo, once the frames are found live.

        Raises:
            ContractError(4007): no face in the frames, or their liveness is below threshold.
        """
        liveness, reference = await asyncio.gather(
            self.frames_liveness(capture),
            self.embedded_main_face(
                photo_data,
                auto_rotate=auto_rotate,
                check_quality=check_quality,
                name="encrypted_image",
            ),
        )
        if liveness.score < self.liveness_threshold:
            raise ContractError(
                Code.LIVENESS_CHECK_FAILED,
                f"liveness {liveness.score:.3f} below threshold {self.liveness_threshold}",
            )
        image, face = liveness.best
        (frame_face,) = await self.pipeline.embed(image, [face])
        return self.score(frame_face.descriptor, reference.descriptor)
