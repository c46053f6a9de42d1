"""Captures for a ``liveness_file``, made by the SDK and the CLI from still images or a video.

The frames are JPEG-encoded and stamped with their time; `frontend.contract.liveness_file`
packs and seals the result. Videos are read with PyAV, turned upright by their display matrix.
"""

from __future__ import annotations

import io
import os
import platform
import time
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from frontend.contract.liveness_file import (
    JPEG_MAGIC,
    SOURCE_IMAGES,
    SOURCE_VIDEO,
    CapturedFrame,
    LivenessCapture,
    LivenessFileError,
)
from preprocessing.image import encode_jpeg

SDK_NAME = "facegate-python/0.1.0"
JPEG_QUALITY = 90

# cv2.rotate code that undoes a display matrix rotation (PyAV `VideoFrame.rotation`: the
# counter-clockwise angle at which the decoded picture is to be shown).
_ROTATE_FOR_DISPLAY = {
    90: cv2.ROTATE_90_COUNTERCLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_CLOCKWISE,
}


def capture_from_images(
    paths_or_bytes: Iterable[str | os.PathLike[str] | bytes], interval_ms: int = 200
) -> LivenessCapture:
    """Make a capture from still images, one frame each, `interval_ms` apart.

    JPEG files are kept byte for byte; other formats OpenCV reads (PNG, BMP, WebP...) are
    encoded to JPEG at quality 90.

    Raises:
        LivenessFileError: no images, or one that is not a readable image.
        OSError: a path cannot be read.
    """
    if interval_ms <= 0:
        raise ValueError(f"interval_ms must be positive, got {interval_ms}")
    frames = []
    for index, item in enumerate(paths_or_bytes):
        data = item if isinstance(item, bytes) else Path(item).read_bytes()
        label = f"image {index}" if isinstance(item, bytes) else str(item)
        picture = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if picture is None:
            raise LivenessFileError(f"{label} is not a readable image")
        jpeg = data if data.startswith(JPEG_MAGIC) else encode_jpeg(picture, JPEG_QUALITY)
        frames.append(CapturedFrame(jpeg=jpeg, timestamp_ms=index * interval_ms))
    if not frames:
        raise LivenessFileError("no images given")
    return _capture(frames, SOURCE_IMAGES)


def capture_from_video(
    video_bytes_or_path: bytes | str | os.PathLike[str], frames: int = 8
) -> LivenessCapture:
    """Sample `frames` frames of a video, evenly spaced in time from the first to the last.

    Each frame is turned upright by the stream's display matrix (phone videos), encoded to
    JPEG at quality 90 and stamped with its presentation time since the first frame. A video
    with fewer frames gives all of them.

    Raises:
        LivenessFileError: not a readable video, no video stream, or no timestamped frame.
    """
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    try:
        first_pts, last_pts, count = _scan_timestamps(video_bytes_or_path)
        if count <= frames:
            targets = None
        elif frames == 1:
            targets = [(first_pts + last_pts) / 2]
        else:
            step = (last_pts - first_pts) / (frames - 1)
            targets = [first_pts + i * step for i in range(frames)]
        picked, time_base = _decode_nearest(video_bytes_or_path, targets)
    except av.FFmpegError as error:
        raise LivenessFileError(f"not a readable video: {error}") from error
    captured: list[CapturedFrame] = []
    origin = picked[0][0] if picked else first_pts
    for pts, rotation, picture in picked:
        timestamp_ms = round((pts - origin) * time_base * 1000)
        if captured and timestamp_ms <= captured[-1].timestamp_ms:
            continue  # two frames within the same millisecond: keep the first
        rotate = _ROTATE_FOR_DISPLAY.get(rotation % 360)
        upright = picture if rotate is None else cv2.rotate(picture, rotate)
        captured.append(CapturedFrame(encode_jpeg(upright, JPEG_QUALITY), timestamp_ms))
    if not captured:
        raise LivenessFileError("the video has no decodable frames")
    return _capture(captured, SOURCE_VIDEO)


def _capture(frames: list[CapturedFrame], source: str) -> LivenessCapture:
    return LivenessCapture(
        frames=tuple(frames),
        sdk=SDK_NAME,
        device=f"{platform.system()} {platform.machine()}".strip(),
        started_at_unix_ms=int(time.time() * 1000),
        source=source,
    )


def _open_video(video: bytes | str | os.PathLike[str]) -> av.container.InputContainer:
    source = io.BytesIO(video) if isinstance(video, bytes | bytearray | memoryview) else video
    return av.open(source, mode="r")


def _scan_timestamps(video: bytes | str | os.PathLike[str]) -> tuple[int, int, int]:
    """First and last presentation timestamp and the frame count, from packets (no decoding)."""
    with _open_video(video) as container:
        if not container.streams.video:
            raise LivenessFileError("the file has no video stream")
        stream = container.streams.video[0]
        stamps = [packet.pts for packet in container.demux(stream) if packet.pts is not None]
    if not stamps:
        raise LivenessFileError("the video has no timestamped frames")
    return min(stamps), max(stamps), len(stamps)


def _decode_nearest(
    video: bytes | str | os.PathLike[str], targets: list[float] | None
) -> tuple[list[tuple[int, int, np.ndarray]], Fraction]:
    """Decode in presentation order, keeping the frame nearest to each target time.

    A target is settled as soon as a frame reaches it (the nearer of that frame and the one
    before), so only the kept frames are converted and decoding stops after the last target.
    With no targets every frame is kept.

    Returns:
        ``(pts, rotation, BGR picture)`` per kept frame in time order, and the time base.
    """
    kept: list[tuple[int, int, np.ndarray]] = []

    def keep(frame: av.VideoFrame) -> None:
        if not kept or kept[-1][0] != frame.pts:
            kept.append((frame.pts, frame.rotation, frame.to_ndarray(format="bgr24")))

    with _open_video(video) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame and slice threads; frames still come in order
        time_base = stream.time_base
        pending = list(targets) if targets is not None else []
        previous = None
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            if targets is None:
                keep(frame)
                continue
            while pending and frame.pts >= pending[0]:
                target = pending.pop(0)
                nearer_before = previous is not None and target - previous.pts <= frame.pts - target
                keep(previous if nearer_before else frame)
            if not pending:
                break
            previous = frame
        if pending and previous is not None:
            keep(previous)  # the last packets did not decode: the last frame stands in
    return kept, time_base
