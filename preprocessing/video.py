"""Video bytes -> timed, upright BGR frames, with the contract's limits checked before decoding.

Order matters, as for photos: the byte count first, then the container's header (container
and codec names, picture size, frame rate and duration, read without decoding a frame), then
a straight decode of the analysis window only. A header without a duration (live-muxed WebM,
as browsers record it) is measured by reading the video packets' timestamps, which costs a
demux but no decoding.

Frames are picked by presentation time, never by count: the first frame, then the first frame
at or after each multiple of ``interval_s`` after it, so variable frame rates and gaps sample
real time. Only the picked frames are converted to BGR, shrunk and turned upright.

Damage is told from a short video as follows (both are contract code ``2008``):

- the decoder raises part-way: with at least ``min_duration_s`` of good frames before it the
  video ends there (logged at INFO), otherwise ``VideoCorruptError``;
- the data ends quietly before the header says it should (a cut upload whose index survived,
  e.g. a fast-start MP4 missing its tail): ``VideoCorruptError`` once the decoded end falls
  short of ``min(duration, window)`` by more than ``_END_TOLERANCE_S`` or three frames;
- a decoder that conceals damage (H.264, VP8 do) gives pictures, not errors: those frames are
  kept, since no flag tells them apart reliably.

Rotation: PyAV 18 exposes the container's display matrix (MP4/MOV ``tkhd`` matrix, Matroska
projection) as ``VideoFrame.rotation``, the counter-clockwise angle in -180..180 that FFmpeg's
``av_display_rotation_get`` reads from each decoded frame's DISPLAYMATRIX side data; streams
offer no getter. A phone's "rotate=90" (turn clockwise to view) reads as -90. The old
``rotate`` metadata tag is neither written by FFmpeg 7+ muxers nor exported by its demuxers,
so it is not consulted. Mirroring in the matrix is ignored.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from fractions import Fraction

import av
import av.error
import cv2
import numpy as np

from preprocessing.image import turn

LOGGER = logging.getLogger(__name__)

KIB = 1024
MIB = 1024 * KIB

MIN_COSTLY_WINDOW_S = 3.0
"""The shortest window a costly video is analysed over: 2 s of face and room to find it."""
# A quiet end this much (or three frames) before the expected end is a cut upload.
_END_TOLERANCE_S = 0.5
# Timestamps are rounded to the container's clock (WebM: 1 ms), so compare with some slack.
_EPSILON_S = 1e-3
# What PyAV raises on bad data. Its errors derive from FFmpegError and from a builtin
# (OSError, ValueError, EOFError, MemoryError for ENOMEM); PyAV's own checks raise the builtins.
_AV_ERRORS = (av.error.FFmpegError, EOFError, OSError, ValueError)


@dataclass(frozen=True)
class VideoLimits:
    """What a video may be (README "Video standards"; each one is a FACEGATE_* setting).

    Attributes:
        min_bytes: smallest file accepted.
        max_bytes: largest file accepted.
        min_duration_s: shortest video accepted (contract: "shorter than 2 s" is `2008`).
        max_duration_s: longest video accepted.
        max_side: largest width or height in pixels, as stored.
        max_frame_rate: highest average frame rate accepted.
        max_decode_pixels: most pixels decoded for one video (width x height x frames): a
            costly stream (4K at 60 fps) is analysed over a shorter window, down to
            `MIN_COSTLY_WINDOW_S`; one that cannot afford even that is refused.
        formats: accepted containers as FFmpeg names its demuxers; ``format.name`` lists
            several ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm") and any one may match.
        codecs: accepted video codecs by FFmpeg's codec name (not the decoder's: AV1 is
            decoded by ``libdav1d``).
    """

    min_bytes: int = 1 * KIB
    max_bytes: int = 50 * MIB
    min_duration_s: float = 2.0
    max_duration_s: float = 60.0
    max_side: int = 3840
    max_frame_rate: float = 120.0
    max_decode_pixels: int = 1_500_000_000
    formats: tuple[str, ...] = ("mov", "mp4", "matroska", "webm")
    codecs: tuple[str, ...] = ("h264", "hevc", "vp8", "vp9", "av1")

    def __post_init__(self) -> None:
        if not 0 < self.min_bytes <= self.max_bytes:
            raise ValueError("video byte limits must satisfy 0 < min <= max")
        if not 0 < self.min_duration_s <= self.max_duration_s:
            raise ValueError("video duration limits must satisfy 0 < min <= max")
        if self.max_side <= 0 or self.max_frame_rate <= 0 or self.max_decode_pixels <= 0:
            raise ValueError("max_side, max_frame_rate and max_decode_pixels must be positive")


class VideoError(ValueError):
    """A video the server will not use (`2008`); the subclass says why."""


class VideoTooShortError(VideoError):
    """Shorter than ``min_duration_s`` in real time."""


class VideoFormatError(VideoError):
    """Not an accepted container or codec, or no video stream at all."""


class VideoLimitError(VideoError):
    """Byte count, duration, picture size or frame rate over the limits."""


class VideoCorruptError(VideoError):
    """Unreadable, undecodable or truncated data."""


@dataclass(frozen=True)
class VideoFrame:
    """One sampled frame.

    Attributes:
        timestamp_s: presentation time after the first frame's, in seconds.
        image: H x W x 3 uint8 BGR, upright, longer side at most ``max_analysis_side``.
    """

    timestamp_s: float
    image: np.ndarray


@dataclass(frozen=True)
class Video:
    """A checked video and its sampled frames.

    Attributes:
        duration_s: the video stream's duration (header, or measured from its timestamps).
        width: picture width as stored, before turning upright.
        height: picture height as stored, before turning upright.
        frame_rate: average frames per second (header, or measured from decoded frames).
        codec: FFmpeg's codec name, e.g. "h264".
        container: FFmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2".
        rotation: clockwise degrees (0, 90, 180, 270) the first frame was turned upright.
        frames: the sampled frames, increasing timestamps, the first at 0.0.
    """

    duration_s: float
    width: int
    height: int
    frame_rate: float
    codec: str
    container: str
    rotation: int
    frames: tuple[VideoFrame, ...]


def probe_and_decode(
    data: bytes,
    limits: VideoLimits,
    *,
    interval_s: float = 0.2,
    window_s: float = 10.0,
    max_analysis_side: int = 1280,
) -> Video:
    """Check a video against the limits, then sample its first ``window_s`` seconds.

    Args:
        data: the (decrypted) file's bytes.
        limits: what is accepted.
        interval_s: seconds between sampled frames.
        window_s: seconds of video analysed; decoding stops there.
        max_analysis_side: sampled frames whose longer side is larger are shrunk to it.

    Returns:
        The video's properties and its sampled, upright BGR frames.

    Raises:
        VideoLimitError, VideoFormatError, VideoTooShortError, VideoCorruptError.
        ValueError: for non-positive ``interval_s``, ``window_s`` or ``max_analysis_side``.
    """
    if interval_s <= 0 or window_s <= 0 or max_analysis_side <= 0:
        raise ValueError("interval_s, window_s and max_analysis_side must be positive")
    if not limits.min_bytes <= len(data) <= limits.max_bytes:
        raise VideoLimitError(f"{len(data)} bytes, accepted {limits.min_bytes}..{limits.max_bytes}")
    with _open(data) as container:
        stream = _video_stream(container, limits)
        width, height = stream.codec_context.width, stream.codec_context.height
        _check_size(width, height, limits)
        rate = stream.average_rate or stream.guessed_rate
        header_rate = float(rate) if rate else None
        _check_frame_rate(header_rate, limits)
        duration_s = _header_duration_s(container, stream)
        if duration_s is None:
            duration_s = _measure_duration_s(data, stream.index)
        _check_duration(duration_s, limits)
        window_s = affordable_window_s(width, height, header_rate, window_s, limits)
        frames, rotation, decoded_rate = _decode(
            container,
            stream,
            limits,
            duration_s=duration_s,
            frame_rate=header_rate,
            interval_s=interval_s,
            window_s=window_s,
            max_analysis_side=max_analysis_side,
        )
        codec, container_name = stream.codec_context.codec.canonical_name, container.format.name
    frame_rate = header_rate if header_rate is not None else decoded_rate
    _check_frame_rate(frame_rate, limits)
    return Video(
        duration_s=duration_s,
        width=width,
        height=height,
        frame_rate=frame_rate,
        codec=codec,
        container=container_name,
        rotation=rotation,
        frames=tuple(frames),
    )


def _open(data: bytes) -> av.container.InputContainer:
    try:
        # "replace": a badly encoded title tag must not refuse a good video.
        return av.open(io.BytesIO(data), mode="r", metadata_errors="replace")
    except _AV_ERRORS as error:
        raise VideoCorruptError(f"not a readable video container: {error}") from error


def _video_stream(container: av.container.InputContainer, limits: VideoLimits) -> av.VideoStream:
    names = container.format.name.split(",")
    if not set(names) & set(limits.formats):
        raise VideoFormatError(
            f"container {container.format.name!r}, accepted {', '.join(limits.formats)}"
        )
    streams = [
        s
        for s in container.streams.video
        if not s.disposition & av.stream.Disposition.attached_pic  # cover art, not video
    ]
    if not streams:
        raise VideoFormatError("no video stream")
    stream = streams[0]
    codec = stream.codec_context.codec.canonical_name
    if codec not in limits.codecs:
        raise VideoFormatError(f"codec {codec!r}, accepted {', '.join(limits.codecs)}")
    return stream


def _header_duration_s(
    container: av.container.InputContainer, stream: av.VideoStream
) -> float | None:
    """The video stream's own duration, else the container's end less the video's start."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if not container.duration or container.duration <= 0:
        return None
    duration = Fraction(container.duration, av.time_base)
    if container.start_time is not None and stream.start_time is not None and stream.time_base:
        # A video track starting after the audio one ends with the container, so the
        # container's duration overstates it by the difference of the starts.
        offset = stream.start_time * stream.time_base - Fraction(container.start_time, av.time_base)
        duration -= max(offset, Fraction(0))
    return float(duration) if duration > 0 else None


def _measure_duration_s(data: bytes, stream_index: int) -> float:
    """First to last video packet, from timestamps alone (no decoding)."""
    start = end = None
    with _open(data) as container:
        stream = container.streams[stream_index]
        try:
            for packet in container.demux(stream):
                if packet.pts is None or packet.time_base is None:
                    continue
                begin = packet.pts * packet.time_base
                finish = (packet.pts + (packet.duration or 0)) * packet.time_base
                start = begin if start is None else min(start, begin)
                end = finish if end is None else max(end, finish)
        except _AV_ERRORS as error:
            # The decode pass meets the same damage and decides about it.
            LOGGER.info("video packets unreadable after %s s: %s", end, error)
    if start is None or end is None or end <= start:
        raise VideoCorruptError("no timed video packets")
    return float(end - start)


def affordable_window_s(
    width: int, height: int, frame_rate: float | None, window_s: float, limits: VideoLimits
) -> float:
    """The analysis window the decode budget allows: `window_s`, shortened for a costly stream.

    Raises:
        VideoLimitError: even `MIN_COSTLY_WINDOW_S` would decode more than the budget.
    """
    pixels_per_s = width * height * (frame_rate or limits.max_frame_rate)
    affordable_s = limits.max_decode_pixels / pixels_per_s
    if affordable_s >= window_s:
        return window_s
    if affordable_s < MIN_COSTLY_WINDOW_S:
        raise VideoLimitError(
            f"{width}x{height} px at {frame_rate or 0:.0f} fps decodes "
            f"{pixels_per_s / 1e6:.0f} Mpx/s: over {limits.max_decode_pixels} px in "
            f"{MIN_COSTLY_WINDOW_S:g} s"
        )
    LOGGER.info("%dx%d px at %.0f fps: analysing %.1f s", width, height, frame_rate or 0,
                affordable_s)
    return affordable_s


def _check_size(width: int, height: int, limits: VideoLimits) -> None:
    if width <= 0 or height <= 0:
        raise VideoCorruptError("no picture size in the header")
    if width > limits.max_side or height > limits.max_side:
        raise VideoLimitError(f"{width}x{height} px, accepted sides up to {limits.max_side}")


def _check_frame_rate(frame_rate: float | None, limits: VideoLimits) -> None:
    if frame_rate is not None and frame_rate > limits.max_frame_rate:
        raise VideoLimitError(
            f"{frame_rate:.2f} frames/s, accepted at most {limits.max_frame_rate}"
        )


def _check_duration(duration_s: float, limits: VideoLimits) -> None:
    if duration_s < limits.min_duration_s:
        raise VideoTooShortError(f"{duration_s:.3f} s, accepted at least {limits.min_duration_s} s")
    if duration_s > limits.max_duration_s:
        raise VideoLimitError(f"{duration_s:.3f} s, accepted at most {limits.max_duration_s} s")


def _decode(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    limits: VideoLimits,
    *,
    duration_s: float,
    frame_rate: float | None,
    interval_s: float,
    window_s: float,
    max_analysis_side: int,
) -> tuple[list[VideoFrame], int, float]:
    """Decode straight through the window; returns the samples, rotation and measured rate."""
    # x264 writes one slice per frame, so the default slice threading uses one core.
    stream.thread_type = "AUTO"
    frame_step_s = 1.0 / frame_rate if frame_rate else 0.0
    samples: list[VideoFrame] = []
    rotation = 0
    first_s: float | None = None
    previous_s = 0.0  # relative time of the latest frame
    end_s = 0.0  # relative end of the latest frame: its time plus its duration
    next_sample_s = 0.0
    count = 0
    reached_window = False
    try:
        for frame in container.decode(stream):
            if frame.width > limits.max_side or frame.height > limits.max_side:
                # The picture size may change mid-stream (WebRTC recordings do).
                raise VideoLimitError(
                    f"a {frame.width}x{frame.height} px frame, "
                    f"accepted sides up to {limits.max_side}"
                )
            time_s = frame.time
            if time_s is None:  # no timestamp at all: assume the nominal rate
                now_s = previous_s + frame_step_s if count else 0.0
            else:
                if first_s is None:
                    first_s = time_s
                now_s = time_s - first_s
            if now_s >= window_s - _EPSILON_S:
                reached_window = True
                break
            count += 1
            step_s = float(frame.duration * frame.time_base) if frame.duration else frame_step_s
            previous_s = now_s
            end_s = max(end_s, now_s + step_s)
            if now_s >= next_sample_s - _EPSILON_S:
                clockwise = _clockwise(frame.rotation)
                if not samples:
                    rotation = clockwise
                image = _analysis_image(frame, clockwise, max_analysis_side)
                samples.append(VideoFrame(now_s, image))
                next_sample_s = (math.floor((now_s + _EPSILON_S) / interval_s) + 1) * interval_s
    except VideoError:
        raise
    except _AV_ERRORS as error:
        if not samples or end_s < limits.min_duration_s - _EPSILON_S:
            raise VideoCorruptError(f"undecodable after {end_s:.3f} s: {error}") from error
        LOGGER.info("video undecodable after %.3f s, analysing up to there: %s", end_s, error)
        reached_window = True  # the stream is taken to end at the error
    if not samples:
        raise VideoCorruptError("no decodable frame")
    if not reached_window:
        expected_s = min(duration_s, window_s)
        if end_s < expected_s - max(_END_TOLERANCE_S, 3 * frame_step_s):
            raise VideoCorruptError(f"the data ends at {end_s:.3f} s of {duration_s:.3f} s")
        if end_s < limits.min_duration_s - max(_EPSILON_S, frame_step_s / 2):
            raise VideoTooShortError(
                f"{end_s:.3f} s of frames, accepted at least {limits.min_duration_s} s"
            )
    decoded_rate = (count - 1) / previous_s if count > 1 and previous_s > 0 else 0.0
    return samples, rotation, decoded_rate


def _clockwise(counter_clockwise: int) -> int:
    """FFmpeg's counter-clockwise display angle as the clockwise turn that shows it upright."""
    return (round(-counter_clockwise / 90) * 90) % 360


def _analysis_image(frame: av.VideoFrame, clockwise: int, max_side: int) -> np.ndarray:
    image = frame.to_ndarray(format="bgr24")
    height, width = image.shape[:2]
    if max(height, width) > max_side:
        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return turn(image, clockwise)
