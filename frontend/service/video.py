"""Silent liveness from a video, and the video's best face against a photo.

decode (frames every 0.2 s of the first 10 s) -> detect each frame -> track, pick the subject
-> evidence: MiniFASNet P(real) and the colour moire of a screen (`preprocessing.recapture`)
on up to 8 of its frames, the planarity of its motion where it moved (`preprocessing.motion`)
-> fuse (the lowest cue that has evidence) and decide -> for a passed video, the best frame
by quality (compared with the photo, and encoded when the images are asked for). The README's
"Video standards and silent liveness" gives the rules and why.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from frontend.contract.codes import Code, ContractError, concerning
from frontend.service.budget import PixelBudget
from frontend.service.faces import SPOOF_TYPES, FacePipeline, Sighting, Verification, fuse
from frontend.service.photos import PhotoService, Reference
from preprocessing.alignment import face_crop
from preprocessing.image import encode_jpeg
from preprocessing.motion import MotionEvidence, planarity
from preprocessing.quality import FaceQuality, measure
from preprocessing.tracking import Track, subject_of, track_faces, visible_seconds
from preprocessing.video import Video, VideoLimits, probe_and_decode

SAMPLE_INTERVAL_S = 0.2
ANALYSIS_WINDOW_S = 10.0
MIN_FACE_SECONDS = 2.0
LIVENESS_FRAMES = 8
MIN_FACE_WIDTH_PX = 32
"""Narrower faces (in the analysed frame, longer side <= 1280 px) are not a usable subject.
MiniFASNet still scores a 39 px face (a 75 px face at 720p, filmed at 360p); 48 px refused
such clips (benchmarks/liveness_robustness.md)."""
VIDEO_PIXELS = (round(ANALYSIS_WINDOW_S / SAMPLE_INTERVAL_S) + 1) * 1280 * 720
"""What one video's analysed frames hold at most (frames shrunk to 1280 px, 16:9)."""
MIN_TRACK_FRAMES = 3
"""A face seen in fewer picked frames (0.6 s) is a detector flicker, not a person."""


@dataclass(frozen=True)
class VideoLiveness:
    """The liveness decision on one video and the evidence behind it.

    Attributes:
        passed: the score reached the threshold and the face was visible for 2 s.
        score: the fused liveness score in [0, 1].
        status: ``ok``, ``hack`` or ``short_time``.
        p_real: mean MiniFASNet P(real) over the subject's crops.
        motion: the planarity evidence (nan score: the face moved too little to say).
        moire: the median colour ripple of the scored frames (`preprocessing.recapture`).
        moire_score: its score, 1 live-like .. 0 screen-like (nan: not measured).
        decided_by: the cue that gave the score: ``p_real``, ``motion`` or ``moire``.
        capture_problem: for a video that did not pass, what in the capture (not an attack)
            can explain it (`capture_problem`), or None.
        face_seconds: how long the subject was visible in the analysed window.
        video: the decoded video (the picked frames).
        subject: the subject's track.
    """

    passed: bool
    score: float
    status: str
    p_real: float
    motion: MotionEvidence
    face_seconds: float
    video: Video
    subject: Track
    moire: float = math.nan
    moire_score: float = math.nan
    decided_by: str = "p_real"
    capture_problem: str | None = None

    def sightings(self) -> list[Sighting]:
        """The subject in each frame it was seen in, in time order."""
        frames = self.video.frames
        return [
            Sighting(frames[i].image, face, frames[i].timestamp_s)
            for i, face in sorted(self.subject.faces.items())
        ]


@dataclass(frozen=True)
class FrameImages:
    """The best frame and its face, as the answer returns them."""

    timestamp_s: float
    frame_jpeg: bytes
    face_jpeg: bytes


@dataclass(frozen=True)
class LivenessAnswer:
    """What a video endpoint answers: the decision, and for a passed video the images (when
    asked for) and the score against the photo (silent_image_verification)."""

    liveness: VideoLiveness
    images: FrameImages | None = None
    verification: Verification | None = None


def spoof_type(liveness: VideoLiveness) -> str:
    """``screen``, ``still_photo`` or ``unknown``, from the cue that refused the video."""
    return SPOOF_TYPES.get(liveness.decided_by, "unknown")


MIN_CAPTURE_WIDTH_PX = 48
DARK_BRIGHTNESS, BRIGHT_BRIGHTNESS, SOFT_BLUR = 0.2, 0.7, 0.6
"""Capture limits for `capture_problem`, on `preprocessing.quality`'s scales: LFW's median
brightness is 0.46 and blur 0.39 (a 3 px blur reads 0.61); the live clips measure 0.46-0.55,
their over-exposed copies (`benchmarks.live_variants` @bright), which MiniFASNet refuses,
0.73-0.75 (chosen on those clips: an advice to the user, not a decision)."""


def capture_problem(status: str, qualities: list[FaceQuality], widths: list[float]
                    ) -> str | None:
    """What in the capture, not an attack, can explain a refusal: ``face_lost`` (seen under
    2 s), ``face_too_small``, ``too_dark``, ``too_bright``, ``too_blurred``; None otherwise.
    Medians over the frames scored, so one bad frame does not decide."""
    if status == "short_time":
        return "face_lost"
    if not qualities:
        return None
    brightness = float(np.median([q.brightness for q in qualities]))
    if float(np.median(widths)) < MIN_CAPTURE_WIDTH_PX:
        return "face_too_small"
    if brightness < DARK_BRIGHTNESS:
        return "too_dark"
    if brightness > BRIGHT_BRIGHTNESS:
        return "too_bright"
    if float(np.median([q.blur for q in qualities])) > SOFT_BLUR:
        return "too_blurred"
    return None


def spread(indices: list[int], count: int) -> list[int]:
    """Up to `count` of the indices, evenly spaced."""
    if len(indices) <= count:
        return indices
    picks = np.linspace(0, len(indices) - 1, count).round().astype(int)
    return [indices[i] for i in picks]


def frame_images(best: Sighting) -> FrameImages:
    """The sighting's frame and its face crop (the box grown by 30%), as JPEG."""
    return FrameImages(
        best.timestamp_s, encode_jpeg(best.image), encode_jpeg(face_crop(best.image, best.face))
    )


class VideoService:
    """Args:
    pipeline: the face pipeline.
    photos: reads the reference photo of silent_image_verification.
    limits: what a video may be.
    threshold: the fused liveness score a live video must reach.
    budget: decoded pixels across requests (None: not counted, for in-process tools).
    """

    def __init__(
        self, pipeline: FacePipeline, photos: PhotoService, limits: VideoLimits, *,
        threshold: float, budget: PixelBudget | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.stages = pipeline.stages
        self.photos = photos
        self.limits = limits
        self.threshold = threshold
        self.budget = budget or PixelBudget(capacity_px=2**62)

    async def silent_liveness(self, data: bytes) -> VideoLiveness:
        """Decide whether the video shows a live person.

        Raises:
            VideoError: the video breaks a limit, is too short or does not decode (2008).
            ContractError(4007): no usable face in any analysed frame.
        """
        with concerning("encrypted_video"):
            return await self._silent_liveness(data)

    async def _silent_liveness(self, data: bytes) -> VideoLiveness:
        await self.budget.reserve(VIDEO_PIXELS)
        with self.stages.timed("video_decode"):
            video = await self.stages.cpu(
                probe_and_decode, data, self.limits,
                interval_s=SAMPLE_INTERVAL_S, window_s=ANALYSIS_WINDOW_S,
            )
        with self.stages.timed("video_detect"):
            detections = await asyncio.gather(
                *(self.pipeline.detect(f.image) for f in video.frames)
            )
        usable = [[f for f in faces if f.box[2] >= MIN_FACE_WIDTH_PX] for faces in detections]
        tracks = [t for t in track_faces(usable) if len(t.faces) >= MIN_TRACK_FRAMES]
        if not tracks:
            raise ContractError(
                Code.LIVENESS_CHECK_FAILED, "no usable face in any frame of the video"
            )
        subject = subject_of(tracks)
        with self.stages.timed("video_liveness"):
            sampled = [
                Sighting(video.frames[i].image, subject.faces[i])
                for i in spread(sorted(subject.faces), LIVENESS_FRAMES)
            ]
            pictures = await self.pipeline.picture_liveness(sampled)
        with self.stages.timed("video_motion"):
            motion = await self.stages.cpu(
                planarity,
                [f.image for f in video.frames],
                [f.timestamp_s for f in video.frames],
                [subject.faces[i].box if i in subject.faces else None
                 for i in range(len(video.frames))],
            )
        face_seconds = visible_seconds(video, subject, SAMPLE_INTERVAL_S)
        score, decided_by = fuse({
            "p_real": pictures.p_real, "motion": motion.score, "moire": pictures.moire_score,
        })
        if face_seconds < MIN_FACE_SECONDS:
            status = "short_time"
        else:
            status = "ok" if score >= self.threshold else "hack"
        problem = None
        if status != "ok":
            qualities = await self.stages.cpu(lambda: [measure(s.image, s.face) for s in sampled])
            problem = capture_problem(status, qualities, [s.face.box[2] for s in sampled])
        return VideoLiveness(
            passed=status == "ok", score=score, status=status, p_real=pictures.p_real,
            motion=motion, face_seconds=face_seconds, video=video, subject=subject,
            moire=pictures.moire, moire_score=pictures.moire_score, decided_by=decided_by,
            capture_problem=problem,
        )

    async def silent_detection(self, data: bytes, *, images: bool) -> LivenessAnswer:
        """The liveness decision, with the best frame's images when `images` and it passed."""
        liveness = await self.silent_liveness(data)
        if not (liveness.passed and images):
            return LivenessAnswer(liveness)
        best = await self.pipeline.best_by_quality(liveness.sightings())
        return LivenessAnswer(liveness, await self.stages.cpu(frame_images, best))

    async def silent_verification(
        self, video: bytes, references: Sequence[Reference], *, auto_rotate: bool,
        check_quality: bool, images: bool, single_face: bool = False,
    ) -> LivenessAnswer:
        """Liveness of the video and, when it passed, its best face against each reference.

        The photos are checked either way: a bad photo is its own error even for a spoof.
        """
        liveness, embedded = await asyncio.gather(
            self.silent_liveness(video),
            self.photos.references(
                references, auto_rotate=auto_rotate, check_quality=check_quality,
                single_face=single_face,
            ),
        )
        if not liveness.passed:
            return LivenessAnswer(liveness)
        match = await self.pipeline.match(liveness.sightings(), embedded)
        encoded = await self.stages.cpu(frame_images, match.best) if images else None
        return LivenessAnswer(liveness, encoded, match.verification)
