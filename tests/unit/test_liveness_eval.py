"""The liveness evaluation's bookkeeping: error bounds, the spoof-type confusion and the
identity split."""

import pytest

from benchmarks.liveness_eval import (
    identity,
    operating_point,
    rates_by_half,
    spoof_type_confusion,
    wrong_share,
)
from benchmarks.split import HALVES, half_of
from benchmarks.stats import upper_bound


def _attack(kind, *, passed=False, spoof_type=None, file_passed=False, file_spoof_type=None,
            status="hack", file_error=None):
    row = {"bona_fide": False, "kind": kind, "status": status, "passed": passed,
           "spoof_type": spoof_type, "file_passed": file_passed,
           "file_spoof_type": file_spoof_type}
    if file_error:
        row["file_error"] = file_error
    return row


def test_the_confusion_counts_each_path_over_its_own_refused_attacks():
    rows = [
        _attack("screen_near", spoof_type="screen", file_spoof_type="unknown"),
        _attack("still_photo", spoof_type="still_photo", file_passed=True),
        _attack("still_photo", spoof_type="screen", file_error="no face"),
        _attack("screen_far", passed=True, file_spoof_type="screen"),
        _attack("screen_far", status="error", file_spoof_type="screen"),
        {"bona_fide": True, "kind": "live", "status": "hack", "passed": False,
         "spoof_type": "unknown", "file_passed": False, "file_spoof_type": "unknown"},
    ]
    assert spoof_type_confusion(rows, "video") == {
        "screen": {"screen": 1}, "still_photo": {"still_photo": 1, "screen": 1}}
    assert spoof_type_confusion(rows, "file") == {"screen": {"unknown": 1, "screen": 2}}


def test_a_named_type_counts_how_often_it_was_wrong_and_unknown_is_never_wrong():
    confusion = {"screen": {"screen": 19, "still_photo": 1, "unknown": 15},
                 "still_photo": {"still_photo": 20, "screen": 2, "unknown": 11}}
    assert wrong_share(confusion) == {"screen": (2, 21), "still_photo": (1, 21)}


def test_no_errors_in_n_trials_bounds_the_rate_by_the_rule_of_three():
    assert upper_bound(0, 15) == pytest.approx(1 - 0.05 ** (1 / 15), rel=1e-5)
    assert upper_bound(3, 3) == 1.0


def _clip(set_name, kind, file, *, passed, bona_fide):
    return {"set": set_name, "kind": kind, "file": file, "bona_fide": bona_fide,
            "status": "ok" if passed else "hack", "score": 0.9 if passed else 0.1,
            "passed": passed, "file_passed": passed}


def test_a_person_is_one_identity_across_live_clips_copies_replays_and_held_up_photos():
    assert identity(_clip("live", "live", "zubair_real.webm", passed=True, bona_fide=True)) \
        == identity(_clip("attacks", "replay_video", "zubair_fake_replay.webm", passed=False,
                          bona_fide=False)) == "zubair"
    copy = _clip("degraded", "small", "liveportrait_driving_d0.mp4@small", passed=True,
                 bona_fide=True)
    screen = _clip("attacks", "screen_near", "liveportrait_driving_d0.mp4", passed=False,
                   bona_fide=False)
    assert identity(copy) == identity(screen) == "liveportrait_driving_d0"
    # a photo held up by hand is the calibration's identity: its folder under faces/
    held_up = _clip("attacks", "still_photo@crf35", "facerec_obama.jpg", passed=False,
                    bona_fide=False)
    assert identity(held_up) == "Barack_Obama"


def test_each_half_counts_only_its_own_people_and_pools_bona_fide_and_attacks():
    rows = [_clip("live", "live", f"person{i}.mp4", passed=i != 3, bona_fide=True)
            for i in range(12)]
    rows += [_clip("attacks", "still_photo", f"person{i}.mp4", passed=i == 5, bona_fide=False)
             for i in range(12)]
    halves = rates_by_half(rows)
    for half in HALVES:
        mine = [r for r in rows if half_of(identity(r)) == half]
        live = halves[half]["video"]["live"]
        assert live["n"] == sum(r["bona_fide"] for r in mine)
        assert live["errors"] == sum(r["bona_fide"] and not r["passed"] for r in mine)
        assert halves[half]["video"]["attacks, pooled"]["errors"] == sum(
            not r["bona_fide"] and r["passed"] for r in mine)
    assert sum(halves[h]["video"]["live"]["n"] for h in HALVES) == 12
    assert sum(halves[h]["people"] for h in HALVES) == 12


def test_the_operating_point_is_picked_on_the_fit_half_and_judged_on_the_held_out_half():
    people = [f"person{i}" for i in range(40)]
    fit = [p for p in people if half_of(p) == "fit"]
    held = [p for p in people if half_of(p) == "held_out"]
    rows = []
    for who in fit:  # separable: live at 0.9, attacks at 0.05
        rows += [_scored("live", f"{who}.mp4", 0.9, True),
                 _scored("attacks", f"{who}.mp4", 0.05, False)]
    for who in held:  # attacks at 0.3 pass a threshold fitted low, not the shipped 0.5
        rows += [_scored("live", f"{who}.mp4", 0.9, True),
                 _scored("attacks", f"{who}.mp4", 0.3, False)]
    point = operating_point(rows, threshold=0.5)
    assert point["fit_half_errors"] == 0 and point["fit_half_best"] == [0.06, 0.9]
    assert point["held_out_at_fit_half_best"][0]["attacks_passed"] == len(held)
    assert point["held_out_at_shipped"] == {"threshold": 0.5, "bona_fide_refused": 0,
                                            "bona_fide": len(held), "attacks_passed": 0,
                                            "attacks": len(held)}


def _scored(set_name, file, score, bona_fide):
    return {"set": set_name, "kind": "live" if bona_fide else "still_photo", "file": file,
            "bona_fide": bona_fide, "status": "ok" if score >= 0.5 else "hack", "score": score}
