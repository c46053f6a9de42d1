"""The photo endpoints' domain logic: verification, multi-face scores, quality, and a
liveness_file's frames against a photo. No HTTP here: inputs are decrypted bytes and flags,
outputs are values, and a client-visible failure is a `ContractError` or a typed input error
(`PhotoError`, `LivenessFileError`) that `frontend/api/errors.py` maps to its code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from frontend.contract.codes import Code, ContractError, concerning
from frontend.contract.liveness_file import LivenessCapture, LivenessFileError
from frontend.service.budget import PixelBudget
from frontend.service.faces import (
    SPOOF_TYPES,
    EmbeddedFace,
    FacePipeline,
    Sighting,
    Verification,
    fuse,
)
from preprocessing.detection import Face, nearest_to_centre
from preprocessing.image import (
    PhotoError,
    PhotoLimits,
    decode_photo,
    photo_size,
    rotations,
    turn,
)
from preprocessing.quality import FaceQuality, measure
from preprocessing.usability import DEFAULT_RULE, UsabilityRule, unusable_reason, usable_faces

Reference = tuple[str, bytes]
"""A reference photo: the request field it came in, and its decrypted bytes."""


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
    """Attributes:
    face: the detection.
    quality: its measures.
    unusable: why it is not compared (`preprocessing.usability.REASONS`), or None.
    """

    face: Face
    quality: FaceQuality
    unusable: str | None = None


@dataclass(frozen=True)
class MultiFaceResult:
    scores: np.ndarray  # [faces of first, faces of second]
    first: list[Face]
    second: list[Face]


class PhotoService:
    """Args:
    pipeline: the face pipeline (its stages run and time the CPU work here too).
    limits: what a photo may be.
    liveness_threshold: mean P(real) a liveness_file's frames must reach.
    usability: which detections are faces that can be compared.
    budget: decoded pixels across requests (None: not counted, for in-process tools).
    """

    def __init__(
        self, pipeline: FacePipeline, limits: PhotoLimits, *, liveness_threshold: float = 0.5,
        usability: UsabilityRule = DEFAULT_RULE, budget: PixelBudget | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.stages = pipeline.stages
        self.limits = limits
        self.liveness_threshold = liveness_threshold
        self.usability = usability
        self.budget = budget or PixelBudget(capacity_px=2**62)

    async def open_photo(self, data: bytes, *, auto_rotate: bool, name: str) -> Photo:
        """Decode a photo and find its faces; a failure concerns the request field `name`.

        With ``auto_rotate``, the EXIF orientation is applied, the photo is searched in all four
        turns, and a main face still lying on its side turns the photo upright.

        Raises:
            PhotoError: the photo breaks a limit or does not decode.
            ContractError(4000): no face, upright or (with ``auto_rotate``) turned.
        """
        with concerning(name):
            return await self._open_photo(data, auto_rotate=auto_rotate, name=name)

    async def _open_photo(self, data: bytes, *, auto_rotate: bool, name: str) -> Photo:
        with self.stages.timed("decode"):
            width, height = await self.stages.cpu(photo_size, data, self.limits)
            # auto_rotate holds the photo in all four turns while they are searched
            await self.budget.reserve(width * height * (4 if auto_rotate else 1))
            image = await self.stages.cpu(decode_photo, data, self.limits, honour_exif=auto_rotate)
        if not auto_rotate:
            faces = await self.pipeline.detect(image)
            if faces:
                return Photo(image, faces)
            raise ContractError(Code.DETECTION_FAILED, f"no face in {name}")
        # YuNet also finds faces lying sideways or upside down, some with confident landmarks
        # in upright order: all four turns are searched (one batched detector call each, in
        # parallel) and the one whose best face scores highest wins.
        turns = [(0, image), *await self.stages.cpu(rotations, image)]
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
        turned = await self.stages.cpu(turn, photo.image, degrees)
        faces = await self.pipeline.detect(turned)
        if not faces:
            return photo
        return Photo(turned, faces, (photo.rotation + degrees) % 360)

    async def usable(self, photo: Photo, name: str) -> list[Face]:
        """The photo's faces that can be compared (`preprocessing.usability`).

        Raises:
            ContractError(4000): every face found is a fragment.
        """
        faces = await self.stages.cpu(usable_faces, photo.image, photo.faces, self.usability)
        if not faces:
            raise ContractError(
                Code.DETECTION_FAILED,
                f"no usable face in {name}: {len(photo.faces)} fragment(s) only",
                field=name,
            )
        return faces

    async def reference(
        self, data: bytes, *, auto_rotate: bool, check_quality: bool, name: str,
        single_face: bool = False,
    ) -> EmbeddedFace:
        """The photo's main face (the usable face nearest the centre), embedded.

        Raises:
            PhotoError, ContractError(4000): as `open_photo`, or only fragments (`usable`).
            ContractError(4010): ``single_face`` and more than one usable face.
            ContractError(4004): ``check_quality`` and the face is occluded.
        """
        photo = await self.open_photo(data, auto_rotate=auto_rotate, name=name)
        faces = await self.usable(photo, name)
        if single_face and len(faces) > 1:
            raise ContractError(
                Code.MULTIPLE_FACES, f"{name} shows {len(faces)} usable faces", field=name
            )
        face = nearest_to_centre(faces, photo.image.shape)
        if check_quality:
            quality = await self.stages.cpu(measure, photo.image, face)
            if quality.occluded:
                raise ContractError(
                    Code.FACE_OCCLUSION, f"the face in {name} is occluded", field=name
                )
        (embedded,) = await self.pipeline.embed(photo.image, [face])
        return embedded

    async def references(
        self, references: Sequence[Reference], *, auto_rotate: bool, check_quality: bool,
        single_face: bool,
    ) -> list[EmbeddedFace]:
        """The main face of each reference photo, in order."""
        return list(await asyncio.gather(*(
            self.reference(
                data, auto_rotate=auto_rotate, check_quality=check_quality, name=name,
                single_face=single_face,
            )
            for name, data in references
        )))

    async def verify(
        self, first: bytes, references: Sequence[Reference], *, auto_rotate: bool,
        check_quality: bool, single_face: bool = False,
    ) -> Verification:
        """Calibrated scores of the first photo's main face against each reference's."""
        face, embedded = await asyncio.gather(
            self.reference(
                first, auto_rotate=auto_rotate, check_quality=check_quality,
                name="first_encrypted_image", single_face=single_face,
            ),
            self.references(
                references, auto_rotate=auto_rotate, check_quality=check_quality,
                single_face=single_face,
            ),
        )
        return self.pipeline.verify(face.descriptor, embedded)

    async def multi_face(
        self, first: bytes, second: bytes, *, auto_rotate: bool
    ) -> MultiFaceResult:
        """Every usable face of the first photo scored against every one of the second."""

        async def all_faces(data: bytes, name: str) -> list[EmbeddedFace]:
            photo = await self.open_photo(data, auto_rotate=auto_rotate, name=name)
            return await self.pipeline.embed(photo.image, await self.usable(photo, name))

        a, b = await asyncio.gather(
            all_faces(first, "first_encrypted_image"), all_faces(second, "second_encrypted_image")
        )
        return MultiFaceResult(
            self.pipeline.compare_all(a, b), [e.face for e in a], [e.face for e in b]
        )

    async def quality(self, data: bytes) -> list[FaceReport]:
        """Quality measures of every face in the photo, and whether each can be compared."""
        photo = await self.open_photo(data, auto_rotate=False, name="encrypted_image")

        def report(face: Face) -> FaceReport:
            reason = unusable_reason(photo.image, face, photo.faces, self.usability)
            return FaceReport(face, measure(photo.image, face), reason)

        return await self.stages.cpu(lambda: [report(f) for f in photo.faces])

    async def frame_sightings(self, capture: LivenessCapture) -> list[Sighting]:
        """The main face of each captured frame that shows one.

        Raises:
            LivenessFileError: a frame does not decode.
            ContractError(4007): no frame shows a face.
        """
        with concerning("liveness_file"):
            return await self._frame_sightings(capture)

    async def _frame_sightings(self, capture: LivenessCapture) -> list[Sighting]:
        images = await asyncio.gather(
            *(self._frame(frame.jpeg, index) for index, frame in enumerate(capture.frames))
        )
        detections = await asyncio.gather(*(self.pipeline.detect(image) for image in images))
        sightings = [
            Sighting(image, nearest_to_centre(faces, image.shape), frame.timestamp_ms / 1000)
            for image, faces, frame in zip(images, detections, capture.frames, strict=True)
            if faces
        ]
        if not sightings:
            raise ContractError(Code.LIVENESS_CHECK_FAILED, "no face in any liveness frame")
        return sightings

    async def _frame(self, jpeg: bytes, index: int) -> np.ndarray:
        try:
            width, height = await self.stages.cpu(photo_size, jpeg, self.limits)
        except PhotoError as error:
            raise LivenessFileError(f"frame {index}: {error}") from error
        await self.budget.reserve(width * height)
        return await self.stages.cpu(self._decode_frame, jpeg, index)

    def _decode_frame(self, jpeg: bytes, index: int) -> np.ndarray:
        try:
            return decode_photo(jpeg, self.limits, honour_exif=False)
        except PhotoError as error:
            raise LivenessFileError(f"frame {index}: {error}") from error

    async def liveness_verify(
        self,
        capture: LivenessCapture,
        references: Sequence[Reference],
        *,
        auto_rotate: bool,
        check_quality: bool,
        single_face: bool = False,
        with_spoof_type: bool = False,
    ) -> Verification:
        """The liveness_file's best frame against each reference photo, once the frames are
        found live.

        Raises:
            ContractError(4007): no face in the frames, or their liveness is below the
                threshold (answering spoof_type with `with_spoof_type`).
        """
        sightings, embedded = await asyncio.gather(
            self.frame_sightings(capture),
            self.references(
                references, auto_rotate=auto_rotate, check_quality=check_quality,
                single_face=single_face,
            ),
        )
        pictures = await self.pipeline.picture_liveness(sightings)
        score, decided_by = fuse({"p_real": pictures.p_real, "moire": pictures.moire_score})
        if score < self.liveness_threshold:
            kind = SPOOF_TYPES.get(decided_by, "unknown")
            raise ContractError(
                Code.LIVENESS_CHECK_FAILED,
                f"liveness {score:.3f} below threshold {self.liveness_threshold} ({kind})",
                field="liveness_file",
                answer={"spoof_type": kind} if with_spoof_type else None,
            )
        return (await self.pipeline.match(sightings, embedded)).verification
