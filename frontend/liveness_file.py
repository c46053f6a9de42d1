"""The ``liveness_file`` format (CONTRACT.md section 7): frames a client captured, sealed.

A `LivenessCapture` (JPEG frames with timestamps, capture metadata, a format version) is
serialized as the ``facegate.v1.LivenessFile`` protobuf (`frontend/contract/liveness_file.proto`)
and sealed with the key ring of ``encrypted_image`` (`frontend.crypto.KeyRing`), so the file is
the same ASCII wire text as any encrypted field: ``fg1.<base64>``, or the legacy fixed-IV form.

The server calls `open_sealed` on the bytes of the multipart part and answers ``2007`` for any
`LivenessFileError`. The SDK and CLI build captures with `capture_from_images` or
`capture_from_video` and `seal` them. Everything here is plain synchronous code without HTTP;
the server runs it in its CPU executor.
"""

from __future__ import annotations

import io
import os
import platform
import time
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from google.protobuf.message import DecodeError

from frontend.contract import liveness_file_pb2
from frontend.crypto import DecryptionError, KeyRing

FORMAT_VERSION = 1
SDK_NAME = "facegate-python/0.1.0"
JPEG_QUALITY = 90
JPEG_MAGIC = b"\xff\xd8\xff"

SOURCE_CAMERA = "camera"
SOURCE_IMAGES = "images"
SOURCE_VIDEO = "video"

# cv2.rotate code that undoes a display matrix rotation (PyAV `VideoFrame.rotation`: the
# counter-clockwise angle at which the decoded picture is to be shown).
_ROTATE_FOR_DISPLAY = {
    90: cv2.ROTATE_90_COUNTERCLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_CLOCKWISE,
}


class LivenessFileError(ValueError):
    """The liveness file cannot be used: it does not open, parse, or pass the limits (code 2007).

    Also raised by `capture_from_images` and `capture_from_video` for inputs they cannot read.
    """


@dataclass(frozen=True)
class CapturedFrame:
    """One frame: a complete JPEG file and its time since the start of the capture."""

    jpeg: bytes
    timestamp_ms: int


@dataclass(frozen=True)
class LivenessCapture:
    """A capture session as the SDK made it; mirrors ``facegate.v1.LivenessFile``.

    Attributes:
        frames: frames in capture order, timestamps strictly increasing.
        sdk: name/version of the SDK that made the capture.
        device: the capturing device as the SDK describes it.
        started_at_unix_ms: wall-clock start of the capture, Unix epoch ms (0 = unknown).
        source: ``"camera"``, ``"images"`` or ``"video"``.
        format_version: layout version; `unpack` accepts only `FORMAT_VERSION`.
    """

    frames: tuple[CapturedFrame, ...]
    sdk: str = ""
    device: str = ""
    started_at_unix_ms: int = 0
    source: str = ""
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        # A list would make the frozen dataclass unhashable and mutable from outside.
        object.__setattr__(self, "frames", tuple(self.frames))


@dataclass(frozen=True)
class LivenessFileLimits:
    """What the server accepts in one liveness file.

    Attributes:
        max_frames: most frames in one file.
        max_frame_bytes: largest JPEG of one frame, in bytes.
    """

    max_frames: int = 30
    max_frame_bytes: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_frames < 1 or self.max_frame_bytes < 1:
            raise ValueError("liveness file limits must be positive")


def pack(capture: LivenessCapture) -> bytes:
    """Serialize a capture as ``facegate.v1.LivenessFile`` protobuf bytes.

    The capture is not checked (tests build bad files with it); `validate` does that.
    """
    message = liveness_file_pb2.LivenessFile(
        format_version=capture.format_version,
        frames=[
            liveness_file_pb2.Frame(jpeg=frame.jpeg, timestamp_ms=frame.timestamp_ms)
            for frame in capture.frames
        ],
        capture=liveness_file_pb2.CaptureInfo(
            sdk=capture.sdk,
            device=capture.device,
            started_at_unix_ms=capture.started_at_unix_ms,
            source=capture.source,
        ),
    )
    return message.SerializeToString()


def unpack(data: bytes, limits: LivenessFileLimits = LivenessFileLimits()) -> LivenessCapture:
    """Parse and check protobuf bytes made by `pack`.

    Raises:
        LivenessFileError: not a protobuf, or the capture fails `validate`.
    """
    message = liveness_file_pb2.LivenessFile()
    try:
        message.ParseFromString(bytes(data))
    except DecodeError as error:
        raise LivenessFileError(
            "liveness file is not a facegate.v1.LivenessFile protobuf"
        ) from error
    info = message.capture
    capture = LivenessCapture(
        frames=tuple(CapturedFrame(frame.jpeg, frame.timestamp_ms) for frame in message.frames),
        sdk=info.sdk,
        device=info.device,
        started_at_unix_ms=info.started_at_unix_ms,
        source=info.source,
        format_version=message.format_version,
    )
    validate(capture, limits)
    return capture


def validate(capture: LivenessCapture, limits: LivenessFileLimits = LivenessFileLimits()) -> None:
    """Check what the server relies on: known version, frame count and size, JPEG, time order.

    Raises:
        LivenessFileError: naming the first rule broken.
    """
    if capture.format_version != FORMAT_VERSION:
        raise LivenessFileError(
            f"unsupported liveness file format_version {capture.format_version} "
            f"(this version reads {FORMAT_VERSION})"
        )
    count = len(capture.frames)
    if count == 0:
        raise LivenessFileError("liveness file has no frames")
    if count > limits.max_frames:
        raise LivenessFileError(f"liveness file has {count} frames, at most {limits.max_frames}")
    previous_ms = -1
    for index, frame in enumerate(capture.frames):
        size = len(frame.jpeg)
        if size == 0:
            raise LivenessFileError(f"frame {index} is empty")
        if size > limits.max_frame_bytes:
            raise LivenessFileError(
                f"frame {index} is {size} bytes, at most {limits.max_frame_bytes}"
            )
        if not frame.jpeg.startswith(JPEG_MAGIC):
            raise LivenessFileError(f"frame {index} is not a JPEG file")
        if frame.timestamp_ms <= previous_ms:
            raise LivenessFileError(
                f"frame timestamps must increase strictly: frame {index} is at "
                f"{frame.timestamp_ms} ms after {previous_ms} ms"
            )
        previous_ms = frame.timestamp_ms


def seal(capture: LivenessCapture, keyring: KeyRing, *, legacy: bool = False) -> bytes:
    """Pack and encrypt a capture: the ASCII bytes of the key ring's wire form.

    Args:
        capture: the capture to send.
        keyring: its newest key encrypts.
        legacy: use the fixed-IV form old servers accept (see `frontend.crypto`) instead of a
            fresh random nonce.
    """
    return keyring.encrypt(pack(capture), legacy=legacy).encode("ascii")


def open_sealed(
    data: bytes | str, keyring: KeyRing, limits: LivenessFileLimits = LivenessFileLimits()
) -> LivenessCapture:
    """Decrypt, parse and check a sealed liveness file (surrounding whitespace is ignored).

    Args:
        data: the file part's bytes, or the same text when a client sent it as a text field.
        keyring: the server's active keys.
        limits: what one file may hold.

    Raises:
        LivenessFileError: it does not authenticate under any active key, or `unpack` fails.
    """
    try:
        plain = keyring.decrypt(data if isinstance(data, str) else bytes(data))
    except DecryptionError as error:
        raise LivenessFileError(f"liveness file does not open: {error}") from error
    return unpack(plain, limits)


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
        jpeg = data if data.startswith(JPEG_MAGIC) else _encode_jpeg(picture)
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
        captured.append(CapturedFrame(_encode_jpeg(upright), timestamp_ms))
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


def _encode_jpeg(picture: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise LivenessFileError("a frame could not be encoded as JPEG")
    return encoded.tobytes()


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
