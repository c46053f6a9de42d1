"""Following the subject across frames, and the rules that turn evidence into a decision."""

from __future__ import annotations

import math

import numpy as np

from frontend.service.video import SAMPLE_INTERVAL_S, fuse, spread
from preprocessing.detection import Face
from preprocessing.motion import MotionEvidence
from preprocessing.tracking import subject_of, track_faces, visible_seconds
from preprocessing.video import Video, VideoFrame


def _face(x: float, y: float, w: float = 100.0, score: float = 0.9) -> Face:
    return Face((x, y, w, w * 1.3), np.zeros((5, 2)), score)


def _video(times: list[float]) -> Video:
    frames = tuple(VideoFrame(t, np.zeros((4, 4, 3), np.uint8)) for t in times)
    return Video(
        duration_s=times[-1] + 0.2,
        width=4,
        height=4,
        frame_rate=25.0,
        codec="h264",
        container="mov,mp4",
        rotation=0,
        frames=frames,
    )


def test_a_face_moving_a_little_stays_one_track():
    detections = [[_face(100 + 5 * i, 100)] for i in range(10)]
    (track,) = track_faces(detections)
    assert sorted(track.faces) == list(range(10))


def test_a_passer_by_is_a_shorter_track_and_not_the_subject():
    detections = [
        [_face(100, 100)] + ([_face(500, 100, 140)] if 3 <= i < 6 else []) for i in range(10)
    ]
    tracks = track_faces(detections)
    assert len(tracks) == 2
    assert len(subject_of(tracks).faces) == 10


def test_a_face_hidden_for_a_moment_keeps_its_track():
    detections = [[_face(100, 100)] if i != 4 else [] for i in range(10)]
    (track,) = track_faces(detections)
    assert 4 not in track.faces and len(track.faces) == 9


def test_ties_on_presence_go_to_the_larger_face():
    detections = [[_face(100, 100, 80), _face(500, 100, 160)] for _ in range(5)]
    assert subject_of(track_faces(detections)).median_width == 160


def test_visible_time_counts_real_time_not_frames():
    video = _video([0.0, 0.2, 0.4, 0.6, 1.6, 1.8])
    (track,) = track_faces([[_face(0, 0)]] * 6)
    # The gap from 0.6 s to 1.6 s counts only one sampling interval.
    assert math.isclose(visible_seconds(video, track, SAMPLE_INTERVAL_S), 6 * 0.2)


def test_either_cue_can_veto_and_a_missing_motion_cue_leaves_the_picture_cue():
    moving = MotionEvidence(residual_p90=1.0, pairs=10, score=1.0)
    flat = MotionEvidence(residual_p90=0.1, pairs=10, score=0.0)
    unmeasured = MotionEvidence(residual_p90=float("nan"), pairs=0, score=float("nan"))
    assert fuse(0.9, moving) == 0.9
    assert fuse(0.9, flat) == 0.0
    assert fuse(0.2, moving) == 0.2
    assert fuse(0.7, unmeasured) == 0.7


def test_spread_picks_evenly_and_keeps_short_lists():
    assert spread([1, 2, 3], 8) == [1, 2, 3]
    assert spread(list(range(100)), 5) == [0, 25, 50, 74, 99]
