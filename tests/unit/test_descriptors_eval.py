"""The metrics of the descriptor study: TAR at a FAR, and LFW's fold accuracy."""

from __future__ import annotations

import numpy as np

from benchmarks.descriptors_eval import best_threshold, tar_at_far, view2_accuracy


def test_tar_at_far_lets_exactly_the_allowed_impostors_through():
    impostor = np.arange(10_000, dtype=np.float64)  # scores 0..9999
    genuine = np.array([9985.0, 9990.5, 9995.0, 5.0])
    # FAR 1e-3 allows 10 impostors: the threshold is the 11th highest (9989), accepting > it
    assert tar_at_far(genuine, impostor, 1e-3) == 0.5
    assert tar_at_far(genuine, impostor, 1e-4) is None  # 1 allowed: too few to say


def test_fold_accuracy_uses_a_threshold_from_the_other_folds():
    scores = np.array([0.9, 0.8, 0.2, 0.1] * 4)
    same = np.array([True, True, False, False] * 4)
    folds = np.repeat(np.arange(4), 4)
    assert 0.2 < best_threshold(scores, same) < 0.8
    assert view2_accuracy(scores, same, folds) == {"accuracy": 100.0, "std": 0.0}
