"""The verification score follows the contract's table: score = (3 - log10 FAR) / 10 in [0, 1]."""

from __future__ import annotations

import json

import numpy as np
import pytest

from frontend.service.scores import DEFAULT_CALIBRATION, ScoreCalibration

# A toy tail: log10 FAR falls one decade per 0.05 of distance below 0.6, FAR = 1 from 0.9 on.
TOY = ScoreCalibration(
    distances=np.array([0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.9]),
    log10_far=np.array([-7.0, -6.0, -5.0, -4.0, -3.0, -2.0, -1.0, -0.5, 0.0]),
)
THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def write(tmp_path, content) -> object:
    path = tmp_path / "calibration.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_score_is_monotone_decreasing_in_distance():
    distances = np.linspace(0.0, 1.5, 3001)
    scores = TOY.score(distances)
    assert np.all(np.diff(scores) <= 0)
    assert scores[0] > scores[-1]


def test_table_thresholds_map_to_nominal_far():
    for threshold in THRESHOLDS:
        distance = TOY.distance_at(threshold)
        assert TOY.far(distance) == pytest.approx(10.0 ** (3 - 10 * threshold), rel=1e-9)
        assert TOY.score(distance) == pytest.approx(threshold, abs=1e-12)
    assert TOY.distance_at(0.7) == pytest.approx(0.4)  # the recommended threshold: FAR 1e-4


def test_knots_are_interpolated_linearly_in_log10_far():
    assert TOY.far(0.425) == pytest.approx(10**-3.5)
    assert TOY.score(0.425) == pytest.approx(0.65)


def test_far_is_extrapolated_beyond_the_end_knots_and_never_exceeds_one():
    assert TOY.far(0.2) == pytest.approx(1e-8)  # the first segment's slope, continued
    assert TOY.far(0.9) == 1.0
    assert TOY.far(5.0) == 1.0


def test_scores_are_clipped_to_unit_interval():
    scores = TOY.score(np.array([-1.0, 0.0, 0.1, 0.2, 0.9, 2.0, 100.0]))
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[0] == 1.0 and scores[1] == 1.0  # FAR 1e-15 and below: clipped
    assert scores[-1] == pytest.approx(0.3)  # FAR = 1 is the lowest score any distance gets


def test_score_takes_scalars_and_arrays_of_any_shape():
    assert isinstance(TOY.score(0.4), float)
    matrix = np.array([[0.3, 0.5], [0.7, 1.0]])
    scores = TOY.score(matrix)
    assert scores.shape == (2, 2)
    assert scores[0, 0] == pytest.approx(TOY.score(0.3))


def test_distance_at_inverts_score():
    for score in np.linspace(0.31, 0.99, 35):
        assert TOY.score(TOY.distance_at(score)) == pytest.approx(score, abs=1e-9)
    with pytest.raises(ValueError, match="FAR would exceed 1"):
        TOY.distance_at(0.2)


def test_non_monotone_table_raises_a_clear_error(tmp_path):
    bad_far = write(tmp_path, {"knots": {"distance": [0.3, 0.4, 0.5], "log10_far": [-6, -2, -4]}})
    with pytest.raises(ValueError, match="non-decreasing"):
        ScoreCalibration.from_file(bad_far)
    bad_distance = write(
        tmp_path, {"knots": {"distance": [0.3, 0.3, 0.5], "log10_far": [-6, -4, 0]}}
    )
    with pytest.raises(ValueError, match="strictly increasing"):
        ScoreCalibration.from_file(bad_distance)


def test_malformed_calibration_files_raise_value_error_naming_the_file(tmp_path):
    cases = [
        "not json",
        {"no_knots": 1},
        {"knots": {"distance": [0.3], "log10_far": [-6]}},
        {"knots": {"distance": [0.3, 0.4], "log10_far": [-6]}},
        {"knots": {"distance": [0.3, 0.4], "log10_far": [-6, 0.5]}},
        {"knots": {"distance": [0.3, "x"], "log10_far": [-6, 0]}},
    ]
    for content in cases:
        path = write(tmp_path, content)
        with pytest.raises(ValueError, match="calibration"):
            ScoreCalibration.from_file(path)
    with pytest.raises(ValueError, match="not found"):
        ScoreCalibration.from_file(tmp_path / "missing.json")


def test_shipped_calibration_file_loads_and_covers_far_1e_6():
    calibration = ScoreCalibration.from_file(DEFAULT_CALIBRATION)
    assert calibration.log10_far[-1] == 0.0
    assert calibration.log10_far[0] <= -7.0
    assert len(calibration.distances) <= 500
    assert np.all(calibration.distances > 0)
    thresholds = [calibration.distance_at(t) for t in THRESHOLDS]
    assert np.all(np.diff(thresholds) < 0)  # higher score, tighter distance
    for threshold, distance in zip(THRESHOLDS, thresholds, strict=True):
        assert calibration.score(distance) == pytest.approx(threshold, abs=1e-9)
        assert calibration.distances[0] < distance < calibration.distances[-1]


def test_shipped_calibration_agrees_with_dlib_scale():
    """dlib's documented same-person cut, 0.6, is a loose threshold (FAR of percents, not ppm)."""
    calibration = ScoreCalibration.from_file()
    assert 1e-3 < calibration.far(0.6) < 0.2
    assert calibration.score(0.2) == 1.0  # far closer than any impostor pair measured


def test_shipped_calibration_was_fitted_without_the_held_out_people_and_holds_on_them():
    """The promise is measured on people the fit never saw (benchmarks.split): the file says
    which half it was fitted on, and every threshold's held-out FAR, with its count, stays
    inside its identity bootstrap range and within 1.5x of nominal."""
    shipped = json.loads(DEFAULT_CALIBRATION.read_text())
    assert "benchmarks.split.half_of" in shipped["data"]["half"]
    held_out = shipped["held_out"]
    assert held_out["identities"] > 1000
    assert held_out["identities"] + shipped["data"]["identities"] >= 3400
    for level in held_out["levels"]:
        nominal, far = level["nominal_far"], level["far"]
        assert far == pytest.approx(level["impostor_pairs_accepted"] / level["impostor_pairs"],
                                    rel=1e-3)
        assert nominal / 1.5 <= far <= nominal * 1.5, level
        if level["far_bootstrap_5_95"]:
            low, high = level["far_bootstrap_5_95"]
            assert low <= nominal <= high, level
