"""Following the subject across frames, and the rules that turn evidence into a decision."""

from __future__ import annotations

import math

import numpy as np

from frontend.service.faces import fuse
from frontend.service.video import SAMPLE_INTERVAL_S, spread
from preprocessing.detection import Face
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


def test_any_cue_can_veto_a_cue_without_evidence_abstains_and_the_decider_is_named():
    nan = float("nan")
    assert fuse({"p_real": 0.9, "motion": 1.0, "moire": 1.0}) == (0.9, "p_real")
    assert fuse({"p_real": 0.9, "motion": 0.0, "moire": 1.0}) == (0.0, "motion")
    assert fuse({"p_real": 0.9, "motion": 1.0, "moire": 0.1}) == (0.1, "moire")
    assert fuse({"p_real": 0.7, "motion": nan, "moire": nan}) == (0.7, "p_real")


def test_spread_picks_evenly_and_keeps_short_lists():
    assert spread([1, 2, 3], 8) == [1, 2, 3]
    assert spread(list(range(100)), 5) == [0, 25, 50, 74, 99]


def _quality(brightness: float = 0.45, blur: float = 0.4):
    from preprocessing.quality import FaceQuality, Occlusion, Pose

    return FaceQuality(Occlusion(0, 0, 0), blur, brightness, Pose(0, 0, 0), 40.0, 1.0)


def test_a_capture_problem_is_named_only_when_the_capture_explains_a_refusal():
    from frontend.service.video import capture_problem

    good = [_quality()] * 5
    assert capture_problem("short_time", good, [100] * 5) == "face_lost"
    assert capture_problem("hack", good, [40, 41, 39, 44, 120]) == "face_too_small"
    assert capture_problem("hack", [_quality(brightness=0.1)] * 5, [100] * 5) == "too_dark"
    assert capture_problem("hack", [_quality(brightness=0.9)] * 5, [100] * 5) == "too_bright"
    assert capture_problem("hack", [_quality(blur=0.7)] * 5, [100] * 5) == "too_blurred"
    assert capture_problem("hack", good, [100] * 5) is None  # nothing to blame: a spoof


def test_the_spoof_type_follows_the_cue_that_refused():
    from frontend.service.video import spoof_type

    class Refused:
        def __init__(self, cue: str) -> None:
            self.decided_by = cue

    assert [spoof_type(Refused(c)) for c in ("motion", "moire", "p_real")] == [
        "still_photo", "screen", "unknown"]
