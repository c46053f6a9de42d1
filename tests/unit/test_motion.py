"""The planarity cue and the attacks synthesised to test it.

Real videos and photos come from ../shared/data; faces from the built detector run in-process
with ONNX Runtime (skipped when either is missing). The synthesised videos are made here, in
memory, from real material; nothing is written to the repository.
"""

from __future__ import annotations

import io
import math
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from benchmarks.motion_eval import UNGATED, measure, sample_frames
from benchmarks.synth_attacks import plane_homography, screen_replay_video, still_photo_video
from preprocessing.motion import (
    RAMP_HIGH_PCT,
    RAMP_LOW_PCT,
    planarity,
    ramp_score,
)
from tests.conftest import DATA

LIVE_VIDEO = "video/live/liveportrait_driving_d0.mp4"  # the lowest-scoring live video, 25 fps
LFW_PHOTO = "faces/Joseph_Biden/Joseph_Biden_0001.jpg"
LFW_FACE_CORNERS = np.array([[70, 60], [180, 60], [180, 190], [70, 190]], np.float32)
needs_live_video = pytest.mark.skipif(
    not (DATA / LIVE_VIDEO).is_file(), reason=f"{LIVE_VIDEO} not in the shared data"
)


def decoded(video: bytes) -> tuple[int, float, Fraction]:
    """Frames, duration in seconds (last frame's end) and frame rate, as PyAV decodes them."""
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        rate = stream.average_rate
    return len(frames), float(frames[-1].time + 1 / rate), rate


@needs_live_video
def test_planarity_scores_live_video_higher_than_still_photo_video_of_its_own_frame(
    data_dir, detector
):
    live = (data_dir / LIVE_VIDEO).read_bytes()
    first_frame = sample_frames(live, seconds=0.0)[0][0]

    live_evidence, _ = measure(detector, live)
    photo_evidence, _ = measure(detector, still_photo_video(first_frame, seed=0))

    assert live_evidence.pairs >= 12 and photo_evidence.pairs >= 12
    assert live_evidence.residual_p90 > 2 * photo_evidence.residual_p90
    assert photo_evidence.score < 0.5 < live_evidence.score


def test_a_face_that_barely_moves_is_no_evidence_rather_than_flat(data_dir, detector):
    live = (data_dir / LIVE_VIDEO).read_bytes()
    frames, times = sample_frames(live, seconds=4.0)
    box = detector.detect(frames[0])[0].box
    same = [frames[0]] * len(times)  # a live person holding perfectly still
    still = planarity(same, times, [box] * len(times))
    assert np.isnan(still.score) and still.pairs == 0 and still.still_pairs > 0
    ungated = planarity(same, times, [box] * len(times), **UNGATED)
    assert ungated.score == 0.0  # measured anyway, the same picture is perfectly "flat"


def test_still_photo_video_is_deterministic_for_a_seed_and_decodes_to_its_duration(data_dir):
    photo = cv2.imread(str(data_dir / LFW_PHOTO))

    first = still_photo_video(photo, seconds=1.2, fps=25, seed=3, out_size=(320, 240))
    again = still_photo_video(photo, seconds=1.2, fps=25, seed=3, out_size=(320, 240))
    other = still_photo_video(photo, seconds=1.2, fps=25, seed=4, out_size=(320, 240))

    assert first == again
    assert first != other
    frames, duration_s, rate = decoded(first)
    assert (frames, rate) == (30, 25)
    assert duration_s == pytest.approx(1.2)


@needs_live_video
def test_screen_replay_video_is_deterministic_for_a_seed_and_decodes_to_max_seconds(data_dir):
    live = (data_dir / LIVE_VIDEO).read_bytes()

    first = screen_replay_video(live, seed=1, max_seconds=1.0)
    again = screen_replay_video(live, seed=1, max_seconds=1.0)
    other = screen_replay_video(live, seed=2, max_seconds=1.0)

    assert first == again
    assert first != other
    frames, duration_s, rate = decoded(first)
    assert (frames, rate) == (25, 25)
    assert duration_s == pytest.approx(1.0)


def test_planarity_of_real_photo_under_pure_homographies_is_near_zero(data_dir):
    photo = cv2.imread(str(data_dir / LFW_PHOTO))
    height, width = photo.shape[:2]
    frames, times, boxes = [], [], []
    for index in range(18):  # 3.4 s at 0.2 s: tilt, turn, roll, shift and depth all change
        t = 0.2 * index
        homography = plane_homography(
            (width, height), (480, 480), width_frac=0.8,
            yaw_deg=10 * math.sin(1.3 * t), pitch_deg=8 * math.sin(0.9 * t + 1),
            roll_deg=4 * math.sin(2 * t), shift_frac=(0.05 * math.sin(t), 0.04 * math.cos(t)),
            depth=1 + 0.1 * math.sin(0.7 * t))
        frames.append(cv2.warpPerspective(photo, homography, (480, 480)))
        corners = cv2.perspectiveTransform(LFW_FACE_CORNERS[None], homography)[0]
        (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
        boxes.append((float(x0), float(y0), float(x1 - x0), float(y1 - y0)))
        times.append(t)

    evidence = planarity(frames, times, boxes)

    assert evidence.pairs == 17
    assert evidence.residual_p90 < 0.2  # % of face width; live videos measure >= 0.9
    assert evidence.score == 0.0


def test_planarity_without_boxes_measures_no_pairs_and_gives_nan():
    frames = [np.random.default_rng(i).integers(0, 255, (240, 320, 3), np.uint8) for i in range(6)]

    evidence = planarity(frames, [0.2 * i for i in range(6)], [None] * 6)

    assert evidence.pairs == 0
    assert math.isnan(evidence.residual_p90) and math.isnan(evidence.score)


def test_planarity_skips_frames_further_apart_than_0_3_s(data_dir):
    photo = cv2.imread(str(data_dir / LFW_PHOTO))
    box = (70.0, 60.0, 110.0, 130.0)

    evidence = planarity([photo] * 4, [0.0, 0.5, 1.0, 1.5], [box] * 4)

    assert evidence.pairs == 0
    assert math.isnan(evidence.residual_p90)


def test_planarity_raises_when_frames_times_and_boxes_differ_in_length():
    with pytest.raises(ValueError, match="differ in length"):
        planarity([np.zeros((8, 8, 3), np.uint8)] * 2, [0.0, 0.2], [None])


@pytest.mark.parametrize(
    ("residual", "score"),
    [(0.0, 0.0), (RAMP_LOW_PCT, 0.0), ((RAMP_LOW_PCT + RAMP_HIGH_PCT) / 2, 0.5),
     (RAMP_HIGH_PCT, 1.0), (5.0, 1.0)],
)
def test_ramp_score_is_linear_between_the_ramp_ends_and_clipped_outside(residual, score):
    assert ramp_score(residual) == pytest.approx(score)


def test_ramp_score_of_nan_is_nan():
    assert math.isnan(ramp_score(math.nan))

