"""Silent liveness from a video, and the video's best face against a photo.

decode (frames every 0.2 s of the first 10 s) -> detect each frame -> track, pick the subject
-> evidence (MiniFASNet P(real) on up to 8 of its frames, the planarity of its motion) ->
fuse and decide -> for a passed video, the best frame by quality (compared with the photo,
and encoded when the images are asked for). The README's "Video standards and silent
liveness" gives the rules and why.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from frontend.contract.codes import Code, ContractError, concerning
from frontend.service.budget import PixelBudget
from frontend.service.faces import FacePipeline, Sighting, Verification
from frontend.service.photos import PhotoService, Reference
from preprocessing.alignment import face_crop
from preprocessing.image import encode_jpeg
from preprocessing.motion import MotionEvidence, planarity
from preprocessing.tracking import Track, subject_of, track_faces, visible_seconds
from preprocessing.video import Video, VideoLimits, probe_and_decode

SAMPLE_INTERVAL_S = 0.2
ANALYSIS_WINDOW_S = 10.0
MIN_FACE_SECONDS = 2.0
LIVENESS_FRAMES = 8
MIN_FACE_WIDTH_PX = 48
"""Narrower faces (in the analysed frame, longer side <= 1280 px) are not a usable subject:
too few pixels for the liveness crops and the motion cue."""
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
        motion: the planarity evidence.
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


def fuse(p_real: float, motion: MotionEvidence) -> float:
    """One score from the two cues: the smaller, so either can veto. Without a measurable
    motion (a track too short for frame pairs) the picture cue decides alone."""
    if motion.pairs == 0 or math.isnan(motion.score):
        return p_real
    return min(p_real, motion.score)


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
            sampled = spread(sorted(subject.faces), LIVENESS_FRAMES)
            p_real = await self.pipeline.liveness(
                [Sighting(video.frames[i].image, subject.faces[i]) for i in sampled]
            )
        p_mean = float(np.mean(p_real))
        with self.stages.timed("video_motion"):
            motion = await self.stages.cpu(
                planarity,
                [f.image for f in video.frames],
                [f.timestamp_s for f in video.frames],
                [subject.faces[i].box if i in subject.faces else None
                 for i in range(len(video.frames))],
            )
        face_seconds = visible_seconds(video, subject, SAMPLE_INTERVAL_S)
        score = float(np.clip(fuse(p_mean, motion), 0.0, 1.0))
        if face_seconds < MIN_FACE_SECONDS:
            status = "short_time"
        else:
            status = "ok" if score >= self.threshold else "hack"
        return VideoLiveness(
            passed=status == "ok", score=score, status=status, p_real=p_mean, motion=motion,
            face_seconds=face_seconds, video=video, subject=subject,
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
