"""Verification accuracy of the whole library on LFW View 2, folds 1-8 (4,800 pairs).

Protocol: each fold is scored with the distance threshold that is best on the other seven.
dlib publishes 99.13% for its own no-jitter pipeline on the original LFW images;
../shared/docs/FACTS.md measured 99.12% for YuNet alignment with the mirror average here.
"""

from __future__ import annotations

import asyncio
import csv
import logging

import cv2
import numpy as np

from frontend.service.faces import FacePipeline

LOGGER = logging.getLogger(__name__)
CONCURRENCY = 16


def lfw_pairs(data_dir) -> list[tuple[str, str, bool, int]]:
    with (data_dir / "faces" / "pairs.csv").open() as stream:
        return [
            (row["img1"], row["img2"], row["same"] == "1", int(row["subset"][-2:]))
            for row in csv.DictReader(stream)
            if row["subset"].startswith("lfw_view2_fold")
        ]


async def descriptors(pipeline: FacePipeline, data_dir, names: list[str]) -> dict[str, np.ndarray]:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(name: str) -> tuple[str, np.ndarray]:
        async with limit:
            image = await asyncio.to_thread(cv2.imread, str(data_dir / name))
            face = await pipeline.main_face(image)
            assert face is not None, f"no face in {name}"
            return name, face.descriptor

    return dict(await asyncio.gather(*(one(n) for n in names)))


def cross_validated_accuracy(distances: np.ndarray, same: np.ndarray,
                             folds: np.ndarray) -> list[float]:
    """Per fold, accuracy at the threshold that is best on the other folds."""
    candidates = np.unique(distances)
    accuracies = []
    for fold in np.unique(folds):
        train = folds != fold
        correct = [((distances[train] < t) == same[train]).mean() for t in candidates]
        threshold = candidates[int(np.argmax(correct))]
        accuracies.append(float(((distances[~train] < threshold) == same[~train]).mean()))
    return accuracies


async def test_lfw_folds_1_to_8_accuracy_is_at_least_99_percent(pipeline, data_dir):
    pairs = lfw_pairs(data_dir)
    assert len(pairs) == 4800
    names = sorted({n for a, b, _, _ in pairs for n in (a, b)})
    vectors = await descriptors(pipeline, data_dir, names)
    distances = np.array([np.linalg.norm(vectors[a] - vectors[b]) for a, b, _, _ in pairs])
    same = np.array([s for _, _, s, _ in pairs])
    folds = np.array([f for _, _, _, f in pairs])
    accuracies = cross_validated_accuracy(distances, same, folds)
    mean = float(np.mean(accuracies))
    LOGGER.warning(
        "LFW folds 1-8: %.2f%% +- %.2f (per fold: %s)",
        100 * mean, 100 * float(np.std(accuracies)),
        ", ".join(f"{100 * a:.2f}" for a in accuracies),
    )
    assert mean >= 0.99
