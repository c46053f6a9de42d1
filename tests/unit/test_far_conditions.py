"""The pieces of the FAR-by-condition evaluation that its numbers rest on."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.far_conditions import (
    CONDITIONS,
    Records,
    count_pairs,
    distinct_faces,
    select_photos,
    variant,
)
from benchmarks.split import half_of
from benchmarks.stats import clopper_pearson
from preprocessing.detection import Face

BY_NAME = {c.name: c for c in CONDITIONS}


def test_clopper_pearson_matches_known_exact_intervals():
    low, high = clopper_pearson(5, 100)
    assert low == pytest.approx(0.01643, abs=2e-5)
    assert high == pytest.approx(0.11284, abs=2e-5)
    low, high = clopper_pearson(0, 1000)
    assert low == 0.0
    assert high == pytest.approx(1 - 0.025 ** (1 / 1000), rel=1e-4)
    low, high = clopper_pearson(12, 35_866_496)  # a tail count as in the report
    assert low < 12 / 35_866_496 < high
    assert high / low == pytest.approx(3.4, rel=0.1)


def test_halves_are_disjoint_by_identity_and_deterministic():
    names = [f"faces/P{i}/P{i}_{j:04d}.jpg" for i in range(200) for j in range(1, 4)]
    chosen = select_photos(names, 60)
    assert {half_of(f"P{i}") for i in range(200)} == {"fit", "held_out"}
    for half, photos in chosen.items():
        assert len(photos) == 60
        assert all(half_of(p.split("/")[1]) == half for p in photos)
    assert select_photos(names, 60) == chosen


def test_variants_shrink_the_face_to_the_target_box_or_keep_the_size():
    image = np.random.default_rng(0).integers(0, 256, (250, 250, 3), dtype=np.uint8)
    small, scale = variant(image, BY_NAME["box40"], box_width=100.0)
    assert small.shape[:2] == (100, 100) and scale == pytest.approx(0.4)
    soft, scale = variant(image, BY_NAME["box40_up"], box_width=100.0)
    assert soft.shape == image.shape and scale == 1.0
    assert variant(image, BY_NAME["box80"], box_width=70.0) is None  # would enlarge
    assert variant(image, BY_NAME["jpeg30"], box_width=100.0)[0].shape == image.shape
    assert variant(image, BY_NAME["up2x"], box_width=100.0)[0].shape == (500, 500, 3)
    assert variant(np.zeros((5000, 4500, 3), np.uint8), BY_NAME["up2x"], 100.0) is None


def _face(x: float, y: float, w: float, score: float) -> Face:
    return Face((x, y, w, w), np.zeros((5, 2), np.float32), score)


def test_a_second_detection_of_one_face_is_not_a_second_person():
    first, double = _face(100, 100, 40, 0.9), _face(112, 95, 40, 0.7)
    other = _face(300, 100, 40, 0.8)
    assert distinct_faces([double, first, other]) == [first, other]


def test_count_pairs_counts_what_a_loop_over_pairs_counts():
    rng = np.random.default_rng(1)
    n = 40
    descriptors = rng.normal(0, 0.3, (n, 4))
    identity = rng.integers(0, 12, n)
    records = Records(
        photo=np.array([f"p{i}" for i in range(n)]), condition=np.array(["original"] * n),
        identity=identity, identities=[str(i) for i in range(12)],
        half=np.array(["held_out"] * n), group=np.array([""] * n), descriptor=descriptors,
        box_width=np.full(n, 90.0), eye_distance=np.full(n, 40.0), blur=np.full(n, 0.4))

    def score(distance, a, b):
        return 1.0 - distance

    first, second = np.arange(15), np.arange(15, n)
    for pair_rows, counts in (
        ([(i, j) for i in range(n) for j in range(i + 1, n)],
         count_pairs(records, np.arange(n), None, score, levels=(0.5,), block=7)),
        ([(i, j) for i in first for j in second],
         count_pairs(records, first, second, score, levels=(0.5,), block=4)),
    ):
        impostor = [(i, j) for i, j in pair_rows if identity[i] != identity[j]]
        accepted = sum(1 for i, j in impostor
                       if 1 - np.linalg.norm(descriptors[i] - descriptors[j]) >= 0.5 - 1e-12)
        assert counts.impostors == len(impostor)
        assert counts.genuines == len(pair_rows) - len(impostor)
        assert counts.accepted[0.5] == accepted
