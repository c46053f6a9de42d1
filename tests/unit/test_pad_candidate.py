"""The second liveness network's evaluation: its crop, and how its counts are kept."""

from __future__ import annotations

import numpy as np

from benchmarks.pad_candidate import SHIPPED, crop, passes, summary


def test_the_crop_is_the_boxs_square_grown_half_again_and_black_beyond_the_frame():
    image = np.full((200, 300, 3), 200, dtype=np.uint8)
    inside = crop(image, (100.0, 50.0, 60.0, 80.0))  # 120 px square, well inside
    assert inside.shape == (3, 128, 128) and np.allclose(inside, 200 / 255)
    corner = crop(image, (0.0, 0.0, 60.0, 60.0))  # centred on (30, 30): 90 px, 15 outside
    assert np.allclose(corner[:, :10, :10], 0) and np.allclose(corner[:, -10:, -10:], 200 / 255)


def test_counts_keep_each_half_apart_and_say_which_caught_attacks_it_would_pass():
    cues = {"status": "ok", "motion": None, "moire": None}
    rows = [
        {"half": "fit", "bona_fide": True, "passed": False, "file": "a@bright", "score": 0.2,
         "candidate": 0.95, "nets": [[0.2, 0.2]], **cues},
        {"half": "fit", "bona_fide": False, "passed": False, "file": "b", "score": 0.0,
         "candidate": 0.97, "nets": [[0.0, 0.0]], **cues},
        {"half": "held_out", "bona_fide": False, "passed": True, "file": "c", "score": 0.6,
         "candidate": 0.3, "nets": [[0.9, 0.3]], **cues},
        {"half": "held_out", "bona_fide": True, "error": "no face"},
    ]
    s = summary(rows)
    assert s["fit"]["alone"]["0.9"] == {"bpcer": 0, "apcer": 1}
    assert s["fit"]["caught_attacks_called_live"]["0.9"] == 1 and s["fit"]["caught_attacks"] == 1
    assert s["fit"]["refused_live"] == [{"file": "a@bright", "score": 0.2, "candidate": 0.95}]
    assert s["held_out"]["alone"]["0.5"] == {"bpcer": 0, "apcer": 0}
    assert s["held_out"]["bona_fide"] == 0 and s["held_out"]["caught_attacks"] == 0
    assert s["held_out"]["net_fusions"]["the lower net"] == {"bpcer": 0, "apcer": 0}
    assert s["fit"]["shipped_reproduced"] == 2 and s["held_out"]["shipped_reproduced"] == 1


def test_a_reading_of_the_two_nets_redecides_p_real_alone_and_keeps_the_other_vetoes():
    live_to_one_net = {"nets": [[0.0, 0.9], [0.0, 0.8]], "status": "ok", "motion": None,
                       "moire": 0.9}
    assert not passes(live_to_one_net, SHIPPED)  # mean 0.425
    assert passes(live_to_one_net, "the higher net")  # V1SE 0.85
    assert not passes(live_to_one_net | {"moire": 0.1}, "the higher net")  # the moire vetoes
    assert not passes(live_to_one_net | {"status": "short_time"}, "the higher net")
