"""Calibration of the verification score: the face embedder's impostor tail, measured on real faces.

    python -m benchmarks.calibrate [--data-dir ../shared/data]
        [--out model_repository/calibration/face_embedder.json] [--cache PATH]

The contract (../shared/docs/CONTRACT.md, section 2) defines ``verification_score =
(3 - log10 FAR(distance)) / 10`` clipped to [0, 1], where FAR(d) is the fraction of impostor pairs
(two photos of different people) whose descriptor distance is at most d. This builder measures
that function:

1. Every identity-labelled photo in ``<data-dir>/faces/<Identity>/*`` goes through the
   server's own face pipeline (`frontend.service.faces.FacePipeline.main_face`) over the
   in-process runtime (`frontend.inference.onnx.OnnxModels`, the built ONNX files without
   Triton): letterbox, detector, NMS, the face nearest the centre, its aligned chip and its
   mirror, the embedder, the average of both descriptors. Photos without a face are skipped
   and counted.
2. Labels are taken from the folder names, with a few documented corrections
   (`LABEL_CORRECTIONS`: one person under two names, photos of someone else), found by looking at
   the closest impostor pairs. All cross-identity pairs are impostors, all same-identity pairs
   genuines; distances are computed in blocks. FAR is the empirical impostor CDF.
3. The empirical FAR counts as measured down to the FAR that `MIN_TAIL_PAIRS` impostor pairs
   reach. Below that it is extrapolated by a tail model fitted to the measured tail from FAR
   `FIT_TOP_FAR` down: a Gaussian tail, ``FAR(d) = Phi((d - mu) / sigma)`` (a straight line in
   probit(FAR) vs distance), or an exponential one (a straight line in log10 FAR vs distance),
   whichever fits better. Both fits, their residuals, an out-of-sample check (fitted above FAR
   `HOLDOUT_SPLIT_FAR`, judged below it) and an identity-level bootstrap go into the output.

4. **Held out.** Identities are split by a hash of the corrected name (`benchmarks.split.half_of`,
   the split every evaluation uses): step 3's table is fitted on the *fit* half only, and
   `held_out_check` judges its thresholds on the other half's pairs (FAR with its count, exact
   interval and identity bootstrap; TAR), which no fit has seen.

The JSON output holds a monotone knot table (distance -> log10 FAR) read by
`frontend.service.scores.ScoreCalibration`, plus everything needed to judge it. Descriptors can
be cached (``--cache``) so that the statistics can be re-run without the models.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import csv
import datetime
import hashlib
import json
import logging
import math
import shlex
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks.paths import DATA, REPO_ROOT
from benchmarks.split import HALVES, half_of
from benchmarks.stats import clopper_pearson
from frontend.inference.onnx import OnnxModels
from frontend.service.faces import FacePipeline
from frontend.service.stages import Stages
from model_repository.specs import DETECTORS, FACE_EMBEDDER, onnx_file
from model_repository.weights import sha256_of
from preprocessing.detection import DEFAULT_SCORE_THRESHOLD, detector_sizes

LOGGER = logging.getLogger(__name__)
DEFAULT_DATA_DIR = DATA
DEFAULT_OUT = REPO_ROOT / "model_repository" / "calibration" / "face_embedder.json"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}

MIN_TAIL_PAIRS = 20
"""The empirical FAR counts as measured down to the FAR that this many impostor pairs reach."""
FIT_TOP_FAR = 1e-3
"""The tail models are fitted on FAR from the measured limit up to this value."""
HOLDOUT_SPLIT_FAR = 1e-5
"""Out-of-sample check: a fit on [this, FIT_TOP_FAR] predicts the measured decades below."""
TAIL_MODELS = ("gaussian", "exponential")
"""Candidate tail models; the one with the smaller RMS error over the fitted range is used."""
TABLE_LOWEST_LOG10_FAR = -8.0
"""The knot table is extended by the tail model down to this log10 FAR."""
TAIL_CUTOFF = 0.62
"""Impostor pairs up to this distance are kept with their photos (closest pairs, bootstrap)."""
THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
KNOT_STEP_DECADES = 0.05
BOOTSTRAP_REPLICATES = 500
CLOSEST_PAIRS_REPORTED = 30
_STANDARD_NORMAL = statistics.NormalDist()


@dataclass(frozen=True)
class Dataset:
    """Descriptors of the photos in which a face was found.

    Attributes:
        names: photo paths relative to the data directory, e.g. ``faces/Zico/Zico_0001.jpg``.
        identities: the identity label (folder name) of each photo.
        descriptors: [N, 128] float32, the mirror-averaged descriptor of each photo's face.
        missed: photos in which no face was found (or that did not decode).
    """

    names: list[str]
    identities: list[str]
    descriptors: np.ndarray
    missed: list[str]


def model_hashes(small_detector: bool = False) -> dict[str, str]:
    """SHA-256 of each ONNX file used (from its build_info.json when present, checked), and the
    CPU runtime each runs in: descriptors depend on both."""
    hashes = {}
    sizes = detector_sizes(small_detector)
    used = [spec for spec in DETECTORS if spec.inputs[0].dims[0] in sizes]
    for spec in (*used, FACE_EMBEDDER):
        onnx_path = onnx_file(spec)
        actual = sha256_of(onnx_path)
        info_path = onnx_path.with_name("build_info.json")
        if info_path.is_file():
            recorded = json.loads(info_path.read_text()).get("onnx_sha256")
            if recorded and recorded != actual:
                raise SystemExit(f"{onnx_path} does not match its build_info.json; rebuild it")
        hashes[spec.name] = actual
        hashes[f"{spec.name} runtime"] = f"{spec.cpu_runtime.engine}/{spec.cpu_runtime.precision}"
    return hashes


def labelled_photos(data_dir: Path) -> list[str]:
    """Every photo under faces/<Identity>/, as paths relative to data_dir, sorted."""
    faces = data_dir / "faces"
    return sorted(
        str(path.relative_to(data_dir))
        for folder in faces.iterdir()
        if folder.is_dir()
        for path in folder.iterdir()
        if path.suffix.lower() in IMAGE_SUFFIXES
    )


def embed_photos(data_dir: Path, names: list[str], threads: int = 0,
                 small_detector: bool = False, concurrency: int = 4) -> Dataset:
    """The server's pipeline (detect, nearest face, chip + mirror, embed, average) on each photo."""
    return asyncio.run(_embed_photos(data_dir, names, threads, small_detector, concurrency))


async def _embed_photos(data_dir: Path, names: list[str], threads: int, small_detector: bool,
                        concurrency: int) -> Dataset:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        pipeline = FacePipeline(
            OnnxModels(executor=pool, threads=threads), Stages(pool),
            detector_sizes=detector_sizes(small_detector),
        )
        limit = asyncio.Semaphore(concurrency)
        started, done = time.perf_counter(), 0

        async def one(name: str) -> np.ndarray | None:
            nonlocal done
            async with limit:
                image = await pipeline.stages.cpu(
                    cv2.imread, str(data_dir / name), cv2.IMREAD_COLOR)
                face = None if image is None else await pipeline.main_face(image)
            done += 1
            if done % 800 == 0 or done == len(names):
                LOGGER.info("embedded %d / %d photos, %.0f s", done, len(names),
                            time.perf_counter() - started)
            return None if face is None else face.descriptor

        descriptors = await asyncio.gather(*(one(name) for name in names))
    kept = [n for n, d in zip(names, descriptors, strict=True) if d is not None]
    return Dataset(
        names=kept,
        identities=[Path(n).parent.name for n in kept],
        descriptors=np.stack([d for d in descriptors if d is not None]).astype(np.float32),
        missed=sorted(n for n, d in zip(names, descriptors, strict=True) if d is None),
    )


def load_or_embed(data_dir: Path, cache: Path | None, hashes: dict[str, str],
                  threads: int, small_detector: bool = False) -> Dataset:
    names = labelled_photos(data_dir)
    key = hashlib.sha256(json.dumps([hashes, names]).encode()).hexdigest()
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            if str(stored["key"]) == key:
                LOGGER.info("descriptors from %s", cache)
                kept = [str(n) for n in stored["names"]]
                return Dataset(kept, [Path(n).parent.name for n in kept],
                               stored["descriptors"], [str(n) for n in stored["missed"]])
        LOGGER.info("%s is for other models or photos; embedding again", cache)
    dataset = embed_photos(data_dir, names, threads, small_detector=small_detector)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, key=key, names=np.array(dataset.names), descriptors=dataset.descriptors,
                 missed=np.array(dataset.missed, dtype=str))
    return dataset


@dataclass
class PairDistances:
    """Every pair of photos, split by label.

    Attributes:
        impostor: sorted distances of all cross-identity pairs (float64).
        genuine: sorted distances of all same-identity pairs.
        tail_distance, tail_a, tail_b: impostor pairs at or below `tail_cutoff`, sorted by
            distance, with the row indices of both photos.
        tail_cutoff: the distance bounding the stored tail.
    """

    impostor: np.ndarray
    genuine: np.ndarray
    tail_distance: np.ndarray
    tail_a: np.ndarray
    tail_b: np.ndarray
    tail_cutoff: float


def pair_distances(descriptors: np.ndarray, labels: np.ndarray, tail_cutoff: float,
                   block: int = 512) -> PairDistances:
    """Euclidean distances of all pairs i < j, in row blocks (float64 Gram form)."""
    vectors = descriptors.astype(np.float64)
    squares = (vectors**2).sum(axis=1)
    impostor, genuine, tail = [], [], []
    count = len(vectors)
    for first in range(0, count, block):
        last = min(first + block, count)
        gram = vectors[first:last] @ vectors[first:].T
        d2 = squares[first:last, None] + squares[None, first:] - 2 * gram
        d = np.sqrt(np.maximum(d2, 0.0))
        rows, cols = np.triu_indices(last - first, k=1, m=count - first)
        values = d[rows, cols]
        same = labels[first + rows] == labels[first + cols]
        impostor.append(values[~same].astype(np.float32))
        genuine.append(values[same])
        low = ~same & (values <= tail_cutoff)
        tail.append(np.stack([values[low], first + rows[low], first + cols[low]], axis=1))
    tail_rows = np.concatenate(tail)
    order = np.argsort(tail_rows[:, 0], kind="stable")
    tail_rows = tail_rows[order]
    a, b = tail_rows[:, 1].astype(np.int64), tail_rows[:, 2].astype(np.int64)
    # The tail's distances again, as the server computes them (`ScoreCalibration.compare`).
    exact = np.linalg.norm(descriptors[a].astype(np.float64) - descriptors[b], axis=1)
    order = np.argsort(exact, kind="stable")
    return PairDistances(
        impostor=np.sort(np.concatenate(impostor)).astype(np.float64),
        genuine=np.sort(np.concatenate(genuine)),
        tail_distance=exact[order], tail_a=a[order], tail_b=b[order], tail_cutoff=tail_cutoff,
    )


# --- label corrections ---------------------------------------------------------------------------

LABEL_CORRECTIONS: dict[str, tuple[str, str]] = {
    # key: a photo (path relative to the data directory) or a whole identity; value: the identity
    # it really is, and why. Found by looking at the closest impostor pairs (the photos were
    # looked at side by side); without them, these pairs make up much of the tail below FAR 1e-6.
    "faces/Recep_Tayyip_Erdogan/Recep_Tayyip_Erdogan_0004.jpg": (
        "Abdullah_Gul", "the centre face is Abdullah Gul, not Erdogan (looked at)"),
    "faces/Michael_Schumacher/Michael_Schumacher_0008.jpg": (
        "Rubens_Barrichello", "the photo shows Rubens Barrichello (looked at)"),
    "Martha_Bowen": (
        "Gabrielle_Rose", "Martha_Bowen_0002 is the same photo as Gabrielle_Rose_0001 (distance "
        "0.15); Martha_Bowen_0001 looks like the same swimmer"),
    "Dai_Chul_Chyung": ("Chyung_Dai-chul", "one person under two name orders (looked at)"),
    "Hassan_Wirajuda": ("Hasan_Wirayuda", "one person under two spellings (looked at)"),
    "Wang_Nan": ("Nan_Wang", "one person (table-tennis player) under two name orders (looked at)"),
    "John_Burnett": (
        "John_Barnett", "one photo each, distance 0.32; by eye the same man (probably a "
        "misspelling, not certain)"),
}


def corrected_identities(dataset: Dataset, corrections: dict[str, tuple[str, str]]) -> list[str]:
    identities = []
    for name, identity in zip(dataset.names, dataset.identities, strict=True):
        fix = corrections.get(name) or corrections.get(identity)
        identities.append(fix[0] if fix else identity)
    return identities


def split_halves(dataset: Dataset, corrections: dict[str, tuple[str, str]]) -> dict[str, Dataset]:
    """The photos of the ``fit`` and the ``held_out`` identities (`half_of` the corrected
    name): the table is fitted on the first and judged on the second, which nothing sees."""
    halves = [half_of(i) for i in corrected_identities(dataset, corrections)]
    out = {}
    for half in HALVES:
        rows = [i for i, h in enumerate(halves) if h == half]
        missed = [n for n in dataset.missed if half_of(Path(n).parent.name) == half]
        out[half] = Dataset([dataset.names[i] for i in rows],
                            [dataset.identities[i] for i in rows], dataset.descriptors[rows],
                            missed)
    return out


# --- the tail model ------------------------------------------------------------------------------


def probit(p) -> np.ndarray:
    """Inverse standard normal CDF (`statistics.NormalDist`, Wichura's AS241)."""
    return np.vectorize(_STANDARD_NORMAL.inv_cdf, otypes=[np.float64])(np.asarray(p, np.float64))


def _log10_normal_cdf(x: float) -> float:
    if x > -30:
        return math.log10(0.5 * math.erfc(-x / math.sqrt(2)))
    return (-x * x / 2 - math.log(-x * math.sqrt(2 * math.pi))) / math.log(10)


@dataclass(frozen=True)
class TailFit:
    """A straight line between distance and a transform of FAR, fitted to the measured tail.

    ``gaussian``: probit(FAR) = (d - mu) / sigma, i.e. FAR = Phi((d - mu) / sigma), a normal
    lower tail. ``exponential``: log10 FAR = (d - mu) / sigma, a straight line on a log plot.
    """

    kind: str
    mu: float
    sigma: float
    far_range: tuple[float, float]
    points: int

    def transform(self, log10_far) -> np.ndarray:
        log10_far = np.asarray(log10_far, dtype=np.float64)
        return probit(10.0**log10_far) if self.kind == "gaussian" else log10_far

    def distance(self, log10_far) -> np.ndarray:
        return self.mu + self.sigma * self.transform(log10_far)

    def log10_far(self, distance) -> np.ndarray:
        z = (np.asarray(distance, dtype=np.float64) - self.mu) / self.sigma
        if self.kind == "gaussian":
            return np.vectorize(_log10_normal_cdf, otypes=[np.float64])(z)
        return z

    def describe(self) -> dict:
        formula = ("FAR = Phi((d - mu) / sigma)" if self.kind == "gaussian"
                   else "log10 FAR = (d - mu) / sigma")
        return {"kind": self.kind, "formula": formula, "mu": round(self.mu, 6),
                "sigma": round(self.sigma, 6), "fitted_far_range": list(self.far_range),
                "order_statistics_fitted": self.points}


def quantile_distance(sorted_distances: np.ndarray, far) -> np.ndarray:
    """Distance at which the empirical FAR reaches `far`; the k-th smallest of M is at k / M."""
    position = np.asarray(far, dtype=np.float64) * len(sorted_distances) - 1
    return np.interp(position, np.arange(len(sorted_distances)), sorted_distances)


def empirical_far(sorted_distances: np.ndarray, distance) -> np.ndarray:
    """Fraction of the distances that are <= distance."""
    return np.searchsorted(sorted_distances, distance, side="right") / len(sorted_distances)


def fit_tail(impostor: np.ndarray, kind: str, low_far: float, high_far: float) -> TailFit:
    """Least squares of the k-th smallest distance on transform(k / M), FAR in [low, high].

    Every order statistic in the range is a point; weights 1/k give each decade of FAR the same
    weight (a decade holds 10x more points than the next lower one).
    """
    m = len(impostor)
    k = np.arange(max(1, math.ceil(low_far * m)), int(high_far * m) + 1)
    z = TailFit(kind, 0.0, 1.0, (low_far, high_far), 0).transform(np.log10(k / m))
    slope, intercept = np.polyfit(z, impostor[k - 1], 1, w=1.0 / np.sqrt(k))
    return TailFit(kind, float(intercept), float(slope), (low_far, high_far), len(k))


def residuals(impostor: np.ndarray, fit: TailFit, top: float, bottom: float) -> list[dict]:
    """Per quarter decade: measured vs fitted distance, and the measured FAR at the fitted one."""
    rows = []
    floor = 0.5 / len(impostor)
    for log10_far in np.arange(top, bottom - 1e-9, -0.25):
        fitted = float(fit.distance(log10_far))
        measured_far = max(float(empirical_far(impostor, fitted)), floor)
        rows.append({
            "log10_far": round(float(log10_far), 2),
            "measured_distance": round(float(quantile_distance(impostor, 10.0**log10_far)), 5),
            "fit_distance": round(fitted, 5),
            "measured_log10_far_at_fit_distance": round(math.log10(measured_far), 3),
        })
    return rows


def rms_log10_far_error(rows: list[dict]) -> float:
    return float(np.sqrt(np.mean([
        (r["measured_log10_far_at_fit_distance"] - r["log10_far"]) ** 2 for r in rows])))


def bootstrap(pairs: PairDistances, identity_of_row: np.ndarray, count_by_identity: np.ndarray,
              log10_fars: list[float], distances: list[float],
              replicates: int = BOOTSTRAP_REPLICATES, seed: int = 0) -> dict:
    """Identity-level bootstrap of the distance at each FAR and of the FAR at each distance
    (5th, 50th and 95th percentiles over the replicates).

    People, not pairs, are the independent units (every pair shares its photos and people with
    thousands of others). Each replicate draws the identities with replacement; a pair weighs the
    product of both identities' multiplicities. Only the stored tail and the total are needed.
    """
    rng = np.random.default_rng(seed)
    id_a, id_b = identity_of_row[pairs.tail_a], identity_of_row[pairs.tail_b]
    n = len(count_by_identity)
    distances = [d for d in distances if d <= pairs.tail_cutoff]
    draws = {value: [] for value in log10_fars}
    fars = {d: [] for d in distances}
    for _ in range(replicates):
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        photos = w * count_by_identity
        total = (photos.sum() ** 2 - (photos**2).sum()) / 2
        cumulative = np.cumsum(w[id_a] * w[id_b]) / total
        for value in log10_fars:
            index = int(np.searchsorted(cumulative, 10.0**value))
            draws[value].append(
                pairs.tail_distance[index] if index < len(cumulative) else np.nan)
        for d in distances:
            index = int(np.searchsorted(pairs.tail_distance, d, side="right"))
            fars[d].append(cumulative[index - 1] if index else 0.0)
    return {
        "distance_at_log10_far": {
            f"{value:.2f}": [round(float(np.nanpercentile(v, q)), 4) for q in (5, 50, 95)]
            for value, v in draws.items()
        },
        "far_at_distance": {
            f"{d:.5f}": [float(f"{np.percentile(v, q):.3g}") for q in (5, 50, 95)]
            for d, v in fars.items()
        },
    }


def knot_table(impostor: np.ndarray, limit_log10_far: float, fit: TailFit) -> dict:
    """Monotone knots (distance, log10 FAR): empirical quantiles down to the measured limit, the
    tail model below it, shifted in distance to start at the last measured knot (continuity)."""
    measured = [0.0] + [math.log10(p) for p in (0.999, 0.99, 0.97, 0.95, 0.9)]
    value = -0.1
    while value > limit_log10_far + 1e-9:
        measured.append(round(value, 4))
        value -= KNOT_STEP_DECADES
    measured = np.array(sorted(set(measured + [limit_log10_far])))
    measured_d = quantile_distance(impostor, 10.0**measured)
    measured_d[-1] = impostor[-1]  # FAR = 1 at the largest impostor distance
    shift = float(measured_d[0] - fit.distance(limit_log10_far))
    first = math.floor(round((limit_log10_far - 0.05) * 10, 6)) / 10
    extrapolated = np.round(np.arange(TABLE_LOWEST_LOG10_FAR, first + 1e-9, 0.1), 4)
    extrapolated_d = fit.distance(extrapolated) + shift
    distances = np.concatenate([extrapolated_d, measured_d])
    log10_far = np.concatenate([extrapolated, measured])
    keep = np.concatenate([[True], np.diff(distances) > 1e-6])
    distances, log10_far = distances[keep], log10_far[keep]
    if np.any(np.diff(distances) <= 0) or np.any(np.diff(log10_far) < 0):
        raise AssertionError("the knot table is not monotone")
    return {
        "distance": [round(float(v), 6) for v in distances],
        "log10_far": [round(float(v), 4) for v in log10_far],
        "extrapolated_knots": int((log10_far < limit_log10_far - 1e-9).sum()),
        "fit_shift_at_join": round(shift, 6),
    }


def table_distance(table: dict, log10_far: float) -> float:
    return float(np.interp(log10_far, table["log10_far"], table["distance"]))


# --- the data ------------------------------------------------------------------------------------


def view2_rows(data_dir: Path) -> Iterator[tuple[str, str, bool, int]]:
    """LFW View 2 folds 1-8 as listed: (image a, image b, same person, fold)."""
    with (data_dir / "faces" / "pairs.csv").open() as stream:
        for row in csv.DictReader(stream):
            if row["subset"].startswith("lfw_view2_fold"):
                a, b = (n if n.startswith("faces/") else f"faces/{n}"
                        for n in (row["img1"], row["img2"]))
                yield a, b, row["same"] == "1", int(row["subset"][-2:])


def lfw_pairs(data_dir: Path, dataset: Dataset) -> tuple[np.ndarray, np.ndarray, int]:
    """Distances and same-person flags of the LFW View 2 pairs (folds 1-8) with both faces found."""
    row_of = {name: i for i, name in enumerate(dataset.names)}
    distances, same, missing = [], [], 0
    for a, b, is_same, _ in view2_rows(data_dir):
        if a not in row_of or b not in row_of:
            missing += 1
            continue
        difference = dataset.descriptors[row_of[a]].astype(np.float64) - dataset.descriptors[
            row_of[b]]
        distances.append(float(np.linalg.norm(difference)))
        same.append(is_same)
    return np.array(distances), np.array(same, dtype=bool), missing


def closest_impostors(pairs: PairDistances, dataset: Dataset, count: int) -> list[list]:
    return [
        [round(float(pairs.tail_distance[i]), 4), dataset.names[pairs.tail_a[i]],
         dataset.names[pairs.tail_b[i]]]
        for i in range(min(count, len(pairs.tail_distance)))
    ]


def measure_pairs(dataset: Dataset, identities: list[str]) -> tuple[PairDistances, np.ndarray,
                                                                    np.ndarray]:
    """All pair distances under the given labels, plus each row's identity index and counts."""
    names, identity_of_row = np.unique(np.array(identities), return_inverse=True)
    pairs = pair_distances(dataset.descriptors, identity_of_row, tail_cutoff=TAIL_CUTOFF)
    return pairs, identity_of_row, np.bincount(identity_of_row, minlength=len(names))


def calibrate(dataset: Dataset, data_dir: Path, corrections: dict[str, tuple[str, str]]) -> dict:
    """The calibration record (without provenance), from the descriptors."""
    started = time.perf_counter()
    identities = corrected_identities(dataset, corrections)
    pairs, identity_of_row, count_by_identity = measure_pairs(dataset, identities)
    impostor, genuine = pairs.impostor, pairs.genuine
    m = len(impostor)
    LOGGER.info("%d impostor and %d genuine pairs in %.0f s", m, len(genuine),
                time.perf_counter() - started)

    limit_far = MIN_TAIL_PAIRS / m
    limit = math.log10(limit_far)
    fits = {kind: fit_tail(impostor, kind, limit_far, FIT_TOP_FAR) for kind in TAIL_MODELS}
    checks = {}
    for kind, fit in fits.items():
        # Out-of-sample check: fit the decades above 1e-5 only, predict the ones below.
        held = fit_tail(impostor, kind, HOLDOUT_SPLIT_FAR, FIT_TOP_FAR)
        checks[kind] = {
            "fit": fits[kind].describe(),
            "residuals": residuals(impostor, fit, math.log10(FIT_TOP_FAR), limit),
            "holdout": {
                "fitted_far_range": [HOLDOUT_SPLIT_FAR, FIT_TOP_FAR],
                "predictions": residuals(impostor, held, math.log10(HOLDOUT_SPLIT_FAR) - 0.25,
                                         limit),
            },
        }
        checks[kind]["rms_log10_far_error"] = round(rms_log10_far_error(checks[kind]["residuals"]),
                                                    4)
        checks[kind]["holdout"]["rms_log10_far_error"] = round(
            rms_log10_far_error(checks[kind]["holdout"]["predictions"]), 4)
    chosen = min(TAIL_MODELS, key=lambda kind: checks[kind]["rms_log10_far_error"])
    fit = fits[chosen]
    holdout = checks[chosen]["holdout"]["predictions"]
    bias = float(np.mean([r["measured_log10_far_at_fit_distance"] - r["log10_far"]
                          for r in holdout]))
    direction = (
        "conservative: it predicts more false accepts than measured" if bias < 0
        else "optimistic: it predicts fewer false accepts than measured"
    )
    why = (
        f"{chosen}: the smaller RMS log10-FAR error over the fitted range "
        f"({checks[chosen]['rms_log10_far_error']} decades, vs "
        + ", ".join(f"{k} {checks[k]['rms_log10_far_error']}" for k in TAIL_MODELS
                    if k != chosen)
        + f"). Fitted on FAR {HOLDOUT_SPLIT_FAR:g}..{FIT_TOP_FAR:g} only, it predicts the "
        f"measured decades below {HOLDOUT_SPLIT_FAR:g} with a mean error of {bias:+.2f} "
        f"decades ({direction})."
    )
    table = knot_table(impostor, limit, fit)
    LOGGER.info("measured down to FAR %.2e; %s tail mu %.4f sigma %.4f", limit_far, fit.kind,
                fit.mu, fit.sigma)

    lfw_d, lfw_same, lfw_missing = lfw_pairs(data_dir, dataset)
    thresholds = []
    for threshold in THRESHOLDS:
        log10_far = round(3 - 10 * threshold, 6)
        d = table_distance(table, log10_far)
        accepted = int(np.searchsorted(impostor, d, side="right"))
        row = {
            "score": threshold,
            "distance": round(d, 5),
            "nominal_far": 10.0**log10_far,
            "measured": log10_far >= limit - 1e-9,
            "impostor_pairs_accepted": accepted,
            "impostor_far": float(f"{accepted / m:.4g}"),
            "tar": round(float(empirical_far(genuine, d)), 5),
            "lfw_false_accepts": int((lfw_d[~lfw_same] <= d).sum()),
            "lfw_far": round(float((lfw_d[~lfw_same] <= d).mean()), 5),
            "lfw_tar": round(float((lfw_d[lfw_same] <= d).mean()), 5),
        }
        thresholds.append(row)
    uncertainty = bootstrap(
        pairs, identity_of_row, count_by_identity, [-2.0, -3.0, -4.0, -5.0, -6.0, limit],
        [row["distance"] for row in thresholds])

    tail_identities = identity_of_row[np.concatenate([pairs.tail_a[:MIN_TAIL_PAIRS * 5],
                                                      pairs.tail_b[:MIN_TAIL_PAIRS * 5]])]
    return {
        "table": table,
        "limit_far": limit_far,
        "fits": checks,
        "chosen": chosen,
        "why": why,
        "thresholds": thresholds,
        "bootstrap": uncertainty,
        "closest": closest_impostors(pairs, dataset, CLOSEST_PAIRS_REPORTED),
        "distinct_identities_in_100_closest_impostor_pairs": int(len(set(tail_identities))),
        "counts": {
            "identities": int(len(count_by_identity)),
            "identities_with_two_or_more_photos": int((count_by_identity >= 2).sum()),
            "impostor_pairs": m,
            "genuine_pairs": int(len(genuine)),
            "impostor_distance_median": round(float(np.median(impostor)), 4),
            "genuine_distance_median": round(float(np.median(genuine)), 4),
        },
        "lfw": {
            "pairs": int(len(lfw_d)), "genuine": int(lfw_same.sum()),
            "impostor": int((~lfw_same).sum()), "pairs_not_both_in_this_set": lfw_missing,
            "impostor_distance_min": round(float(lfw_d[~lfw_same].min()), 4),
        },
        "pairs": pairs,
    }


def held_out_check(held_out: Dataset, data_dir: Path, corrections: dict[str, tuple[str, str]],
                   thresholds: list[dict]) -> dict:
    """The fitted thresholds judged on the held-out identities: per level, the impostor pairs
    accepted of all held-out impostor pairs (with the exact 95% interval, pairs taken as
    independent, and the identity bootstrap's 5-95% range, which does not), the genuine pairs
    accepted, and the LFW View 2 pairs with both photos held out."""
    identities = corrected_identities(held_out, corrections)
    pairs, identity_of_row, count_by_identity = measure_pairs(held_out, identities)
    impostor, genuine = pairs.impostor, pairs.genuine
    spread = bootstrap(pairs, identity_of_row, count_by_identity, [],
                       [row["distance"] for row in thresholds])["far_at_distance"]
    lfw_d, lfw_same, _ = lfw_pairs(data_dir, held_out)
    levels = []
    for row in thresholds:
        d, nominal = row["distance"], row["nominal_far"]
        accepted = int(np.searchsorted(impostor, d, side="right"))
        genuine_accepted = int(np.searchsorted(genuine, d, side="right"))
        low, high = clopper_pearson(accepted, len(impostor))
        levels.append({
            "score": row["score"], "distance": d, "nominal_far": nominal,
            "impostor_pairs_accepted": accepted, "impostor_pairs": len(impostor),
            "far": float(f"{accepted / len(impostor):.4g}"),
            "far_95": [float(f"{low:.3g}"), float(f"{high:.3g}")],
            "far_bootstrap_5_95": [spread[f"{d:.5f}"][0], spread[f"{d:.5f}"][2]]
            if f"{d:.5f}" in spread else None,
            "far_over_nominal": round(accepted / len(impostor) / nominal, 3),
            "genuine_pairs_accepted": genuine_accepted, "genuine_pairs": len(genuine),
            "tar": round(genuine_accepted / len(genuine), 5),
            "lfw_false_accepts": int((lfw_d[~lfw_same] <= d).sum()),
            "lfw_genuine_accepted": int((lfw_d[lfw_same] <= d).sum()),
        })
    return {
        "what": "the thresholds fitted on the fit half, judged on the held-out identities",
        "photos": len(held_out.names), "faces_not_found": held_out.missed,
        "identities": int(len(count_by_identity)),
        "lfw_view2_pairs": {"genuine": int(lfw_same.sum()), "impostor": int((~lfw_same).sum())},
        "levels": levels,
    }


def uncorrected_view(dataset: Dataset, thresholds: list[dict]) -> dict:
    """The impostor FAR at the calibrated distances had the labels been taken as they are."""
    pairs, _, _ = measure_pairs(dataset, dataset.identities)
    m = len(pairs.impostor)
    return {
        "impostor_pairs": m,
        "impostor_far_at_threshold_distances": {
            str(row["score"]): float(f"{empirical_far(pairs.impostor, row['distance']):.4g}")
            for row in thresholds
        },
        "impostor_pairs_accepted_at_threshold_distances": {
            str(row["score"]): int(np.searchsorted(pairs.impostor, row["distance"], side="right"))
            for row in thresholds
        },
        "closest_impostor_pairs": closest_impostors(pairs, dataset, 12),
    }


def record(dataset: Dataset, result: dict, uncorrected: dict, held_out: dict,
           hashes: dict[str, str], command: str, wall_s: float,
           corrections: dict[str, tuple[str, str]]) -> dict:
    table = result["table"]
    limit = math.log10(result["limit_far"])
    fit = result["fits"][result["chosen"]]["fit"]
    return {
        "model": FACE_EMBEDDER.name,
        "what": (
            "FAR(d): the fraction of impostor pairs (photos of two different people) whose "
            "descriptor distance is <= d, for the server's pipeline. The server's "
            "verification_score = clip((3 - log10 FAR(d)) / 10, 0, 1); see "
            "model_repository/calibration/README.md."
        ),
        "distance": (
            "Euclidean distance between the mirror-averaged 128-D descriptors of the face "
            "nearest the photo's centre (frontend.service.faces.FacePipeline.main_face); "
            "smaller is more similar"
        ),
        "knots": {
            "distance": table["distance"],
            "log10_far": table["log10_far"],
            "interpolation": "log10 FAR linear between knots; end segments extended beyond",
        },
        "measured": {
            "down_to_far": float(f"{result['limit_far']:.4g}"),
            "down_to_log10_far": round(limit, 4),
            "rule": f"the FAR that {MIN_TAIL_PAIRS} impostor pairs reach",
            "distance_range": [table["distance"][table["extrapolated_knots"]],
                               table["distance"][-1]],
            "knots": (f"empirical quantiles: FAR = 1 at the largest impostor distance, then every "
                      f"{KNOT_STEP_DECADES} decade from FAR 0.1 down to the limit"),
        },
        "extrapolated": {
            "log10_far_range": [TABLE_LOWEST_LOG10_FAR, round(limit, 4)],
            "distance_range": [table["distance"][0],
                               table["distance"][table["extrapolated_knots"]]],
            "knots": table["extrapolated_knots"],
            "model": fit,
            "shift_at_join": table["fit_shift_at_join"],
            "why": result["why"],
        },
        "tail_fits": result["fits"],
        "thresholds": result["thresholds"],
        "bootstrap": {
            "percentiles": [5, 50, 95],
            "replicates": BOOTSTRAP_REPLICATES,
            "unit": "identities drawn with replacement",
            **result["bootstrap"],
        },
        "closest_impostor_pairs": result["closest"],
        "distinct_identities_in_100_closest_impostor_pairs":
            result["distinct_identities_in_100_closest_impostor_pairs"],
        "label_corrections": {
            key: {"identity": value[0], "why": value[1]} for key, value in corrections.items()
        },
        "without_label_corrections": uncorrected,
        "held_out": held_out,
        "data": {
            "source": "../shared/data/faces/<Identity>/* (LFW deep-funneled plus other sources)",
            "half": "fit: the identities whose corrected name's SHA-256 starts with an even "
                    "byte (benchmarks.split.half_of); the others are held out",
            "photos": len(dataset.names) + len(dataset.missed),
            "photos_with_a_face": len(dataset.names),
            "faces_not_found": dataset.missed,
            **result["counts"],
        },
        "lfw_view2_folds_1_8": result["lfw"],
        "onnx_sha256": hashes,
        "pipeline": (
            "cv2.imread(IMREAD_COLOR) -> preprocessing.detection.letterbox to detector_size "
            "-> face_detector (face_detector_320 for photos <= 320 px with --small-detector) "
            "(ONNX Runtime, CPU) -> faces_from_detections(score >= "
            f"{DEFAULT_SCORE_THRESHOLD}) -> preprocessing.detection.nearest_to_centre -> "
            "face_chips(mirror=True) -> face_embedder -> mean of chip and mirror descriptors "
            "(frontend.service.faces.FacePipeline.main_face over OnnxModels)"
        ),
        "command": command,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": round(wall_s, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cache", type=Path, default=None,
                        help="npz of descriptors to reuse (written when absent or stale)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads")
    parser.add_argument("--small-detector", action="store_true",
                        help="the pipeline of FACEGATE_SMALL_DETECTOR=true (photos <= 320 px on "
                             "the 320 detector); give --out elsewhere to keep the shipped file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    started = time.perf_counter()
    hashes = model_hashes(args.small_detector)
    dataset = load_or_embed(args.data_dir, args.cache, hashes, args.threads, args.small_detector)
    LOGGER.info("%d photos with a face, %d without", len(dataset.names), len(dataset.missed))
    corrections = {
        key: value for key, value in LABEL_CORRECTIONS.items()
        if key in dataset.names or key in dataset.identities
    }
    halves = split_halves(dataset, corrections)
    fit = halves["fit"]
    result = calibrate(fit, args.data_dir, corrections)
    uncorrected = uncorrected_view(fit, result["thresholds"])
    held_out = held_out_check(halves["held_out"], args.data_dir, corrections,
                              result["thresholds"])
    command = " ".join(["python -m benchmarks.calibrate"] +
                       [shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)])
    output = record(fit, result, uncorrected, held_out, hashes, command,
                    time.perf_counter() - started, corrections)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(output, indent=1) + "\n")
    for row in result["thresholds"]:
        LOGGER.info(
            "score %.1f: d %.4f nominal FAR %.0e measured %.3g (%d pairs) TAR %.4f | LFW FAR %.4f "
            "TAR %.4f", row["score"], row["distance"], row["nominal_far"], row["impostor_far"],
            row["impostor_pairs_accepted"], row["tar"], row["lfw_far"], row["lfw_tar"])
    for row in held_out["levels"]:
        LOGGER.info(
            "held out, score %.1f: FAR %.3g (%d of %d pairs, %.2fx nominal) TAR %.4f (%d of %d)",
            row["score"], row["far"], row["impostor_pairs_accepted"], row["impostor_pairs"],
            row["far_over_nominal"], row["tar"], row["genuine_pairs_accepted"],
            row["genuine_pairs"])
    LOGGER.info("wrote %s in %.0f s", args.out, time.perf_counter() - started)


if __name__ == "__main__":
    main(sys.argv[1:])
