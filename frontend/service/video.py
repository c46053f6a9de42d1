"""Silent liveness from a video, and the video's best face against a photo.

The way through (each step a function; CPU work in the executor, models through Triton):

1. decode: `preprocessing.video.probe_and_decode` picks frames every 0.2 s of real time from
   the first 10 s (limits checked from the header first; any failure is ``2008``);
2. detect every picked frame (one Triton request each, merged by the dynamic batcher);
   faces narrower than `MIN_FACE_WIDTH_PX` are ignored;
3. track: faces are chained frame to frame by box overlap, and a track seen in fewer than
   `MIN_TRACK_FRAMES` frames is a detector flicker; the **subject** is the track seen
   in the most frames (ties: the larger median face). A second person walking through is a
   shorter track and never becomes the subject; a replay's attacker, seen only while the
   phone is raised, loses to the face on the screen that the whole video is about;
4. visible time: the subject's frames, each counting the time to the next picked frame
   (at most the sampling interval), so "2 s" is real time, not a frame count;
5. evidence: MiniFASNet P(real) on the subject's crops from up to `LIVENESS_FRAMES` frames
   spread over the track (one batched call), and the planarity of the subject's motion
   (`preprocessing.motion`), which a picture moved by hand cannot fake;
6. fuse (`fuse`): the smaller of the two, so each cue can veto;
7. decide: no usable face in any frame is ``4007``; visible under 2 s is ``short_time``; otherwise
   ``ok`` when the score reaches the threshold, ``hack`` below it;
8. best frame (only for a passed video, when a photo or the images need it): among the
   subject's frames, the highest `preprocessing.quality` score.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cv2
import numpy as np

from frontend.contract.codes import Code, ContractError
from frontend.executor import run_cpu
from frontend.service.photos import PhotoService
from preprocessing.alignment import liveness_crops
from preprocessing.detection import Face
from preprocessing.motion import MotionEvidence, planarity
from preprocessing.quality import measure
from preprocessing.video import Video, VideoLimits, probe_and_decode

T = TypeVar("T")

SAMPLE_INTERVAL_S = 0.2
ANALYSIS_WINDOW_S = 10.0
MIN_FACE_SECONDS = 2.0
LIVENESS_FRAMES = 8
TRACK_IOU = 0.3
MIN_FACE_WIDTH_PX = 48
"""Narrower faces (in the analysed frame, longer side <= 1280 px) are not a usable subject:
too few pixels for the liveness crops and the motion cue."""
MIN_TRACK_FRAMES = 3
"""A face seen in fewer picked frames (0.6 s) is a detector flicker, not a person."""
FACE_CROP_MARGIN = 0.3
JPEG_QUALITY = 90


@dataclass(frozen=True)
class Track:
    """One face followed over the picked frames: frame index -> face."""

    faces: dict[int, Face]

    @property
    def median_width(self) -> float:
        return float(np.median([f.box[2] for f in self.faces.values()]))


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
        seconds: wall time of each stage (decode, detect, liveness, motion).
    """

    passed: bool
    score: float
    status: str
    p_real: float
    motion: MotionEvidence
    face_seconds: float
    video: Video
    subject: Track
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BestFrame:
    """The subject's frame chosen for comparison and for the returned images."""

    timestamp_s: float
    image: np.ndarray
    face: Face


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    return inter / (aw * ah + bw * bh - inter) if inter > 0 else 0.0


def track_faces(detections: list[list[Face]]) -> list[Track]:
    """Chain faces over frames: each face joins the open track whose last box overlaps it most
    (IoU above `TRACK_IOU`), or starts a new one. A track stays open across frames without a
    match, so a face hidden for a moment keeps its track."""
    tracks: list[dict[int, Face]] = []
    for index, faces in enumerate(detections):
        taken: set[int] = set()
        for face in faces:
            best, best_iou = None, TRACK_IOU
            for number, track in enumerate(tracks):
                if number in taken:
                    continue
                last = track[max(track)]
                overlap = _iou(last.box, face.box)
                if overlap > best_iou:
                    best, best_iou = number, overlap
            if best is None:
                tracks.append({index: face})
                taken.add(len(tracks) - 1)
            else:
                tracks[best][index] = face
                taken.add(best)
    return [Track(t) for t in tracks]


def subject_of(tracks: list[Track]) -> Track:
    """The face the video is about: seen in the most frames, then the larger."""
    return max(tracks, key=lambda t: (len(t.faces), t.median_width))


def visible_seconds(video: Video, track: Track, interval_s: float = SAMPLE_INTERVAL_S) -> float:
    """Time the subject is visible: each of its frames counts until the next picked frame."""
    times = [f.timestamp_s for f in video.frames]
    ends = [*times[1:], times[-1] + interval_s]
    return float(sum(min(ends[i] - times[i], interval_s) for i in track.faces))


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


def encode_jpeg(image_bgr: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buffer.tobytes()


def face_crop(image_bgr: np.ndarray, face: Face, margin: float = FACE_CROP_MARGIN) -> np.ndarray:
    """The face's box grown by `margin` on each side, clipped to the frame."""
    x, y, w, h = face.box
    height, width = image_bgr.shape[:2]
    left, top = max(0, int(x - margin * w)), max(0, int(y - margin * h))
    right, bottom = min(width, int(x + w * (1 + margin))), min(height, int(y + h * (1 + margin)))
    return image_bgr[top:bottom, left:right]


class VideoService:
    """Args:
    photos: the photo service (its pipeline, calibration and executor are shared).
    limits: what a video may be.
    threshold: the fused liveness score a live video must reach.
    """

    def __init__(self, photos: PhotoService, limits: VideoLimits, *, threshold: float) -> None:
        self.photos = photos
        self.pipeline = photos.pipeline
        self.limits = limits
        self.threshold = threshold

    async def _run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_cpu(self.photos.executor, function, *args, **kwargs)

    async def silent_liveness(self, data: bytes) -> VideoLiveness:
        """Decide whether the video shows a live person.

        Raises:
            VideoError: the video breaks a limit, is too short or does not decode (2008).
            ContractError(4007): no face in any analysed frame.
        """
        seconds: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            seconds[stage] = now - clock
            clock = now

        video = await self._run(
            probe_and_decode,
            data,
            self.limits,
            interval_s=SAMPLE_INTERVAL_S,
            window_s=ANALYSIS_WINDOW_S,
        )
        lap("decode")
        detections = await asyncio.gather(*(self.pipeline.detect(f.image) for f in video.frames))
        usable = [[f for f in faces if f.box[2] >= MIN_FACE_WIDTH_PX] for faces in detections]
        tracks = [t for t in track_faces(usable) if len(t.faces) >= MIN_TRACK_FRAMES]
        if not tracks:
            raise ContractError(
                Code.LIVENESS_CHECK_FAILED, "no usable face in any frame of the video"
            )
        subject = subject_of(tracks)
        frames = sorted(subject.faces)
        lap("detect")
        sampled = spread(frames, LIVENESS_FRAMES)
        crops = await self._run(
            lambda: [liveness_crops(video.frames[i].image, subject.faces[i]) for i in sampled]
        )
        p_real = await self.pipeline.models.liveness(
            np.stack([c[0] for c in crops]), np.stack([c[1] for c in crops])
        )
        p_mean = float(np.mean(p_real))
        lap("liveness")
        motion = await self._run(
            planarity,
            [f.image for f in video.frames],
            [f.timestamp_s for f in video.frames],
            [
                subject.faces[i].box if i in subject.faces else None
                for i in range(len(video.frames))
            ],
        )
        lap("motion")
        face_seconds = visible_seconds(video, subject)
        score = float(np.clip(fuse(p_mean, motion), 0.0, 1.0))
        if face_seconds < MIN_FACE_SECONDS:
            status = "short_time"
        else:
            status = "ok" if score >= self.threshold else "hack"
        return VideoLiveness(
            passed=status == "ok",
            score=score,
            status=status,
            p_real=p_mean,
            motion=motion,
            face_seconds=face_seconds,
            video=video,
            subject=subject,
            seconds=seconds,
        )

    async def best_frame(self, liveness: VideoLiveness) -> BestFrame:
        """The subject's frame with the highest quality score. Only a passed video needs one
        (for comparison or the returned images), so it is not chosen during the decision."""
        indices = sorted(liveness.subject.faces)
        frames, faces = liveness.video.frames, liveness.subject.faces
        scores = await self._run(
            lambda: [measure(frames[i].image, faces[i]).score for i in indices]
        )
        best = indices[int(np.argmax(scores))]
        return BestFrame(frames[best].timestamp_s, frames[best].image, faces[best])

    async def liveness_and_verify(
        self, video: bytes, photo: bytes, *, auto_rotate: bool, check_quality: bool
    ) -> tuple[VideoLiveness, BestFrame | None, float | None]:
        """Liveness of the video and, when it passed, its best frame and that frame's face
        against the photo's.

        The photo is checked either way: a bad photo is its own error even for a spoof.
        """
        liveness, reference = await asyncio.gather(
            self.silent_liveness(video),
            self.photos.embedded_main_face(
                photo,
                auto_rotate=auto_rotate,
                check_quality=check_quality,
                name="encrypted_image",
            ),
        )
        if not liveness.passed:
            return liveness, None, None
        best = await self.best_frame(liveness)
        (frame_face,) = await self.pipeline.embed(best.image, [best.face])
        return liveness, best, self.photos.score(frame_face.descriptor, reference.descriptor)

    async def images(self, best: BestFrame) -> tuple[bytes, bytes]:
        """The best frame and its face crop, as JPEG."""
        return await self._run(
            lambda: (encode_jpeg(best.image), encode_jpeg(face_crop(best.image, best.face)))
        )
