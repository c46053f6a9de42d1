"""The ``liveness_file`` format (CONTRACT.md section 7): frames a client captured, sealed.

A `LivenessCapture` (JPEG frames with timestamps, capture metadata, a format version) is
serialized as the ``facegate.v1.LivenessFile`` protobuf (`liveness_file.proto` beside this
module) and sealed with the key ring of ``encrypted_image`` (`frontend.crypto.KeyRing`), so the
file is the same ASCII wire text as any encrypted field: ``fg1.<base64>``, or the legacy form.

The server calls `open_sealed` on the bytes of the multipart part and answers ``2007`` for any
`LivenessFileError`; the SDK (`frontend.sdk.capture`) builds captures and `seal`s them.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from frontend.contract import liveness_file_pb2
from frontend.crypto import DecryptionError, KeyRing

FORMAT_VERSION = 1
JPEG_MAGIC = b"\xff\xd8\xff"

SOURCE_CAMERA = "camera"
SOURCE_IMAGES = "images"
SOURCE_VIDEO = "video"


class LivenessFileError(ValueError):
    """The liveness file cannot be used: it does not open, parse, or pass the limits (code 2007).

    Also raised by the SDK's captures (`frontend.sdk.capture`) for inputs they cannot read.
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
