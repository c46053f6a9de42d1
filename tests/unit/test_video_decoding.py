"""Video bytes -> timed frames: limits refused before decoding, damage typed, rotation honoured."""

from __future__ import annotations

import io
import logging

import av
import cv2
import numpy as np
import pytest

from preprocessing import video as video_module
from preprocessing.image import turn
from preprocessing.video import (
    Video,
    VideoCorruptError,
    VideoError,
    VideoFormatError,
    VideoLimitError,
    VideoLimits,
    VideoTooShortError,
    affordable_window_s,
    probe_and_decode,
)
from tests.conftest import DATA

LIMITS = VideoLimits()
LIVE = sorted((DATA / "video/live").glob("*")) if (DATA / "video/live").is_dir() else []
LESTARI = DATA / "video/live/lestari15_real.mp4"  # fast-start MP4: its index comes first
DRIVING_33S = DATA / "video/live/liveportrait_driving_d6.mp4"  # index at the end
ZUBAIR = DATA / "video/live/zubair_real.webm"
PHOTO = DATA / "faces/Barack_Obama/facerec_obama.jpg"


def _photo(width: int = 160, height: int = 96) -> np.ndarray:
    image = cv2.imread(str(PHOTO))
    side = min(image.shape[:2])
    return cv2.resize(image[:side, :side], (width, height), interpolation=cv2.INTER_AREA)


def _encode(
    image: np.ndarray,
    *,
    codec: str = "libx264",
    container: str = "mp4",
    seconds: float = 2.4,
    rate: int = 10,
    ccw_rotation: int | None = None,
    options: dict[str, str] | None = None,
) -> bytes:
    """A small clip of a real photo sliding sideways, written by PyAV into memory."""
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV has no {codec} encoder")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container, options=options or {}) as output:
        stream = output.add_stream(codec, rate=rate)
        stream.height, stream.width = image.shape[:2]
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if ccw_rotation is not None:
            stream.set_display_rotation(ccw_rotation)
        for index in range(round(seconds * rate)):
            frame = av.VideoFrame.from_ndarray(np.roll(image, index, axis=1), format="bgr24")
            frame.pts = index
            output.mux(stream.encode(frame))
        output.mux(stream.encode())
    return buffer.getvalue()


def _packet_span_s(data: bytes) -> float:
    """The video stream's length from its packets' timestamps, read independently."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        spans = [
            ((p.pts * p.time_base), (p.pts + p.duration) * p.time_base)
            for p in container.demux(stream)
            if p.pts is not None
        ]
    return float(max(end for _, end in spans) - min(start for start, _ in spans))


def _spoiled(data: bytes, start: float, stop: float) -> bytes:
    spoiled = bytearray(data)
    spoiled[int(len(data) * start) : int(len(data) * stop)] = bytes(
        int(len(data) * stop) - int(len(data) * start)
    )
    return bytes(spoiled)


@pytest.mark.parametrize("path", LIVE, ids=lambda path: path.name)
def test_every_live_video_decodes_into_frames_one_interval_apart(data_dir, path):
    data = path.read_bytes()
    video = probe_and_decode(data, LIMITS)
    assert video.duration_s == pytest.approx(_packet_span_s(data), abs=0.01)
    frame_s = 1 / video.frame_rate
    times = [frame.timestamp_s for frame in video.frames]
    assert times[0] == 0.0
    assert all(abs(t - 0.2 * i) <= frame_s + 1e-3 for i, t in enumerate(times)), times
    assert min(video.duration_s, 10.0) - 0.2 - frame_s <= times[-1] < 10.0
    assert video.rotation == 0
    for frame in video.frames:
        assert frame.image.dtype == np.uint8
        assert frame.image.shape == (video.height, video.width, 3)


def test_webm_vp8_is_read_with_its_container_duration(data_dir):
    video = probe_and_decode(ZUBAIR.read_bytes(), LIMITS)
    assert (video.codec, video.container) == ("vp8", "matroska,webm")
    assert (video.width, video.height, video.frame_rate) == (960, 540, 15.0)
    assert video.duration_s == pytest.approx(13.279, abs=1e-3)
    assert len(video.frames) == 50


def test_the_window_stops_decoding_of_a_long_video(data_dir):
    video = probe_and_decode(DRIVING_33S.read_bytes(), LIMITS, window_s=4.0, interval_s=0.5)
    assert video.duration_s == pytest.approx(33.6, abs=1e-3)
    assert [frame.timestamp_s for frame in video.frames] == pytest.approx(
        [0.5 * i for i in range(8)], abs=1 / 30
    )


def test_frames_are_shrunk_to_the_analysis_side(data_dir):
    video = probe_and_decode(LESTARI.read_bytes(), LIMITS, max_analysis_side=540)
    assert (video.width, video.height) == (1080, 720)
    assert {frame.image.shape for frame in video.frames} == {(360, 540, 3)}


def test_a_0_2_second_clip_is_too_short(data_dir):
    with pytest.raises(VideoTooShortError, match="0.209 s"):
        probe_and_decode((DATA / "video/edge/faceapi_0.2s_tvclip.mp4").read_bytes(), LIMITS)


def test_a_webm_without_duration_in_its_header_is_measured_from_its_packets(data_dir):
    live = {"live": "1"}  # as a browser's MediaRecorder writes it: no duration, no cues
    data = _encode(_photo(), codec="libvpx-vp9", container="webm", seconds=3.0, options=live)
    with av.open(io.BytesIO(data)) as container:
        assert container.duration is None
    video = probe_and_decode(data, LIMITS)
    assert video.duration_s == pytest.approx(3.0, abs=0.01)
    assert len(video.frames) == 15


@pytest.mark.parametrize(
    "codec,container,name",
    [
        ("libx264", "mp4", "h264"),
        ("libx265", "mp4", "hevc"),
        ("libvpx-vp9", "webm", "vp9"),
        ("libsvtav1", "mp4", "av1"),
        ("libsvtav1", "webm", "av1"),
    ],
)
def test_every_accepted_codec_really_decodes(data_dir, codec, container, name):
    image = _photo()
    video = probe_and_decode(_encode(image, codec=codec, container=container), LIMITS)
    assert (video.codec, len(video.frames)) == (name, 12)
    assert video.duration_s == pytest.approx(2.4)
    assert np.abs(video.frames[0].image.astype(int) - image).mean() < 10


@pytest.mark.parametrize("codec,container", [("mpeg4", "mp4"), ("mjpeg", "mov")])
def test_an_accepted_container_with_a_refused_codec_is_a_format_error(data_dir, codec, container):
    with pytest.raises(VideoFormatError, match=f"codec '{codec}'"):
        probe_and_decode(_encode(_photo(), codec=codec, container=container), LIMITS)


def test_a_file_without_a_video_stream_is_a_format_error():
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as output:
        stream = output.add_stream("aac", rate=16000)
        samples = np.zeros((1, 1024 * 40), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        output.mux(stream.encode(frame))
        output.mux(stream.encode())
    with pytest.raises(VideoFormatError, match="no video stream"):
        probe_and_decode(buffer.getvalue(), LIMITS)


@pytest.mark.parametrize(
    "display_ccw,turned_cw", [(-90, 90), (180, 180), (90, 270)], ids=["cw90", "180", "ccw90"]
)
@pytest.mark.parametrize("codec,container", [("libx264", "mp4"), ("libvpx-vp9", "webm")])
def test_rotation_metadata_turns_frames_upright(data_dir, codec, container, display_ccw, turned_cw):
    image = _photo()
    data = _encode(image, codec=codec, container=container, ccw_rotation=display_ccw)
    video = probe_and_decode(data, LIMITS)
    upright = turn(image, turned_cw)
    wrong = turn(upright, 180)
    first = video.frames[0].image.astype(int)
    assert (video.rotation, video.width, video.height) == (turned_cw, 160, 96)
    assert first.shape == upright.shape
    assert np.abs(first - upright).mean() < 10 < np.abs(first - wrong).mean()


def test_truncated_fast_start_mp4_is_corrupt(data_dir):
    data = LESTARI.read_bytes()
    with pytest.raises(VideoCorruptError, match="the data ends at"):
        probe_and_decode(data[: int(len(data) * 0.6)], LIMITS)


def test_truncated_mp4_without_its_index_is_corrupt(data_dir):
    data = DRIVING_33S.read_bytes()
    with pytest.raises(VideoCorruptError, match="not a readable video container"):
        probe_and_decode(data[: int(len(data) * 0.6)], LIMITS)


def test_an_mp4_damaged_before_two_seconds_is_corrupt(data_dir):
    with pytest.raises(VideoCorruptError, match="undecodable after"):
        probe_and_decode(_spoiled(LESTARI.read_bytes(), 0.33, 0.43), LIMITS)


def test_an_mp4_damaged_after_two_seconds_ends_at_the_damage(data_dir, caplog):
    data = _spoiled(DRIVING_33S.read_bytes(), 0.10, 0.20)
    with caplog.at_level(logging.INFO, logger="preprocessing.video"):
        video = probe_and_decode(data, LIMITS)
    assert 2.0 <= video.frames[-1].timestamp_s < 9.0
    assert video.duration_s == pytest.approx(33.6, abs=1e-3)
    assert [r.levelno for r in caplog.records] == [logging.INFO]


def test_random_bytes_are_corrupt():
    data = np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    with pytest.raises(VideoCorruptError):
        probe_and_decode(data, LIMITS)


def test_a_jpeg_is_a_format_error(data_dir):
    with pytest.raises(VideoFormatError, match="jpeg_pipe"):
        probe_and_decode(PHOTO.read_bytes(), LIMITS)


@pytest.mark.parametrize(
    "limits,match",
    [
        (VideoLimits(max_bytes=1_000_000), "1967790 bytes"),
        (VideoLimits(max_duration_s=30.0), "33.600 s"),
        (VideoLimits(max_side=479), "480x480 px"),
        (VideoLimits(max_frame_rate=25.0), "30.00 frames/s"),
    ],
    ids=["bytes", "duration", "side", "frame_rate"],
)
def test_limits_are_refused_from_the_header_before_decoding(data_dir, monkeypatch, limits, match):
    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded a video that the header refuses")

    monkeypatch.setattr(video_module, "_decode", no_decoding)
    with pytest.raises(VideoLimitError, match=match):
        probe_and_decode(DRIVING_33S.read_bytes(), limits)


def test_fewer_bytes_than_the_minimum_is_a_limit_error():
    with pytest.raises(VideoLimitError, match="0 bytes"):
        probe_and_decode(b"", LIMITS)


def test_video_limits_refuse_inconsistent_bounds():
    with pytest.raises(ValueError, match="duration"):
        VideoLimits(min_duration_s=3.0, max_duration_s=2.0)


def test_every_video_error_is_a_value_error_mapped_to_one_code():
    leaves = [VideoTooShortError, VideoFormatError, VideoLimitError, VideoCorruptError]
    assert all(issubclass(leaf, VideoError) and issubclass(leaf, ValueError) for leaf in leaves)
    assert Video.__dataclass_params__.frozen


def test_a_costly_stream_is_analysed_over_a_shorter_window():
    limits = VideoLimits(max_decode_pixels=1_500_000_000)
    assert affordable_window_s(1280, 720, 30.0, 10.0, limits) == 10.0
    four_k = affordable_window_s(3840, 2160, 60.0, 10.0, limits)
    assert four_k == pytest.approx(1_500_000_000 / (3840 * 2160 * 60))
    assert 3.0 <= four_k < 4.0


def test_a_stream_too_costly_for_even_the_shortest_window_is_refused():
    with pytest.raises(VideoLimitError, match="Mpx/s"):
        affordable_window_s(3840, 3840, 120.0, 10.0, VideoLimits())
