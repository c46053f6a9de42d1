"""The active challenge on real landmark tracks (tests/fixtures/pose_tracks.json, YuNet's
landmarks of the shared clips; tests/tools/make_pose_tracks.py writes it)."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest

from preprocessing.challenge import (
    Action,
    PoseSample,
    action_of,
    check_challenge,
    parse_actions,
    random_challenge,
)
from preprocessing.quality import pose_of_landmarks
from tests.conftest import REPO_ROOT

TRACKS = json.loads((REPO_ROOT / "tests/fixtures/pose_tracks.json").read_text())
LEFT, RIGHT, UP, DOWN = Action.TURN_LEFT, Action.TURN_RIGHT, Action.LOOK_UP, Action.LOOK_DOWN


def samples(clip: str) -> list[PoseSample]:
    out = []
    for frame in TRACKS[clip]:
        pose = pose_of_landmarks(np.array(frame["landmarks"]))
        out.append(PoseSample(frame["t"], pose.yaw, pose.pitch))
    return out


def pose_at(clip: str, t: float):
    (frame,) = [f for f in TRACKS[clip] if abs(f["t"] - t) < 0.05]
    return pose_of_landmarks(np.array(frame["landmarks"]))


def test_a_turn_to_the_persons_left_reads_as_positive_yaw_and_a_mirror_flips_it():
    left = pose_at("liveportrait_driving_d12.mp4", 1.6)
    right = pose_at("liveportrait_driving_d12.mp4", 3.6)
    assert left.yaw > 18 and right.yaw < -18
    landmarks = np.array([f["landmarks"] for f in TRACKS["liveportrait_driving_d12.mp4"]
                          if abs(f["t"] - 1.6) < 0.05][0])
    mirrored = landmarks.copy()
    mirrored[:, 0] = 512 - mirrored[:, 0]
    mirrored = mirrored[[1, 0, 2, 4, 3]]  # the person's right eye is now the other one
    assert pose_of_landmarks(mirrored).yaw == pytest.approx(-left.yaw, abs=0.5)


def test_a_clip_that_turns_left_then_right_passes_that_challenge_in_that_order_only():
    track = samples("liveportrait_driving_d12.mp4")
    result = check_challenge(track, (LEFT, RIGHT))
    assert result.passed
    assert [s.at_s for s in result.steps] == [pytest.approx(1.6), pytest.approx(3.2)]
    assert not check_challenge(track, (RIGHT, LEFT)).passed


def test_one_held_turn_does_not_count_twice():
    # d3 turns left at 1.2 s and again at 4.6 s: a second left needs the head back in between,
    # and parse_actions refuses the same action twice in a row anyway.
    track = samples("liveportrait_driving_d3.mp4")
    assert check_challenge(track, (LEFT,)).passed
    assert not check_challenge(track, (LEFT, RIGHT)).passed


def test_a_move_that_comes_too_late_after_the_previous_one_does_not_count():
    track = samples("liveportrait_driving_d12.mp4")
    slowed = [PoseSample(s.timestamp_s * (3 if s.timestamp_s > 2.2 else 1), s.yaw, s.pitch)
              for s in track]
    result = check_challenge(slowed, (LEFT, RIGHT))
    assert not result.passed and [s.done for s in result.steps] == [True, False]


def test_a_live_clip_without_moves_passes_no_challenge():
    track = samples("liveportrait_driving_d13.mp4")
    assert not any(check_challenge(track, (a,)).passed for a in Action)


def test_a_capture_that_starts_turned_away_passes_nothing():
    track = samples("liveportrait_source_s32.mp4")  # starts at yaw -40: landmark noise
    assert not any(check_challenge(track, c).passed for c in itertools.permutations(Action, 2))


def test_a_hand_held_replay_passes_no_two_move_challenge():
    track = samples("manikantha_fake_replay.mp4")
    assert not any(check_challenge(track, c).passed for c in itertools.permutations(Action, 2))


def test_no_frames_pass_nothing():
    result = check_challenge([], (LEFT, RIGHT))
    assert not result.passed and not any(s.done for s in result.steps)


def test_the_page_progress_names_the_move_a_pose_shows():
    assert action_of(25, 2) is LEFT and action_of(-30, 0) is RIGHT
    assert action_of(3, 15) is UP and action_of(0, -14) is DOWN
    assert action_of(5, 4) is None


def test_random_challenges_never_repeat_an_action_in_a_row_and_cover_every_action():
    rng = random.Random(7)
    drawn = [random_challenge(3, rng) for _ in range(200)]
    assert all(a is not b for c in drawn for a, b in itertools.pairwise(c))
    assert {a for c in drawn for a in c} == set(Action)


@pytest.mark.parametrize("text", ["", "turn_left,turn_left", "wink", "look_up,look_down,"
                                  "turn_left,turn_right"])
def test_a_challenge_that_is_not_one_is_refused(text):
    with pytest.raises(ValueError):
        parse_actions(text)


def test_a_challenge_is_read_from_its_names():
    assert parse_actions(" turn_left, look_up ") == (LEFT, UP)
