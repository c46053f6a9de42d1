"""Face descriptor candidates against the shipped dlib descriptor, on the labelled photos.

    python -m benchmarks.descriptors_eval [--data-dir ../shared/data]
        [--cache-dir ~/.cache/facegate/descriptors] [--threads 2] [--only NAME ...]

The study behind "the descriptor stays dlib" (model_repository/tfjs_onnx.py converts the
candidates; its RECIPES say how each is fed), made reproducible:

1. **Faces**: every labelled photo (``faces/<Identity>/*``) through the server's detector in
   process (`FacePipeline.detect` over `OnnxModels`), the face nearest the centre (as the
   study did: no usability rule), its five landmarks. Identities corrected by
   `benchmarks.calibrate.LABEL_CORRECTIONS`; halves A / B by the first bit of the SHA-1 of the
   corrected identity (the study's split).
2. **Candidates**: ``dlib`` (the shipped ``face_embedder`` ONNX on the server's own 150 px chip,
   `preprocessing.alignment.align_chip`), ``mobilefacenet_128d`` (the shared MobileFaceNet ONNX,
   no licence, made batchable by `make_mobilefacenet_batchable`), and the TF.js models of
   ``human_models_3.0.4`` converted by `build_tfjs_descriptor`: ``mobileface``, ``faceres``
   (``mobilefacenet`` from TF.js is degenerate, RECIPES, and is left out). Each TF.js /
   MobileFaceNet chip is a least-squares similarity warp onto the ArcFace template at the
   recipe's size. Every descriptor is the chip's and its mirror's (``:plain``: the chip alone).
3. **Scores**: ``dlib_euclid`` is the server's (minus the Euclidean distance of dlib's raw
   mirror-averaged descriptors); every other is the cosine of the L2-normalised mirror average
   (``faceres:centred``: minus the mean descriptor first). Fusion ``dlib + mobilefacenet_128d``:
   z-normalised weighted sum (z-norm from the fit half's LFW impostors; weight on a 0.05 grid
   maximising 0.5 TAR@1e-4 on the fit half's LFW pairs + 0.5 TAR@1e-3 on its other-source pairs),
   fitted on one half and measured on the other.
4. **Tables**: LFW View 2 folds 1-8 accuracy (threshold chosen on the other 7 folds); TAR at
   FAR 1e-3 / 1e-4 / 1e-5 on all pairs within LFW half A and half B (genuine and impostor pair
   counts given; a TAR is given only where at least 10 false accepts are allowed); TAR at FAR
   1e-3 on the other sources' pairs (all, and per source), and cost per chip (ONNX Runtime,
   batch 16, the least of 15 runs).

Descriptors are cached under ``--cache-dir`` keyed by the ONNX file's SHA-256 and the faces.
Writes ``benchmarks/results/descriptors.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime
import hashlib
import json
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from benchmarks.calibrate import DEFAULT_DATA_DIR, LABEL_CORRECTIONS, labelled_photos, view2_rows
from benchmarks.far_conditions import machine
from benchmarks.paths import REPO_ROOT
from frontend.inference.onnx import OnnxModels
from frontend.service.faces import FacePipeline
from frontend.service.stages import Stages
from model_repository.specs import DETECTORS, FACE_EMBEDDER, onnx_file
from model_repository.tfjs_onnx import (
    ARCFACE_TEMPLATE_112,
    RECIPES,
    build_mobilefacenet_onnx,
    build_tfjs_descriptor,
)
from model_repository.weights import default_weights_dir, sha256_of
from preprocessing.alignment import CHIP_TEMPLATE, similarity_transform
from preprocessing.detection import nearest_to_centre

LOGGER = logging.getLogger(__name__)
DEFAULT_CACHE = Path.home() / ".cache" / "facegate" / "descriptors"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results"
SOURCES = ("deepface", "facerec", "faceapi", "glint360k", "dlib", "compreface")
FARS = (1e-3, 1e-4, 1e-5)
MIN_FALSE_ACCEPTS = 10
FEMALE = {"Angelina_Jolie", "BBT_Amy", "BBT_Bernadette", "BBT_Penny", "CompreFace_PersonA",
          "Deepface_P02", "Deepface_P03", "Deepface_P13", "Drew_Barrymore", "Jennifer_Aniston",
          "Jessica_Alba", "Kate_Winslet", "Keira_Knightley", "Tina_Fey", "Victoria_Beckham"}
"""The other sources' women (the study's list, by eye); everyone else there is a man."""
CANDIDATES = ("dlib", "mobilefacenet_128d", "mobileface", "faceres")
SCORES = ("dlib_euclid", "dlib", "dlib:plain", "mobilefacenet_128d", "mobilefacenet_128d:plain",
          "mobileface", "faceres", "faceres:centred")
FUSION = ("dlib", "mobilefacenet_128d")


@dataclass(frozen=True)
class Candidate:
    name: str
    model: bytes | str  # serialized ONNX, or a path
    chip_size: int
    template: np.ndarray


def candidate(name: str) -> Candidate:
    if name == "dlib":
        return Candidate(name, str(onnx_file(FACE_EMBEDDER)), 150, CHIP_TEMPLATE)
    recipe = RECIPES[name]
    env = os.environ.get("FACEGATE_WEIGHTS_DIR")
    models = Path(env) if env else default_weights_dir()
    if models is None:
        raise SystemExit("no weights directory: set FACEGATE_WEIGHTS_DIR (../shared/models)")
    if recipe.json_name is None:
        model = build_mobilefacenet_onnx(models / "mobilefacenet_128d" / "mobilefacenet.onnx",
                                         recipe.normalisation)
    else:
        model = build_tfjs_descriptor(models / "human_models_3.0.4" / recipe.json_name,
                                      recipe.output, recipe.normalisation)
    size = recipe.chip_size
    return Candidate(name, model.SerializeToString(), size, ARCFACE_TEMPLATE_112 * size / 112.0)


def session(model: bytes | str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def chip_pair(image: np.ndarray, landmarks: np.ndarray, template: np.ndarray, size: int):
    matrix = similarity_transform(landmarks, template)
    chip = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    chip = cv2.cvtColor(chip, cv2.COLOR_BGR2RGB)
    return chip, chip[:, ::-1]


# --- faces and descriptors, cached ---------------------------------------------------------------


def corrected(name: str) -> str:
    folder = Path(name).parent.name
    fix = LABEL_CORRECTIONS.get(name) or LABEL_CORRECTIONS.get(folder)
    return fix[0] if fix else folder


def source_of(name: str) -> str:
    prefix = Path(name).name.split("_")[0]
    return prefix if prefix in SOURCES else "lfw"


def landmarks_of(data_dir: Path, cache_dir: Path,
                 threads: int) -> tuple[list[str], np.ndarray, list[str]]:
    names = labelled_photos(data_dir)
    detector = next(spec for spec in DETECTORS if spec.inputs[0].dims[0] == 640)
    key = hashlib.sha256(json.dumps([sha256_of(onnx_file(detector)), names]).encode()).hexdigest()
    path = cache_dir / "landmarks.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) == key:
                return ([str(n) for n in stored["names"]], stored["landmarks"],
                        [str(n) for n in stored["missed"]])

    async def run() -> list[np.ndarray | None]:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            pipeline = FacePipeline(OnnxModels(executor=pool, threads=threads, spin=False),
                                    Stages(pool))
            limit = asyncio.Semaphore(4)

            async def one(name: str) -> np.ndarray | None:
                async with limit:
                    image = await pipeline.stages.cpu(cv2.imread, str(data_dir / name))
                    faces = [] if image is None else await pipeline.detect(image)
                    return nearest_to_centre(faces, image.shape).landmarks if faces else None

            return await asyncio.gather(*(one(n) for n in names))

    started = time.perf_counter()
    found = asyncio.run(run())
    kept = [n for n, f in zip(names, found, strict=True) if f is not None]
    missed = [n for n, f in zip(names, found, strict=True) if f is None]
    landmarks = np.stack([f for f in found if f is not None]).astype(np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, key=key, names=np.array(kept), landmarks=landmarks, missed=np.array(missed, str))
    LOGGER.info("faces of %d photos in %.0f s (%d without)", len(names),
                time.perf_counter() - started, len(missed))
    return kept, landmarks, missed


def descriptors_of(data_dir: Path, cache_dir: Path, names: list[str], landmarks: np.ndarray,
                   item: Candidate, threads: int, batch: int = 16) -> dict:
    digest = (sha256_of(Path(item.model)) if isinstance(item.model, str)
              else hashlib.sha256(item.model).hexdigest())
    key = hashlib.sha256(json.dumps([digest, names, hashlib.sha256(landmarks.tobytes()).hexdigest(),
                                     item.chip_size, item.template.tolist()]).encode()).hexdigest()
    path = cache_dir / f"{item.name}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) == key:
                return {k: stored[k] for k in stored.files}
    sess = session(item.model, threads)
    feed = sess.get_inputs()[0].name
    probe = np.random.default_rng(0).integers(0, 256, (batch, item.chip_size, item.chip_size, 3),
                                              dtype=np.uint8)
    for _ in range(3):
        sess.run(None, {feed: probe})
    times = []
    for _ in range(15):
        started = time.perf_counter()
        sess.run(None, {feed: probe})
        times.append(time.perf_counter() - started)
    original, mirror = [], []
    started = time.perf_counter()
    for first in range(0, len(names), batch):
        chips = []
        for name, points in zip(names[first:first + batch], landmarks[first:first + batch],
                                strict=True):
            chips += chip_pair(cv2.imread(str(data_dir / name)), points, item.template,
                               item.chip_size)
        out = sess.run(None, {feed: np.ascontiguousarray(np.stack(chips))})[0]
        original.append(out[0::2])
        mirror.append(out[1::2])
    stored = {"key": np.array(key), "original": np.concatenate(original).astype(np.float32),
              "mirror": np.concatenate(mirror).astype(np.float32),
              "ms_per_chip": np.array(1000 * min(times) / batch),
              "ms_per_chip_median": np.array(1000 * float(np.median(times)) / batch),
              "onnx_sha256": np.array(digest)}
    np.savez(path, **stored)
    LOGGER.info("%s: %d photos in %.0f s, %.2f ms per chip", item.name, len(names),
                time.perf_counter() - started, stored["ms_per_chip"])
    return stored


# --- scores and metrics --------------------------------------------------------------------------


def unit(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class Scorer:
    """Pair scores of one descriptor variant (higher: more alike)."""

    def __init__(self, key: str, stored: dict) -> None:
        self.key = key
        base, _, mode = key.partition(":")
        self.chips = 1 if mode == "plain" else 2
        self.ms_per_chip = float(stored["ms_per_chip"])
        if base == "dlib_euclid":
            self.euclid = True
            self.vectors = ((stored["original"] + stored["mirror"]) / 2).astype(np.float64)
            self.squares = (self.vectors**2).sum(axis=1)
        else:
            self.euclid = False
            o, m = unit(stored["original"]), unit(stored["mirror"])
            vectors = o if mode == "plain" else unit(o + m)
            if mode == "centred":
                vectors = unit(vectors - vectors.mean(axis=0))
            self.vectors = vectors.astype(np.float32)

    def block(self, a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        """Scores of a x b (flattened), or of the upper triangle of a x a."""
        other = a if b is None else b
        if self.euclid:
            d2 = self.squares[a][:, None] + self.squares[other][None] - 2 * (
                self.vectors[a] @ self.vectors[other].T)
            scores = -np.sqrt(np.maximum(d2, 0.0))
        else:
            scores = self.vectors[a] @ self.vectors[other].T
        if b is None:
            return scores[np.triu_indices(len(a), 1)].astype(np.float32)
        return scores.ravel().astype(np.float32)

    def pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        if self.euclid:
            return -np.linalg.norm(self.vectors[i] - self.vectors[j], axis=1)
        return (self.vectors[i].astype(np.float64) * self.vectors[j]).sum(axis=1)


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> float | None:
    """TAR at the score that exactly floor(far * M) impostors exceed; None under 10 allowed."""
    m = len(impostor)
    k = int(np.floor(far * m))
    if k < MIN_FALSE_ACCEPTS or not len(genuine):
        return None
    threshold = np.partition(impostor, m - k - 1)[m - k - 1]
    return round(float((genuine > threshold).mean()), 4)


def eer(genuine: np.ndarray, impostor: np.ndarray) -> float | None:
    if not len(genuine) or not len(impostor):
        return None
    cuts = np.unique(np.quantile(np.concatenate([genuine, impostor]), np.linspace(0, 1, 2001)))
    frr = np.searchsorted(np.sort(genuine), cuts, side="left") / len(genuine)
    far = 1 - np.searchsorted(np.sort(impostor), cuts, side="left") / len(impostor)
    j = int(np.argmin(np.abs(frr - far)))
    return round(float((frr[j] + far[j]) / 2), 4)


def metrics(scores: np.ndarray, same: np.ndarray) -> dict:
    genuine, impostor = scores[same].astype(np.float64), scores[~same].astype(np.float64)
    out = {"genuine_pairs": int(len(genuine)), "impostor_pairs": int(len(impostor))}
    for far in (1e-2, *FARS):
        out[f"tar@{far:g}"] = tar_at_far(genuine, impostor, far)
    out["eer"] = eer(genuine, impostor)
    return out


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    order = np.argsort(scores)
    s, y = scores[order], same[order].astype(np.int64)
    cuts = np.concatenate([[s[0] - 1], (s[1:] + s[:-1]) / 2, [s[-1] + 1]])
    genuine_below = np.concatenate([[0], np.cumsum(y)])
    impostor_below = np.concatenate([[0], np.cumsum(1 - y)])
    return float(cuts[int(np.argmax(y.sum() - genuine_below + impostor_below))])


def view2_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    accuracies = []
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        threshold = best_threshold(scores[train], same[train])
        accuracies.append(float(((scores[test] > threshold) == same[test]).mean()))
    return {"accuracy": round(100 * float(np.mean(accuracies)), 2),
            "std": round(100 * float(np.std(accuracies)), 2)}


@dataclass
class Photos:
    names: list[str]
    identities: np.ndarray
    sources: np.ndarray
    halves: np.ndarray

    def rows(self, lfw: bool, half: int | None = None) -> np.ndarray:
        mask = (self.sources == "lfw") == lfw
        if half is not None:
            mask &= self.halves == half
        return np.flatnonzero(mask)

    def labels(self, a: np.ndarray, b: np.ndarray | None = None):
        if b is None:
            i, j = np.triu_indices(len(a), 1)
            return self.identities[a][i] == self.identities[a][j], a[i], a[j]
        aa, bb = np.meshgrid(a, b, indexing="ij")
        return (self.identities[aa] == self.identities[bb]).ravel(), aa.ravel(), bb.ravel()


def view2_pairs(data_dir: Path, photos: Photos):
    index = {n: k for k, n in enumerate(photos.names)}
    rows = [(index[a], index[b], same, fold) for a, b, same, fold in view2_rows(data_dir)
            if a in index and b in index]
    i, j, same, fold = (np.array(v) for v in zip(*rows, strict=True))
    return i, j, same, fold


def non_lfw_subsets(photos: Photos, i: np.ndarray, j: np.ndarray, same: np.ndarray) -> dict:
    si, sj = photos.sources[i], photos.sources[j]
    out = {f"source={s}": (same & (si == s) & (sj == s)) | (~same & ((si == s) | (sj == s)))
           for s in SOURCES}
    fi = np.isin(photos.identities[i], list(FEMALE))
    fj = np.isin(photos.identities[j], list(FEMALE))
    out["female"] = (same & fi) | (~same & (fi | fj))
    out["male"] = (same & ~fi) | (~same & (~fi | ~fj))
    return out


def single(scorer: Scorer, photos: Photos, view2) -> dict:
    i, j, same, folds = view2
    out = {"score": scorer.key, "ms_per_face": round(scorer.ms_per_chip * scorer.chips, 2),
           "view2": view2_accuracy(scorer.pairs(i, j), same, folds)}
    for half, name in ((0, "lfw_A"), (1, "lfw_B")):
        rows = photos.rows(True, half)
        out[name] = metrics(scorer.block(rows), photos.labels(rows)[0])
    rows = photos.rows(False)
    scores = scorer.block(rows)
    labels, a, b = photos.labels(rows)
    out["non_lfw"] = metrics(scores, labels)
    out["non_lfw_subsets"] = {k: metrics(scores[m], labels[m])
                              for k, m in non_lfw_subsets(photos, a, b, labels).items()}
    return out


def fusion(scorers: list[Scorer], photos: Photos, view2, references: list[Scorer]) -> dict:
    """z-normalised weighted sum, fitted on one half and measured on the other (`references`:
    single scores shown beside it on the same pairs)."""
    def params(scores, same):
        impostor = scores[~same].astype(np.float64)
        return float(impostor.mean()), float(impostor.std())

    def fuse(parts, norm, weights):
        return sum(w * (s - mu) / sd for s, (mu, sd), w in zip(parts, norm, weights, strict=True))

    grid = [(round(1 - a, 2), round(a, 2)) for a in np.arange(0, 1 + 1e-9, 0.05)]
    out = {"fusion": " + ".join(s.key for s in scorers),
           "ms_per_face": round(sum(s.ms_per_chip * s.chips for s in scorers), 2), "fits": []}
    non_all = photos.rows(False)
    non_scores = [s.block(non_all) for s in scorers]
    non_labels, na, nb = photos.labels(non_all)
    crossed = np.full(len(non_labels), np.nan)
    for fit_half in (0, 1):
        test_half = 1 - fit_half
        fit_lfw, fit_non = photos.rows(True, fit_half), photos.rows(False, fit_half)
        lfw_scores = [s.block(fit_lfw) for s in scorers]
        lfw_same = photos.labels(fit_lfw)[0]
        non_fit_scores = [s.block(fit_non) for s in scorers]
        non_same = photos.labels(fit_non)[0]
        norm = [params(s, lfw_same) for s in lfw_scores]
        best = None
        for weights in grid:
            fl, fn = fuse(lfw_scores, norm, weights), fuse(non_fit_scores, norm, weights)
            objective = (0.5 * (tar_at_far(fl[lfw_same], fl[~lfw_same], 1e-4) or 0)
                         + 0.5 * (tar_at_far(fn[non_same], fn[~non_same], 1e-3) or 0))
            if best is None or objective > best[0] + 1e-12:
                best = (objective, weights)
        test = photos.rows(True, test_half)
        fused = fuse([s.block(test) for s in scorers], norm, best[1])
        out["fits"].append({
            "fitted_on": "AB"[fit_half], "weights": list(best[1]),
            "znorm": [{"mean": round(m, 6), "std": round(sd, 6)} for m, sd in norm],
            f"lfw_{'AB'[test_half]}": metrics(fused, photos.labels(test)[0]),
        })
        mine = (photos.halves[na] == test_half) & (photos.halves[nb] == test_half)
        crossed[mine] = fuse(non_scores, norm, best[1])[mine]
    within = ~np.isnan(crossed)
    out["non_lfw_within_half_crossfitted"] = metrics(crossed[within], non_labels[within])
    out["non_lfw_within_half_subsets"] = {
        k: metrics(crossed[m & within], non_labels[m & within])
        for k, m in non_lfw_subsets(photos, na, nb, non_labels).items()}
    i, j, same, folds = view2
    parts = [s.pairs(i, j) for s in scorers]
    accuracies = []
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        norm = [params(p[train], same[train]) for p in parts]
        best = None
        for weights in grid:
            fused = fuse(parts, norm, weights)
            threshold = best_threshold(fused[train], same[train])
            accuracy = float(((fused[train] > threshold) == same[train]).mean())
            if best is None or accuracy > best[0] + 1e-12:
                best = (accuracy, weights, threshold)
        fused = fuse(parts, norm, best[1])
        accuracies.append(float(((fused[test] > best[2]) == same[test]).mean()))
    out["view2"] = {"accuracy": round(100 * float(np.mean(accuracies)), 2),
                    "std": round(100 * float(np.std(accuracies)), 2)}
    # the same within-half other-source pairs for the single scores, for a like comparison
    shown = [*scorers, *references]
    shown_scores = [*non_scores, *(s.block(non_all) for s in references)]
    out["singles_non_lfw_within_half"] = {
        s.key: metrics(sc[within], non_labels[within])
        for s, sc in zip(shown, shown_scores, strict=True)}
    subsets = non_lfw_subsets(photos, na, nb, non_labels)
    out["singles_non_lfw_within_half_subsets"] = {
        s.key: {k: metrics(sc[m & within], non_labels[m & within]) for k, m in subsets.items()}
        for s, sc in zip(shown, shown_scores, strict=True)}
    return out


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def markdown(result: dict) -> str:
    lines = ["# Face descriptors against dlib", "",
             f"`{result['command']}` on {result['machine']}; {result['created']}; "
             f"{result['wall_s']:.0f} s (descriptors from the cache where it holds them; the "
             "first run, embedding every candidate, took 20 min here).", "",
             result["what"], "",
             "| score | ms/face | View2 1-8 acc | LFW-A TAR@1e-3 / 1e-4 / 1e-5 | "
             "LFW-B TAR@1e-3 / 1e-4 / 1e-5 | "
             "non-LFW TAR@1e-3 (EER) | female / male @1e-3 | "
             + " | ".join(f"{s} @1e-2 / 1e-3" for s in SOURCES) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * len(SOURCES)]
    for r in result["singles"]:
        subs = r["non_lfw_subsets"]
        lines.append(
            f"| {r['score']} | {r['ms_per_face']} | "
            f"{r['view2']['accuracy']} ± {r['view2']['std']} | "
            + " / ".join(_pct(r["lfw_A"][f"tar@{f:g}"]) for f in FARS) + " | "
            + " / ".join(_pct(r["lfw_B"][f"tar@{f:g}"]) for f in FARS) + " | "
            + f"{_pct(r['non_lfw']['tar@0.001'])} ({_pct(r['non_lfw']['eer'])}) | "
            + f"{_pct(subs['female']['tar@0.001'])} / {_pct(subs['male']['tar@0.001'])} | "
            + " | ".join(f"{_pct(subs[f'source={s}']['tar@0.01'])} / "
                         f"{_pct(subs[f'source={s}']['tar@0.001'])}" for s in SOURCES) + " |")
    first = result["singles"][0]
    lines += ["", "Pairs: LFW-A " + f"{first['lfw_A']['genuine_pairs']} genuine / "
              f"{first['lfw_A']['impostor_pairs']} impostor; "
              f"LFW-B {first['lfw_B']['genuine_pairs']}"
              f" / {first['lfw_B']['impostor_pairs']}; non-LFW {first['non_lfw']['genuine_pairs']}"
              f" / {first['non_lfw']['impostor_pairs']}; per subset: " + "; ".join(
                  f"{k} {v['genuine_pairs']} / {v['impostor_pairs']}"
                  for k, v in first["non_lfw_subsets"].items()) + ". `-`: fewer than "
              f"{MIN_FALSE_ACCEPTS} false accepts allowed at that FAR, or no genuine pair "
              "(TAR@1e-3 on a source needs 10,000 impostor pairs involving it).", ""]
    for f in result["fusions"]:
        lines += [f"## Fusion {f['fusion']} ({f['ms_per_face']} ms/face)", "",
                  "View2 folds 1-8 (weights fitted on the other folds): "
                  f"{f['view2']['accuracy']} ± "
                  f"{f['view2']['std']}.", "",
                  "| fitted on | weights | measured on | TAR@1e-3 / 1e-4 / 1e-5 | "
                  "pairs (genuine / impostor) |",
                  "|---|---|---|---|---|"]
        for fit in f["fits"]:
            key = next(k for k in fit if k.startswith("lfw_"))
            m = fit[key]
            lines.append(f"| {fit['fitted_on']} | {fit['weights']} | {key} | "
                         + " / ".join(_pct(m[f"tar@{x:g}"]) for x in FARS)
                         + f" | {m['genuine_pairs']} / {m['impostor_pairs']} |")
        lines += ["", "Other sources, within-half pairs (the fusion cross-fitted: weights from "
                  "the other half), TAR@1e-3 (EER):", "",
                  "| score | all | female | male | pairs |", "|---|---|---|---|---|"]
        rows = [(f["fusion"], f["non_lfw_within_half_crossfitted"],
                 f["non_lfw_within_half_subsets"])]
        for key, m in f["singles_non_lfw_within_half"].items():
            rows.append((key, m, f["singles_non_lfw_within_half_subsets"][key]))
        for key, m, subs in rows:
            female = _pct(subs["female"]["tar@0.001"]) if subs else "-"
            male = _pct(subs["male"]["tar@0.001"]) if subs else "-"
            lines.append(f"| {key} | {_pct(m['tar@0.001'])} ({_pct(m['eer'])}) | {female} | "
                         f"{male} | "
                         f"{m['genuine_pairs']} / {m['impostor_pairs']} |")
        lines.append("")
    lines += ["## Not measured", ""] + [f"- {x}" for x in result["not_measured"]] + [""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    started = time.perf_counter()
    names, landmarks, missed = landmarks_of(args.data_dir, args.cache_dir, args.threads)
    identities = np.array([corrected(n) for n in names])
    photos = Photos(names, identities, np.array([source_of(n) for n in names]),
                    np.array([hashlib.sha1(i.encode()).digest()[0] & 1 for i in identities]))
    stored = {}
    for name in CANDIDATES:
        stored[name] = descriptors_of(args.data_dir, args.cache_dir, names, landmarks,
                                      candidate(name), args.threads)
    view2 = view2_pairs(args.data_dir, photos)
    scorers = {key: Scorer(key, stored[key.partition(":")[0].replace("dlib_euclid", "dlib")])
               for key in SCORES}
    singles = []
    for key in SCORES:
        singles.append(single(scorers[key], photos, view2))
        LOGGER.info("%s: View2 %.2f", key, singles[-1]["view2"]["accuracy"])
    fusions = [fusion([scorers[k] for k in FUSION], photos, view2, [scorers["dlib_euclid"]])]
    command = " ".join(["python -m benchmarks.descriptors_eval"] +
                       [shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)])
    result = {
        "command": command, "machine": machine(),
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": round(time.perf_counter() - started, 1),
        "what": ("Scores as in the module docstring. TAR in %; LFW-A / LFW-B: all pairs within "
                 "each LFW identity half; non-LFW: all pairs of the other sources' photos "
                 "(genuine within a source subset, impostors involving it). ms/face: ONNX "
                 f"Runtime, {args.threads} threads, batch 16, the least of 15 runs, times the "
                 "chips per face (2 with the mirror)."),
        "photos": len(names) + len(missed), "faces_not_found": missed,
        "identities": {"A": int(len(set(identities[photos.halves == 0]))),
                       "B": int(len(set(identities[photos.halves == 1])))},
        "onnx_sha256": {k: str(v["onnx_sha256"]) for k, v in stored.items()},
        "recipes": {k: RECIPES[k].note for k in CANDIDATES if k in RECIPES},
        "singles": singles, "fusions": fusions,
        "not_measured": [
            "TF.js mobilefacenet (degenerate as shipped, RECIPES).",
            "Licences: the shared MobileFaceNet has none and unverified provenance, so it is a "
            "comparator, not a shippable default, alone or fused.",
            "Conditions other than the photos as they are (benchmarks.far_conditions does that "
            "for dlib).",
            "Per-descriptor preprocessing searches (RECIPES records their outcome).",
        ],
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "descriptors.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out_dir / "descriptors.md").write_text(markdown(result))
    LOGGER.info("wrote %s in %.0f s", args.out_dir / "descriptors.md",
                time.perf_counter() - started)


if __name__ == "__main__":
    main(sys.argv[1:])
