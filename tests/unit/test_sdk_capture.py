"""The SDK's captures for a liveness_file: from still images, and sampled from a video."""

from __future__ import annotations

import io
import itertools

import av
import cv2
import numpy as np
import pytest

from frontend.contract.liveness_file import FORMAT_VERSION, LivenessFileError, pack, unpack
from frontend.sdk.capture import capture_from_images, capture_from_video
from tests.conftest import DATA

LIVE_VIDEOS = DATA / "video" / "live"


def _jpeg(seed: int, size: tuple[int, int] = (48, 64)) -> bytes:
    picture = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", picture)[1].tobytes()


def test_capture_from_images_keeps_jpeg_bytes_and_encodes_other_formats(tmp_path):
    jpeg_path = tmp_path / "a.jpg"
    jpeg_path.write_bytes(_jpeg(7))
    picture = np.full((30, 40, 3), 128, np.uint8)
    png = cv2.imencode(".png", picture)[1].tobytes()
    capture = capture_from_images([jpeg_path, png], interval_ms=250)
    assert [frame.timestamp_ms for frame in capture.frames] == [0, 250]
    assert capture.frames[0].jpeg == _jpeg(7)
    decoded = cv2.imdecode(np.frombuffer(capture.frames[1].jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert capture.frames[1].jpeg.startswith(b"\xff\xd8\xff") and decoded.shape == (30, 40, 3)
    assert (capture.source, capture.format_version) == ("images", FORMAT_VERSION)
    assert unpack(pack(capture)) == capture


def test_capture_from_images_raises_for_an_unreadable_image():
    with pytest.raises(LivenessFileError) as caught:
        capture_from_images([_jpeg(1), b"not an image"])
    assert str(caught.value) == "image 1 is not a readable image"


def test_capture_from_images_raises_for_no_images():
    with pytest.raises(LivenessFileError, match="no images given"):
        capture_from_images([])


@pytest.mark.parametrize("name", ["lestari15_real.mp4", "zubair_real.webm"])
def test_capture_from_video_samples_frames_evenly_in_time_as_jpeg(data_dir, name):
    path = LIVE_VIDEOS / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        last_ms = max(p.pts for p in container.demux(stream) if p.pts is not None) * float(
            stream.time_base) * 1000
        size = (stream.codec_context.height, stream.codec_context.width)
    capture = capture_from_video(path, frames=8)
    stamps = [frame.timestamp_ms for frame in capture.frames]
    assert len(stamps) == 8 and stamps[0] == 0
    assert all(later > earlier for earlier, later in itertools.pairwise(stamps))
    steps = np.diff(stamps)
    assert steps.max() - steps.min() < 0.1 * steps.mean()  # evenly spaced, up to one frame
    assert abs(stamps[-1] - last_ms) < 1  # the span reaches the last frame
    for frame in capture.frames:
        picture = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape[:2] == size
    assert capture.source == "video"
    assert unpack(pack(capture)) == capture


def test_capture_from_video_reads_bytes_and_turns_frames_upright_by_the_display_matrix():
    # 20 frames of 64x32 whose left half is white, shown rotated 90 degrees counter-clockwise.
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)
        picture = np.zeros((32, 64, 3), np.uint8)
        picture[:, :32] = 255
        for index in range(20):
            frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    capture = capture_from_video(buffer.getvalue(), frames=5)
    assert [frame.timestamp_ms for frame in capture.frames] == [0, 500, 900, 1400, 1900]
    upright = cv2.imdecode(np.frombuffer(capture.frames[0].jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert upright.shape == (64, 32)
    assert upright[:28].mean() < 10 and upright[36:].mean() > 245  # left half went to the bottom


def test_capture_from_video_gives_every_frame_of_a_short_video(data_dir):
    path = DATA / "video" / "edge" / "faceapi_0.2s_tvclip.mp4"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    assert [frame.timestamp_ms for frame in capture_from_video(path, frames=8).frames] == [
        0, 42, 83, 125, 167
    ]


def test_capture_from_video_raises_for_bytes_that_are_not_a_video():
    with pytest.raises(LivenessFileError, match="^not a readable video"):
        capture_from_video(b"this is not a video at all" * 10)
