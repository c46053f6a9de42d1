"""Does the score's FAR promise hold on real photos? Impostor FAR per score level and condition.

    python -m benchmarks.far_conditions [--data-dir ../shared/data] [--photos-per-half 1400]
        [--cache-dir ~/.cache/facegate/far_conditions] [--threads 1]

The shipped calibration (`model_repository/calibration/face_embedder.json`) was measured on
the labelled photos as they are: mostly LFW, deep-funneled 250x250 JPEGs with faces of about
95 px. Clients send other photos. This evaluation builds condition variants of the labelled
photos in memory with OpenCV and measures, per condition and score level, the false-accept
rate of the server's own score against the level's nominal FAR (score 0.6/0.7/0.8/0.9 promise
1e-3/1e-4/1e-5/1e-6):

1. **Identities** (folder names with `benchmarks.calibrate.LABEL_CORRECTIONS`) are split into a
   *fit* half and a *held-out* half by a hash of the corrected name (`half_of`). Anything fitted
   (`SizeBands`, below) sees the fit half only; the report is on the held-out half.
2. **Conditions** (`CONDITIONS`): the original photo; downscaled so that the face box is 40, 60
   or 80 px wide (`box40` ..), and the same downscaled then upscaled back to the original size
   (`box40_up` ..: a soft photo of normal size); JPEG re-encoded at quality 30, 50, 95; upscaled
   2x. Plus faces cut from group photos: `grid_crop` (six labelled photos of different people
   pasted into a 3x2 grid at a 60 px face box, JPEG 80, each face cut out with a box-wide
   margin, so that its neighbours' edges are in the crop) and `multi_crop` (every usable face of
   the shared unlabelled group photos, `../shared/data/multi`, cut out the same way: impostors
   only; files that may show labelled people are left out, `MULTI_EXCLUDED`).
3. **The server's pipeline** (`FacePipeline` over `OnnxModels`, the built ONNX files): detect,
   `preprocessing.usability` (a face the server refuses is counted as refused, never compared),
   the usable face nearest the centre (it must be the photo's subject, the face found in the
   original), chip + mirror, embedder. Scores are `ScoreCalibration`'s, as `compare` computes
   them (vectorised over pairs; checked against `compare` on a sample).
4. **Pairs** on the held-out half: within each condition (both photos in it) and *mixed*
   (condition X against the original: a reference photo against a small or compressed one).
   Impostors are pairs of different identities, genuines pairs of different photos of one.
5. **Report** per condition and level: impostor pairs, accepted ones, measured FAR, its 95%
   Clopper-Pearson interval and an identity-bootstrap 95% interval, the ratio to nominal, TAR
   and genuine pairs. A level is *judged* only where at least `ENOUGH_EXPECTED` false accepts
   are expected at the nominal FAR.

Descriptors are cached under ``--cache-dir`` keyed by the ONNX files' SHA-256, the photo list
and the condition definitions, so the statistics re-run in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime
import hashlib
import json
import logging
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from benchmarks.calibrate import (
    DEFAULT_DATA_DIR,
    LABEL_CORRECTIONS,
    labelled_photos,
    model_hashes,
)
from benchmarks.paths import REPO_ROOT
from benchmarks.split import half_of
from benchmarks.stats import clopper_pearson
from frontend.inference.onnx import OnnxModels
from frontend.service.faces import FacePipeline
from frontend.service.scores import ScoreCalibration
from frontend.service.stages import Stages
from preprocessing.detection import Face, nearest_to_centre
from preprocessing.quality import blur_of_face
from preprocessing.usability import DEFAULT_RULE, unusable_reason

LOGGER = logging.getLogger(__name__)
DEFAULT_CACHE = Path.home() / ".cache" / "facegate" / "far_conditions"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results"

LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9)
ENOUGH_EXPECTED = 10.0
"""A level is judged in a condition only where pairs x nominal FAR >= this many false accepts."""
TOLERANCE = 1.5
"""The acceptance band: measured FAR within [nominal / 1.5, nominal * 1.5]."""
BOOTSTRAP_REPLICATES = 300

CONDITIONS_VERSION = 1
"""Bumped whenever a condition's definition changes (part of the cache key)."""
GROUPS_VERSION = 2
"""The same for the group-photo conditions."""


@dataclass(frozen=True)
class Condition:
    """A way to alter a photo: `kind` with its parameter.

    ``original``; ``box`` (downscale so the subject's box is `value` px wide, INTER_AREA);
    ``box_up`` (the same, then back to the original size, INTER_LINEAR); ``jpeg`` (re-encode at
    quality `value`); ``upscale`` (`value` times, INTER_CUBIC). A downscale that would enlarge
    the photo does not apply to it.
    """

    name: str
    kind: str
    value: float = 0.0


CONDITIONS = (
    Condition("original", "original"),
    Condition("box40", "box", 40),
    Condition("box60", "box", 60),
    Condition("box80", "box", 80),
    Condition("box40_up", "box_up", 40),
    Condition("box60_up", "box_up", 60),
    Condition("box80_up", "box_up", 80),
    Condition("jpeg30", "jpeg", 30),
    Condition("jpeg50", "jpeg", 50),
    Condition("jpeg95", "jpeg", 95),
    Condition("up2x", "upscale", 2),
)
GROUP_CONDITIONS = ("grid_crop", "multi_crop")
HELD_OUT_SET = ("box40", "box60", "box40_up", "jpeg30", "grid_crop", "multi_crop")
"""The acceptance's held-out condition set: small faces, strong JPEG, group-photo crops."""

MAX_SIDE, MAX_PIXELS = 8192, 40_000_000
"""The server's default photo limits (FACEGATE_MAX_PHOTO_SIDE / _PIXELS): bigger is 2003."""

MULTI_EXCLUDED = {
    "faceapi_bbt1.jpg": "may show BBT_Raj / BBT_Stuart (holdout people, MANIFEST)",
    "faceapi_bbt2.jpg": "may show BBT_Raj / BBT_Stuart (holdout people, MANIFEST)",
    "faceapi_bbt3.jpg": "may show BBT_Raj / BBT_Stuart (holdout people, MANIFEST)",
    "faceapi_bbt4.jpg": "may show BBT_Raj / BBT_Stuart (holdout people, MANIFEST)",
    "facerec_kit_with_rose.jpg": "shows Rose_Leslie (holdout person, MANIFEST)",
    "dlib_bald_guys.jpg": "a collage of several photos each of four labelled people (Bruce_Willis, "
                          "Dwayne_Johnson, Jason_Statham, Vin_Diesel; looked at): not impostors",
}
MULTI_NOT_AGAINST_LABELLED = {
    "facerec_obama_and_biden.jpg": "shows Barack_Obama and Joseph_Biden, both labelled",
    "dlib_Tom_Cruise_avp_2014_4.jpg": "shows Tom Cruise, who may be labelled",
    "facerec_two_people.jpg": "from face_recognition's examples, whose people are labelled",
    "deepface_couple.jpg": "from deepface's test set, whose people are labelled (Deepface_P*)",
    "deepface_selfie-many-people.jpg": "from deepface's test set",
}
"""Group photos whose faces are compared only with each other, not with labelled photos;
all files starting with ``compreface_`` too (CompreFace's people A, C are labelled)."""

GRID_FACE_PX = 60
GRID_COLUMNS, GRID_ROWS = 3, 2
GRID_JPEG_QUALITY = 80
CROP_MARGIN = 1.0
"""A group face is cut out with this many box widths of margin on each side."""


# --- identities and halves -----------------------------------------------------------------------


def corrected_identity(name: str) -> str:
    """The identity of a photo ``faces/<Identity>/<file>`` under LABEL_CORRECTIONS."""
    folder = Path(name).parent.name
    fix = LABEL_CORRECTIONS.get(name) or LABEL_CORRECTIONS.get(folder)
    return fix[0] if fix else folder


def _rank(name: str) -> str:
    return hashlib.sha256(f"far_conditions/{name}".encode()).hexdigest()


def is_lfw(name: str) -> bool:
    path = Path(name)
    return path.name.startswith(path.parent.name + "_") and path.suffix == ".jpg"


def select_photos(names: list[str], per_half: int) -> dict[str, list[str]]:
    """The photos that get the condition variants, per half: every non-LFW photo (the few other
    sources) plus LFW photos by a hash rank until `per_half`; all photos when `per_half` <= 0."""
    chosen: dict[str, list[str]] = {}
    for half in ("fit", "held_out"):
        mine = [n for n in names if half_of(corrected_identity(n)) == half]
        if per_half <= 0:
            chosen[half] = sorted(mine)
            continue
        other = [n for n in mine if not is_lfw(n)]
        lfw = sorted((n for n in mine if is_lfw(n)), key=_rank)
        chosen[half] = sorted(other + lfw[: max(0, per_half - len(other))])
    return chosen


# --- variants ------------------------------------------------------------------------------------


def variant(image: np.ndarray, condition: Condition,
            box_width: float) -> tuple[np.ndarray, float] | None:
    """The photo under `condition` and the scale from original to variant pixels; None when the
    condition does not apply (a downscale that would enlarge, a photo over the server's limits)."""
    height, width = image.shape[:2]
    if condition.kind == "original":
        return image, 1.0
    if condition.kind in ("box", "box_up"):
        scale = condition.value / box_width
        if scale >= 0.95:
            return None
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        if min(small.shape[:2]) < 32:  # FACEGATE_MIN_PHOTO_SIDE: the server says 2003
            return None
        if condition.kind == "box":
            return small, small.shape[1] / width
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR), 1.0
    if condition.kind == "jpeg":
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(condition.value)])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return cv2.imdecode(data, cv2.IMREAD_COLOR), 1.0
    if condition.kind == "upscale":
        size = (round(width * condition.value), round(height * condition.value))
        if max(size) > MAX_SIDE or size[0] * size[1] > MAX_PIXELS:
            return None
        return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), condition.value
    raise ValueError(condition.kind)


# --- the pipeline --------------------------------------------------------------------------------

STATUSES = ("ok", "no_face", "cut_off", "covered", "too_small", "too_blurred", "other_face",
            "not_applicable", "no_subject")
"""What became of one photo in one condition: compared (``ok``); refused by the server (no face,
or every face unusable, by the first reason of the subject); ``other_face``: the subject is
unusable or lost but another usable face would be compared; ``not_applicable``: the condition
does not apply; ``no_subject``: the original has no usable face."""


@dataclass
class Faces:
    """One record per (photo, condition): descriptor and measures of the face compared."""

    photo: list[str] = field(default_factory=list)
    condition: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    descriptor: list[np.ndarray] = field(default_factory=list)
    box: list[tuple[float, float, float, float]] = field(default_factory=list)
    eye_distance: list[float] = field(default_factory=list)
    blur: list[float] = field(default_factory=list)

    def add(self, photo: str, condition: str, status: str, face: Face | None = None,
            descriptor: np.ndarray | None = None, blur: float = float("nan")) -> None:
        self.photo.append(photo)
        self.condition.append(condition)
        self.status.append(status)
        self.descriptor.append(np.full(128, np.nan, np.float32) if descriptor is None
                               else descriptor.astype(np.float32))
        self.box.append(tuple(float(v) for v in face.box) if face is not None
                        else (float("nan"),) * 4)
        self.eye_distance.append(
            float(np.linalg.norm(face.landmarks[1] - face.landmarks[0]))
            if face is not None else float("nan"))
        self.blur.append(blur)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "photo": np.array(self.photo, dtype=str),
            "condition": np.array(self.condition, dtype=str),
            "status": np.array(self.status, dtype=str),
            "descriptor": (np.stack(self.descriptor) if self.descriptor
                           else np.zeros((0, 128), np.float32)),
            "box": np.array(self.box, dtype=np.float64).reshape(-1, 4),
            "eye_distance": np.array(self.eye_distance),
            "blur": np.array(self.blur),
        }


def subject_in(faces: list[Face], image: np.ndarray, expected_centre: tuple[float, float] | None,
               expected_width: float | None) -> tuple[Face | None, str]:
    """The face the server compares in `image` and what it is (a `STATUSES` value).

    The server compares the usable face nearest the centre; it is the subject when its centre
    lies within half the subject's expected box width of where the subject is expected.
    """
    if not faces:
        return None, "no_face"
    reasons = {id(f): unusable_reason(image, f, faces, DEFAULT_RULE) for f in faces}
    usable = [f for f in faces if reasons[id(f)] is None]
    if expected_centre is None:
        return (nearest_to_centre(usable, image.shape), "ok") if usable else (
            None, reasons[id(nearest_to_centre(faces, image.shape))])

    def near(f: Face) -> bool:
        return math.dist(f.center, expected_centre) <= 0.5 * expected_width

    if not usable:
        subject = [f for f in faces if near(f)]
        return None, reasons[id(subject[0])] if subject else "no_face"
    chosen = nearest_to_centre(usable, image.shape)
    if near(chosen):
        return chosen, "ok"
    return None, "other_face"


class Embedder:
    """The server's pipeline in-process on a small pool (2 threads, `threads` per session)."""

    def __init__(self, threads: int, concurrency: int = 4) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(2)
        self.pipeline = FacePipeline(OnnxModels(executor=self.pool, threads=threads, spin=False),
                                     Stages(self.pool))
        self.limit = asyncio.Semaphore(concurrency)
        self.loop = asyncio.new_event_loop()

    def run(self, coroutine) -> None:
        self.loop.run_until_complete(coroutine)

    async def face(self, image: np.ndarray, centre=None, width=None):
        """(face, status, descriptor, blur) of the face the server would compare."""
        faces = await self.pipeline.detect(image)
        face, status = await self.pipeline.stages.cpu(subject_in, faces, image, centre, width)
        if face is None:
            return None, status, None, float("nan")
        (embedded,) = await self.pipeline.embed(image, [face])
        blur = await self.pipeline.stages.cpu(blur_of_face, image, face)
        return face, status, embedded.descriptor, blur

    async def photo(self, data_dir: Path, name: str, conditions: tuple[Condition, ...],
                    out: Faces) -> None:
        async with self.limit:
            image = await self.pipeline.stages.cpu(cv2.imread, str(data_dir / name),
                                                   cv2.IMREAD_COLOR)
            if image is None:
                for c in conditions:
                    out.add(name, c.name, "no_face")
                return
            face, status, descriptor, blur = await self.face(image)
            for c in conditions:
                if c.kind == "original":
                    out.add(name, c.name, status, face, descriptor, blur)
                elif face is None:
                    out.add(name, c.name, "no_subject")
                else:
                    made = await self.pipeline.stages.cpu(variant, image, c, face.box[2])
                    if made is None:
                        out.add(name, c.name, "not_applicable")
                        continue
                    altered, scale = made
                    centre = (face.center[0] * scale, face.center[1] * scale)
                    result = await self.face(altered, centre, face.box[2] * scale)
                    out.add(name, c.name, result[1], result[0], result[2], result[3])

    def close(self) -> None:
        self.loop.close()
        self.pool.shutdown()

    async def grid(self, data_dir: Path, members: list[tuple[str, Face]], out: Faces) -> None:
        """Photos of different people pasted into a grid (each face box `GRID_FACE_PX` wide),
        JPEG-encoded as a group photo is, each face then cut out with its neighbours' edges."""
        async with self.limit:
            tile = round(GRID_FACE_PX * 2.2)
            canvas = np.zeros((tile * GRID_ROWS, tile * GRID_COLUMNS, 3), np.uint8)
            centres = []
            for k, (name, face) in enumerate(members):
                image = await self.pipeline.stages.cpu(cv2.imread, str(data_dir / name),
                                                       cv2.IMREAD_COLOR)
                cx, cy = face.center
                half = 1.1 * face.box[2]
                scale = tile / (2 * half)
                matrix = np.array([[scale, 0, tile / 2 - scale * cx],
                                   [0, scale, tile / 2 - scale * cy]], np.float64)
                interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
                patch = cv2.warpAffine(image, matrix, (tile, tile), flags=interpolation,
                                       borderMode=cv2.BORDER_REPLICATE)
                row, column = divmod(k, GRID_COLUMNS)
                canvas[row * tile:(row + 1) * tile, column * tile:(column + 1) * tile] = patch
                centres.append((column * tile + tile / 2, row * tile + tile / 2))
            ok, data = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, GRID_JPEG_QUALITY])
            group = cv2.imdecode(data, cv2.IMREAD_COLOR)
            for (name, _), centre in zip(members, centres, strict=True):
                crop, offset = cut_out(group, centre, GRID_FACE_PX)
                local = (centre[0] - offset[0], centre[1] - offset[1])
                face, status, descriptor, blur = await self.face(crop, local, GRID_FACE_PX)
                out.add(name, "grid_crop", status, face, descriptor, blur)

    async def multi(self, path: Path, out: Faces) -> None:
        """Every usable face of an unlabelled group photo, cut out as `grid` cuts them."""
        async with self.limit:
            image = await self.pipeline.stages.cpu(cv2.imread, str(path), cv2.IMREAD_COLOR)
            faces = await self.pipeline.detect(image)
            usable = [f for f in faces if unusable_reason(image, f, faces, DEFAULT_RULE) is None]
            usable = distinct_faces(usable)
            for k, subject in enumerate(sorted(usable, key=lambda f: f.box[:2])):
                crop, offset = cut_out(image, subject.center, subject.box[2])
                local = (subject.center[0] - offset[0], subject.center[1] - offset[1])
                face, status, descriptor, blur = await self.face(crop, local, subject.box[2])
                out.add(f"multi/{path.name}#{k}", "multi_crop", status, face, descriptor, blur)


def distinct_faces(faces: list[Face], max_overlap: float = 0.2) -> list[Face]:
    """The faces less than `max_overlap` of whose box a more confident face's box covers: two
    detections of one face (the NMS keeps boxes of IoU < 0.3) are one person, not an impostor
    pair (found in the crowd photo at distance 0.035, looked at)."""
    kept: list[Face] = []
    def covered(face: Face, other: Face) -> float:
        x, y, w, h = face.box
        ox, oy, ow, oh = other.box
        cover_w = max(0.0, min(x + w, ox + ow) - max(x, ox))
        cover_h = max(0.0, min(y + h, oy + oh) - max(y, oy))
        return cover_w * cover_h / (w * h)

    for face in sorted(faces, key=lambda f: f.score, reverse=True):
        if all(covered(face, other) < max_overlap for other in kept):
            kept.append(face)
    return kept


def cut_out(image: np.ndarray, centre: tuple[float, float], width: float
            ) -> tuple[np.ndarray, tuple[int, int]]:
    """A square of (1 + 2 * CROP_MARGIN) box widths around a face, clipped to the photo, and
    its top-left corner in the photo."""
    half = (0.5 + CROP_MARGIN) * width
    height, full_width = image.shape[:2]
    x0, y0 = max(0, int(centre[0] - half)), max(0, int(centre[1] - half))
    x1, y1 = min(full_width, int(centre[0] + half)), min(height, int(centre[1] + half))
    return np.ascontiguousarray(image[y0:y1, x0:x1]), (x0, y0)


# --- running it, with a cache --------------------------------------------------------------------


def _load_chunk(path: Path, key: str) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        if str(stored["key"]) != key:
            return None
        return {name: stored[name] for name in stored.files if name != "key"}


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def embed_all(data_dir: Path, cache_dir: Path, hashes: dict[str, str], per_half: int,
              threads: int, chunk: int = 240) -> dict[str, np.ndarray]:
    """Every (photo, condition) record, from the cache where it holds them."""
    names = labelled_photos(data_dir)
    selected = select_photos(names, per_half)
    varied = set(selected["fit"]) | set(selected["held_out"])
    base = json.dumps([hashes, CONDITIONS_VERSION, [c.__dict__ for c in CONDITIONS],
                       GRID_FACE_PX, GRID_JPEG_QUALITY, CROP_MARGIN])
    cache_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    embedder = Embedder(threads)
    started = time.perf_counter()
    try:
        for first in range(0, len(names), chunk):
            batch = names[first:first + chunk]
            key = hashlib.sha256((base + json.dumps([batch, sorted(varied & set(batch))])).encode()
                                 ).hexdigest()
            path = cache_dir / f"photos_{first:05d}.npz"
            stored = _load_chunk(path, key)
            if stored is None:
                out = Faces()

                async def run(batch=batch, out=out) -> None:
                    await asyncio.gather(*(
                        embedder.photo(data_dir, n,
                                       CONDITIONS if n in varied else CONDITIONS[:1], out)
                        for n in batch))

                embedder.run(run())
                stored = out.arrays()
                np.savez(path, key=key, **stored)
                LOGGER.info("photos %d-%d of %d embedded, %.0f s", first, first + len(batch),
                            len(names), time.perf_counter() - started)
            parts.append(stored)
        records = _concat(parts)
        parts.append(_group_records(data_dir, cache_dir, base, records, selected, embedder))
    finally:
        embedder.close()
    return _concat(parts)


def grid_groups(records: dict[str, np.ndarray], selected: dict[str, list[str]]
                ) -> list[list[tuple[str, Face]]]:
    """Groups of `GRID_COLUMNS` x `GRID_ROWS` selected photos of distinct people (one half each),
    in hash order, each with its subject's box in the original photo."""
    boxes = {
        str(p): tuple(b) for p, c, s, b in zip(records["photo"], records["condition"],
                                               records["status"], records["box"], strict=True)
        if c == "original" and s == "ok"
    }
    size = GRID_COLUMNS * GRID_ROWS
    groups = []
    for half in ("fit", "held_out"):
        pending: list[str] = []
        for name in sorted((n for n in selected[half] if n in boxes), key=_rank):
            if corrected_identity(name) in {corrected_identity(n) for n in pending}:
                continue
            pending.append(name)
            if len(pending) == size:
                groups.append([(n, Face(boxes[n], np.zeros((5, 2), np.float32), 1.0))
                               for n in pending])
                pending = []
    return groups


def multi_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "multi").iterdir()
                  if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.name not in MULTI_EXCLUDED)


def _group_records(data_dir: Path, cache_dir: Path, base: str, records: dict[str, np.ndarray],
                   selected: dict[str, list[str]], embedder: Embedder) -> dict[str, np.ndarray]:
    groups = grid_groups(records, selected)
    files = multi_files(data_dir)
    key = hashlib.sha256((base + json.dumps([[[n for n, _ in g] for g in groups],
                                             [f.name for f in files], GROUPS_VERSION])).encode()
                         ).hexdigest()
    path = cache_dir / "groups.npz"
    stored = _load_chunk(path, key)
    if stored is not None:
        return stored
    out = Faces()

    async def run() -> None:
        await asyncio.gather(*(embedder.grid(data_dir, g, out) for g in groups),
                             *(embedder.multi(f, out) for f in files))

    started = time.perf_counter()
    embedder.run(run())
    stored = out.arrays()
    np.savez(path, key=key, **stored)
    LOGGER.info("%d grid groups and %d group photos embedded, %.0f s", len(groups), len(files),
                time.perf_counter() - started)
    return stored


# --- statistics ----------------------------------------------------------------------------------


@dataclass
class Records:
    """The compared faces (status ok), as arrays."""

    photo: np.ndarray
    condition: np.ndarray
    identity: np.ndarray  # int index into `identities`
    identities: list[str]
    half: np.ndarray
    group: np.ndarray  # the group photo a multi_crop face comes from ("" otherwise)
    descriptor: np.ndarray
    box_width: np.ndarray
    eye_distance: np.ndarray
    blur: np.ndarray

    def where(self, condition: str, half: str) -> np.ndarray:
        return np.flatnonzero((self.condition == condition) & (self.half == half))


def records_of(raw: dict[str, np.ndarray]) -> Records:
    ok = raw["status"] == "ok"
    photo = raw["photo"][ok]
    condition = raw["condition"][ok]
    names = [p if c == "multi_crop" else corrected_identity(p)
             for p, c in zip(photo, condition, strict=True)]
    identities, index = np.unique(np.array(names), return_inverse=True)
    half = np.array(["multi" if c == "multi_crop" else half_of(n)
                     for n, c in zip(names, condition, strict=True)])
    group = np.array([p.split("#")[0] if c == "multi_crop" else ""
                      for p, c in zip(photo, condition, strict=True)])
    return Records(photo, condition, index, list(identities), half, group,
                   raw["descriptor"][ok].astype(np.float64), raw["box"][ok, 2],
                   raw["eye_distance"][ok], raw["blur"][ok])


def status_counts(raw: dict[str, np.ndarray], half: str) -> dict[str, dict[str, int]]:
    """Per condition, how many photos of the half ended in each status."""
    halves = np.array(["multi" if c == "multi_crop" else half_of(corrected_identity(p))
                       for p, c in zip(raw["photo"], raw["condition"], strict=True)])
    out: dict[str, dict[str, int]] = {}
    for condition in [c.name for c in CONDITIONS] + list(GROUP_CONDITIONS):
        mask = (raw["condition"] == condition) & (
            halves == ("multi" if condition == "multi_crop" else half))
        values, counts = np.unique(raw["status"][mask], return_counts=True)
        out[condition] = {str(v): int(c) for v, c in zip(values, counts, strict=True)}
    return out


@dataclass
class PairCounts:
    """Counts of one pair set at each level."""

    impostors: int = 0
    genuines: int = 0
    accepted: dict[float, int] = field(default_factory=dict)
    genuine_accepted: dict[float, int] = field(default_factory=dict)
    accepted_ids: dict[float, list[np.ndarray]] = field(default_factory=dict)
    impostor_distances: list[np.ndarray] = field(default_factory=list)
    strata_impostors: np.ndarray | None = None  # [strata]
    strata_accepted: np.ndarray | None = None  # [strata, levels]
    strata_genuines: np.ndarray | None = None
    strata_genuine_accepted: np.ndarray | None = None

    def __iadd__(self, other: PairCounts) -> PairCounts:
        self.impostors += other.impostors
        self.genuines += other.genuines
        for level in other.accepted:
            self.accepted[level] = self.accepted.get(level, 0) + other.accepted[level]
            self.genuine_accepted[level] = (self.genuine_accepted.get(level, 0)
                                            + other.genuine_accepted[level])
            self.accepted_ids.setdefault(level, []).extend(other.accepted_ids[level])
        for name in ("strata_impostors", "strata_accepted", "strata_genuines",
                     "strata_genuine_accepted"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None:
                setattr(self, name, theirs.copy() if mine is None else mine + theirs)
        return self


def count_pairs(records: Records, first: np.ndarray, second: np.ndarray | None, score,
                levels=LEVELS, *, same_group_only: bool = False, keep_distances: bool = False,
                strata=None, block: int = 384) -> PairCounts:
    """Impostor and genuine pairs of `first` with itself (i < j, `second` None) or of `first`
    against `second` (different photos), scored by ``score(distance, rows_a, rows_b)``."""
    counts = PairCounts(accepted={v: 0 for v in levels}, genuine_accepted={v: 0 for v in levels},
                        accepted_ids={v: [] for v in levels})
    within = second is None
    other = first if within else second
    if strata is not None:
        bins, stratum_of = strata
        counts.strata_impostors = np.zeros(bins, np.int64)
        counts.strata_accepted = np.zeros((bins, len(levels)), np.int64)
        counts.strata_genuines = np.zeros(bins, np.int64)
        counts.strata_genuine_accepted = np.zeros((bins, len(levels)), np.int64)
    vectors = records.descriptor
    squares = (vectors**2).sum(axis=1)
    for start in range(0, len(first), block):
        rows = first[start:start + block]
        columns = other[start + 1:] if within else other
        if len(columns) == 0:
            continue
        d2 = squares[rows, None] + squares[None, columns] - 2 * vectors[rows] @ vectors[columns].T
        d = np.sqrt(np.maximum(d2, 0.0))
        a = np.broadcast_to(rows[:, None], d.shape)
        b = np.broadcast_to(columns[None, :], d.shape)
        valid = records.photo[a] != records.photo[b]
        if within:
            valid &= np.arange(len(rows))[:, None] < (np.arange(len(columns))[None, :] + 1)
        if same_group_only:
            valid &= records.group[a] == records.group[b]
        same = records.identity[a] == records.identity[b]
        impostor, genuine = valid & ~same, valid & same
        counts.impostors += int(impostor.sum())
        counts.genuines += int(genuine.sum())
        ia, ib, di = a[impostor], b[impostor], d[impostor]
        si = score(di, ia, ib)
        sg = score(d[genuine], a[genuine], b[genuine])
        if keep_distances:
            counts.impostor_distances.append(di.astype(np.float32))
        if strata is not None:
            ti = stratum_of(ia, ib)
            tg = stratum_of(a[genuine], b[genuine])
            counts.strata_impostors += np.bincount(ti, minlength=bins)
            counts.strata_genuines += np.bincount(tg, minlength=bins)
            for j, level in enumerate(levels):
                counts.strata_accepted[:, j] += np.bincount(ti[si >= level - 1e-12], minlength=bins)
                counts.strata_genuine_accepted[:, j] += np.bincount(tg[sg >= level - 1e-12],
                                                                    minlength=bins)
        for level in levels:
            hit = si >= level - 1e-12
            counts.accepted[level] += int(hit.sum())
            counts.genuine_accepted[level] += int((sg >= level - 1e-12).sum())
            counts.accepted_ids[level].append(
                np.stack([records.identity[ia[hit]], records.identity[ib[hit]]], axis=1))
    return counts


def bootstrap_far(records: Records, first: np.ndarray, second: np.ndarray | None,
                  counts: PairCounts, weights: np.ndarray,
                  levels=LEVELS) -> dict[float, list[float]]:
    """Identity-level bootstrap: identities drawn with replacement (`weights`, replicates x
    identities); a pair weighs the product of its identities' weights. 2.5th and 97.5th
    percentile of the FAR at each level."""
    n_first = np.bincount(records.identity[first], minlength=weights.shape[1]).astype(np.float64)
    if second is None:
        total = ((weights @ n_first) ** 2 - (weights**2) @ (n_first**2)) / 2
    else:
        n_second = np.bincount(records.identity[second], minlength=weights.shape[1]).astype(
            np.float64)
        total = (weights @ n_first) * (weights @ n_second) - (weights**2) @ (n_first * n_second)
    out = {}
    for level in levels:
        ids = np.concatenate(counts.accepted_ids[level]) if counts.accepted_ids[level] else (
            np.zeros((0, 2), np.int64))
        accepted = np.zeros(weights.shape[0])
        for start in range(0, len(ids), 20000):
            part = ids[start:start + 20000]
            accepted += (weights[:, part[:, 0]] * weights[:, part[:, 1]]).sum(axis=1)
        far = accepted / np.maximum(total, 1.0)
        out[level] = [float(f"{np.percentile(far, q):.4g}") for q in (2.5, 97.5)]
    return out


def nominal_far(level: float) -> float:
    return 10.0 ** (3 - 10 * level)


def level_rows(counts: PairCounts, boot: dict[float, list[float]] | None,
               levels=LEVELS) -> list[dict]:
    rows = []
    for level in levels:
        nominal = nominal_far(level)
        k, n = counts.accepted[level], counts.impostors
        far = k / n if n else float("nan")
        low, high = clopper_pearson(k, n)
        expected = n * nominal
        judged = expected >= ENOUGH_EXPECTED
        ratio = far / nominal if n else float("nan")
        if not judged:
            verdict = ("FAR too high (clear with few pairs)" if n and low > nominal * TOLERANCE
                       else "too few pairs")
        elif nominal / TOLERANCE <= far <= nominal * TOLERANCE:
            verdict = "holds"
        elif far > nominal * TOLERANCE:
            verdict = ("FAR too high" if low > nominal * TOLERANCE
                       else "FAR high (within noise)")
        else:
            verdict = "conservative" if high < nominal / TOLERANCE else "low (within noise)"
        rows.append({
            "level": level, "nominal_far": nominal, "impostor_pairs": n, "accepted": k,
            "far": float(f"{far:.4g}"), "cp95": [float(f"{low:.4g}"), float(f"{high:.4g}")],
            "bootstrap95": boot[level] if boot else None,
            "ratio": round(ratio, 3), "expected_at_nominal": round(expected, 1), "judged": judged,
            "verdict": verdict, "genuine_pairs": counts.genuines,
            "genuine_accepted": counts.genuine_accepted[level],
            "tar": round(counts.genuine_accepted[level] / counts.genuines, 4) if counts.genuines
            else None,
        })
    return rows


SIZE_STRATA = (0, 40, 50, 60, 70, 80, 10**9)
"""Strata of the smaller face box width (px) of a pair, for the by-size view."""
BLUR_STRATA = (0.0, 0.40, 0.45, 0.50, 0.55, 0.60, 1.01)
"""Strata of the larger blur of a pair."""
EYE_STRATA = (0, 20, 30, 40, 60, 80, 10**9)
"""Strata of the smaller eye distance (px between the eye landmarks) of a pair: LFW's faces
have 37-47 px (5th-95th percentile), 2x upscaled ones about 83 px."""


def _strata(records: Records, values: np.ndarray, edges, pick):
    def stratum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        v = pick(values[a], values[b])
        return np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2)
    return len(edges) - 1, stratum


def pair_sets(records: Records, selected: dict[str, list[str]], half: str
              ) -> list[tuple[str, str, np.ndarray, np.ndarray | None, bool]]:
    """(condition, pairing, first, second, same_group_only) for every pair set of a half."""
    original = records.where("original", half)
    chosen = np.isin(records.photo[original], np.array(selected[half]))
    original_selected = original[chosen]
    sets = [("original", "within", original, None, False),
            ("original (selected photos)", "within", original_selected, None, False),
            ("original (selected photos)", "mixed", original_selected, original, False)]
    for name in [c.name for c in CONDITIONS[1:]] + ["grid_crop"]:
        rows = records.where(name, half)
        sets += [(name, "within", rows, None, False), (name, "mixed", rows, original, False)]
    multi = np.flatnonzero(records.condition == "multi_crop")
    against = np.array([not (g.split("/")[-1] in MULTI_NOT_AGAINST_LABELLED
                             or g.split("/")[-1].startswith("compreface_"))
                        for g in records.group[multi]], dtype=bool)
    sets += [("multi_crop", "within", multi, None, True),
             ("multi_crop", "mixed", multi[against], original, False)]
    return sets


def evaluate(records: Records, selected: dict[str, list[str]], score, half: str = "held_out",
             bootstrap: bool = True, strata: bool = True, seed: int = 0) -> dict:
    """Every pair set of the half at every level, the held-out set pooled, and (with `strata`)
    all pair sets together by face size, eye distance and blur."""
    rng = np.random.default_rng(seed)
    people = len(records.identities)
    weights = None
    if bootstrap:
        weights = np.stack([np.bincount(rng.integers(0, people, people), minlength=people)
                            for _ in range(BOOTSTRAP_REPLICATES)]).astype(np.float64)
    views = {
        "by_smaller_box_width": (_strata(records, records.box_width, SIZE_STRATA, np.minimum),
                                 SIZE_STRATA, "px"),
        "by_smaller_eye_distance": (_strata(records, records.eye_distance, EYE_STRATA,
                                            np.minimum), EYE_STRATA, "px"),
        "by_larger_blur": (_strata(records, records.blur, BLUR_STRATA, np.maximum),
                           BLUR_STRATA, ""),
    } if strata else {}

    def empty() -> PairCounts:
        return PairCounts(accepted={v: 0 for v in LEVELS}, genuine_accepted={v: 0 for v in LEVELS},
                          accepted_ids={v: [] for v in LEVELS})

    results = []
    pooled = {p: empty() for p in ("within", "mixed", "all")}
    together = {name: empty() for name in views}
    for condition, pairing, first, second, group_only in pair_sets(records, selected, half):
        started = time.perf_counter()
        counts = count_pairs(records, first, second, score, same_group_only=group_only)
        boot = (bootstrap_far(records, first, second, counts, weights)
                if bootstrap and not group_only else None)
        results.append({
            "condition": condition, "pairing": pairing, "faces": int(len(first)),
            "faces_second": int(len(second)) if second is not None else None,
            "box_width_median": round(float(np.median(records.box_width[first])), 1)
            if len(first) else None,
            "eye_distance_median": round(float(np.median(records.eye_distance[first])), 1)
            if len(first) else None,
            "blur_median": round(float(np.median(records.blur[first])), 3) if len(first) else None,
            "levels": level_rows(counts, boot),
        })
        if condition in HELD_OUT_SET:
            pooled[pairing] += counts
            pooled["all"] += counts
        if condition != "original (selected photos)":  # its pairs are in `original` already
            for name, (view, _, _) in views.items():
                together[name] += count_pairs(records, first, second, score,
                                              same_group_only=group_only, strata=view)
        LOGGER.info("%s %s: %d impostor pairs, %.1f s", condition, pairing, counts.impostors,
                    time.perf_counter() - started)
    out = {"pair_sets": results,
           "held_out_set_pooled": {p: level_rows(c, None) for p, c in pooled.items()}}
    for name, (_, edges, unit) in views.items():
        out[name] = _strata_rows(together[name], edges, unit)
    return out


def _strata_rows(counts: PairCounts, edges, unit: str) -> list[dict]:
    rows = []
    for i in range(len(edges) - 1):
        sub = PairCounts(
            impostors=int(counts.strata_impostors[i]), genuines=int(counts.strata_genuines[i]),
            accepted={v: int(counts.strata_accepted[i, j]) for j, v in enumerate(LEVELS)},
            genuine_accepted={v: int(counts.strata_genuine_accepted[i, j])
                              for j, v in enumerate(LEVELS)})
        high = "" if edges[i + 1] >= 10**8 or edges[i + 1] > 1.0 and unit == "" else edges[i + 1]
        rows.append({"stratum": f"{edges[i]}-{high}{unit}" if high != "" else f">={edges[i]}{unit}",
                     "levels": level_rows(sub, None)})
    return rows


# --- the fix the issue proposed, prototyped: size bands fitted on the fit half -------------------

BAND_LIMITS_PX = (50.0, 70.0)
"""Size bands fitted: pairs whose smaller face box is under 50 px, and 50-70 px. Wider pairs
(every LFW-size face: LFW boxes are 78-113 px, 1st-99th percentile) keep the main table."""
BAND_TAIL_CUTOFF = 0.8
"""Band impostor distances are kept up to this distance (FAR about 0.45); the table is measured
from FAR 0.1 down, and above that the band follows the main table."""
BAND_MIN_TAIL_PAIRS = 20


def band_impostor_distances(records: Records, half: str, low: float, high: float,
                            block: int = 512) -> tuple[np.ndarray, int, int]:
    """Sorted impostor distances (up to `BAND_TAIL_CUTOFF`) of the half's pairs whose smaller
    face box is in [low, high), every condition pooled (not multi_crop), variants of one photo
    never paired; the number of such pairs; the faces in the band."""
    pool = np.flatnonzero((records.half == half) & (records.condition != "multi_crop"))
    width = records.box_width
    band = pool[(width[pool] >= low) & (width[pool] < high)]
    partners = pool[width[pool] >= low]
    in_band = (width >= low) & (width < high)
    vectors, squares = records.descriptor, (records.descriptor**2).sum(axis=1)
    kept, total = [], 0
    base_photo = np.array([p.split("#")[0] for p in records.photo])
    for start in range(0, len(band), block):
        rows = band[start:start + block]
        d2 = squares[rows, None] + squares[None, partners] - 2 * vectors[rows] @ vectors[partners].T
        d = np.sqrt(np.maximum(d2, 0.0))
        valid = records.identity[rows][:, None] != records.identity[partners][None, :]
        valid &= base_photo[rows][:, None] != base_photo[partners][None, :]
        # a pair with both faces in the band is met twice: keep it once
        valid &= ~in_band[partners][None, :] | (partners[None, :] > rows[:, None])
        total += int(valid.sum())
        kept.append(d[valid & (d <= BAND_TAIL_CUTOFF)].astype(np.float64))
    return np.sort(np.concatenate(kept)) if kept else np.zeros(0), total, int(len(band))


def fit_band(distances: np.ndarray, total: int,
             main: ScoreCalibration) -> tuple[ScoreCalibration, dict]:
    """A band's table: the empirical impostor quantiles from FAR 0.1 down to the FAR that
    `BAND_MIN_TAIL_PAIRS` pairs reach, the better of the Gaussian and exponential tail below
    (`benchmarks.calibrate`), and never a lower FAR than the main table at any distance (a band
    can only lower scores)."""
    from benchmarks.calibrate import FIT_TOP_FAR, TABLE_LOWEST_LOG10_FAR, TailFit

    limit_far = BAND_MIN_TAIL_PAIRS / total
    limit = math.log10(limit_far)

    def fit_tail(kind: str) -> TailFit:
        # calibrate.fit_tail on the kept tail: the k-th smallest of `total` is at FAR k / total
        k = np.arange(max(1, math.ceil(limit_far * total)), int(FIT_TOP_FAR * total) + 1)
        z = TailFit(kind, 0.0, 1.0, (limit_far, FIT_TOP_FAR), 0).transform(np.log10(k / total))
        slope, intercept = np.polyfit(z, distances[k - 1], 1, w=1.0 / np.sqrt(k))
        return TailFit(kind, float(intercept), float(slope), (limit_far, FIT_TOP_FAR), len(k))

    def rms_error(fit: TailFit) -> float:
        errors = []
        for value in np.arange(math.log10(FIT_TOP_FAR), limit - 1e-9, -0.25):
            far = np.searchsorted(distances, float(fit.distance(value)), side="right") / total
            errors.append(math.log10(max(far, 0.5 / total)) - value)
        return float(np.sqrt(np.mean(np.square(errors))))

    fits = {kind: fit_tail(kind) for kind in ("gaussian", "exponential")}
    errors = {kind: rms_error(fit) for kind, fit in fits.items()}
    chosen = min(errors, key=errors.get)
    fit = fits[chosen]
    measured = np.round(np.arange(-1.0, limit + 1e-9, -0.05), 4)
    measured = np.array(sorted(set(measured.tolist() + [round(limit, 4)])))
    measured_d = np.interp(10.0**measured * total - 1, np.arange(len(distances)), distances)
    shift = float(measured_d[0] - fit.distance(limit))
    below = np.round(np.arange(TABLE_LOWEST_LOG10_FAR, limit - 0.05 + 1e-9, 0.1), 4)
    below_d = fit.distance(below) + shift
    band_d = np.concatenate([below_d, measured_d])
    band_f = np.concatenate([below, measured])
    keep = np.concatenate([[True], np.diff(band_d) > 1e-6])
    band_d, band_f = band_d[keep], band_f[keep]
    top = band_d[-1]  # the distance of FAR 0.1 in the band
    grid = np.unique(np.concatenate([band_d, main.distances]))
    grid = grid[np.concatenate([[True], np.diff(grid) > 1e-6])]
    band_value = np.interp(np.minimum(grid, top), band_d, band_f,
                           left=band_f[0] + (grid[0] - band_d[0]) * 0)
    below_first = grid < band_d[0]
    slope = (band_f[1] - band_f[0]) / (band_d[1] - band_d[0])
    band_value[below_first] = band_f[0] + slope * (grid[below_first] - band_d[0])
    merged = np.maximum(band_value, np.asarray(main.log10_far_at(grid)))
    merged = np.maximum.accumulate(merged)
    table = ScoreCalibration(grid, merged)
    info = {
        "impostor_pairs": total, "measured_down_to_far": float(f"{limit_far:.4g}"),
        "tail_model": fit.describe(), "tail_model_chosen": chosen,
        "rms_log10_far_error": {k: round(v, 4) for k, v in errors.items()},
        "fit_shift_at_join": round(shift, 6),
        "distance_at_level": {str(v): round(table.distance_at(v), 5) for v in LEVELS},
        "main_distance_at_level": {str(v): round(main.distance_at(v), 5) for v in LEVELS},
    }
    return table, info


def fit_size_bands(records: Records, main: ScoreCalibration, half: str = "fit"
                   ) -> tuple[list[tuple[float, ScoreCalibration]], list[dict]]:
    """A table per `BAND_LIMITS_PX` band, fitted on `half`: (below_px, table) narrowest first."""
    bands, infos, low = [], [], 0.0
    for high in BAND_LIMITS_PX:
        distances, total, faces = band_impostor_distances(records, half, low, high)
        table, info = fit_band(distances, total, main)
        raw_far = {str(v): round(float(np.searchsorted(distances, main.distance_at(v), side="right")
                                       / total / nominal_far(v)), 3) for v in LEVELS}
        bands.append((high, table))
        infos.append({"below_px": high, "from_px": low, "faces": faces, **info,
                      "fit_half_far_ratio_at_main_distances": raw_far})
        LOGGER.info("band %.0f-%.0f px: %d faces, %d impostor pairs, 0.7 at d %.4f (main %.4f)",
                    low, high, faces, total, table.distance_at(0.7), main.distance_at(0.7))
        low = high
    return bands, infos


def banded_score(main: ScoreCalibration, bands: list[tuple[float, ScoreCalibration]],
                 records: Records):
    """``score(distance, rows_a, rows_b)``: the first band whose limit the pair's smaller face
    box is under, else the main table."""
    def score(distance: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        smaller = np.minimum(records.box_width[a], records.box_width[b])
        out = np.asarray(main.score(distance), dtype=np.float64).copy()
        claimed = np.zeros(len(distance), dtype=bool)
        for below, table in bands:
            mine = (smaller < below) & ~claimed
            out[mine] = table.score(distance[mine])
            claimed |= mine
        return out
    return score


def size_conditioned_evaluations(records: Records, selected: dict[str, list[str]],
                                 calibration: ScoreCalibration, args) -> list[dict]:
    """The fix the issue proposes, prototyped: size bands fitted on the fit half, scored on the
    held-out half."""
    bands, infos = fit_size_bands(records, calibration)
    about = (
        "Prototype of a size-conditioned calibration: for pairs whose smaller face box is "
        f"under {', '.join(f'{b:g}' for b in BAND_LIMITS_PX)} px, a table of their own, fitted "
        "on the fit half's impostor pairs of such faces (every condition pooled; empirical "
        "quantiles from FAR 0.1 down, the better tail model below, as benchmarks.calibrate "
        "does), never below the main table's FAR (a band can only lower scores). Per band, "
        "the fit half's FAR at the main table's level distances, as a ratio to nominal: "
        + "; ".join(
            f"{i['from_px']:g}-{i['below_px']:g} px ({i['faces']} faces, {i['impostor_pairs']} "
            f"pairs): " + ", ".join(f"{k} {v}" for k, v in
                                    i["fit_half_far_ratio_at_main_distances"].items())
            for i in infos)
        + ". Band distance at each level vs the main table's: " + "; ".join(
            f"{i['from_px']:g}-{i['below_px']:g} px: " + ", ".join(
                f"{k} {i['distance_at_level'][k]} ({i['main_distance_at_level'][k]})"
                for k in i["distance_at_level"]) for i in infos) + ".")
    return [{
        "title": "Prototype: size-banded tables fitted on the fit half, held-out half",
        "about": about,
        "bands": infos,
        "brief": True,
        "result": evaluate(records, selected, banded_score(calibration, bands, records),
                           bootstrap=False, strata=False),
    }]


# --- the report ----------------------------------------------------------------------------------


def _e(value: float) -> str:
    return "0" if value == 0 else f"{value:.2e}"


def _interval(values) -> str:
    return "-" if not values else f"{_e(values[0])}-{_e(values[1])}"


def markdown(result: dict) -> str:
    """The Markdown page of a result record."""
    out = [f"# Impostor FAR by photo condition ({result['calibration']})", "",
           f"`{result['command']}` on {result['machine']}; {result['created']}; "
           f"{result['wall_s']:.0f} s, of which {result['embedding_s']:.0f} s embedding "
           "(descriptors come from the cache where it holds them; a run from an empty cache: "
           "benchmarks/README.md).", "",
           result["how"], ""]
    for section in result["evaluations"]:
        ev = section["result"]
        out += [f"## {section['title']}", "", section["about"], ""]
        out += ["Ratio of measured to nominal FAR (**bold**: judged, i.e. at least "
                f"{ENOUGH_EXPECTED:g} false accepts expected at nominal; `!` outside "
                f"1/{TOLERANCE:g}..{TOLERANCE:g}x; `!!` also its 95% Clopper-Pearson interval "
                "outside that band, which can be clear with fewer pairs):", "",
                "| condition | pairing | faces | box px | blur | " + " | ".join(
                    f"{v} (FAR {nominal_far(v):.0e})" for v in LEVELS)
                + " | TAR at 0.7 (genuine pairs) |",
                "|---|---|---|---|---|" + "---|" * len(LEVELS) + "---|"]
        for ps in ev["pair_sets"]:
            cells = []
            for row in ps["levels"]:
                text = f"{row['ratio']:.2f}" if row["impostor_pairs"] else "-"
                if row["judged"]:
                    mark = ("!!" if row["verdict"] in ("FAR too high", "conservative")
                            else "!" if row["verdict"] != "holds" else "")
                    text = f"**{text}**{mark}"
                elif row["verdict"].startswith("FAR too high"):
                    text += "!!"
                cells.append(text)
            seven = next(r for r in ps["levels"] if r["level"] == 0.7)
            tar = ("-" if seven["tar"] is None
                   else f"{seven['tar']:.3f} ({seven['genuine_pairs']})")
            faces = str(ps["faces"]) + (f" x {ps['faces_second']}" if ps["faces_second"] else "")
            out.append(f"| {ps['condition']} | {ps['pairing']} | {faces} | "
                       f"{ps['box_width_median']} | {ps['blur_median']} | " + " | ".join(cells)
                       + f" | {tar} |")
        control = {ps["pairing"]: ps["levels"] for ps in ev["pair_sets"]
                   if ps["condition"] == "original (selected photos)"}
        out += ["", "The same, as a ratio to the control (FAR of the condition / FAR of the same "
                "photos unaltered, `original (selected photos)`, same pairing, same level): how "
                "much the condition itself moves the FAR. Judged cells only:", "",
                "| condition | pairing | " + " | ".join(str(v) for v in LEVELS) + " |",
                "|---|---|" + "---|" * len(LEVELS)]
        for ps in ev["pair_sets"]:
            if ps["condition"].startswith("original") or ps["pairing"] not in control:
                continue
            cells = []
            for row, base in zip(ps["levels"], control[ps["pairing"]], strict=True):
                cells.append(f"{row['far'] / base['far']:.2f}" if row["judged"] and base["far"]
                             else "-")
            out.append(f"| {ps['condition']} | {ps['pairing']} | " + " | ".join(cells) + " |")
        out += ["", "Pooled over the held-out condition set (" + ", ".join(HELD_OUT_SET) + "):", "",
                "| pairing | level | nominal FAR | impostor pairs | accepted | FAR | 95% CP | "
                "ratio | verdict | TAR (genuine pairs) |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for pairing, rows in ev["held_out_set_pooled"].items():
            for row in rows:
                out.append(f"| {pairing} | {row['level']} | {row['nominal_far']:.0e} | "
                           f"{row['impostor_pairs']} | {row['accepted']} | {_e(row['far'])} | "
                           f"{_interval(row['cp95'])} | {row['ratio']:.2f} | {row['verdict']} | "
                           f"{row['tar']} ({row['genuine_pairs']}) |")
        if section.get("brief"):
            out.append("")
            continue
        for key, title in (("by_smaller_box_width", "smaller face box of the pair"),
                           ("by_smaller_eye_distance", "smaller eye distance of the pair"),
                           ("by_larger_blur", "larger blur of the pair")):
            out += ["", f"All pair sets together, by the {title} (ratio to nominal; accepted / "
                    "impostor pairs):", "",
                    "| stratum | impostor pairs | " + " | ".join(str(v) for v in LEVELS)
                    + " | TAR at 0.6 / 0.7 (genuine pairs) |",
                    "|---|---|" + "---|" * len(LEVELS) + "---|"]
            for stratum in ev[key]:
                rows = stratum["levels"]
                cells = []
                for row in rows:
                    text = f"{row['ratio']:.2f} ({row['accepted']})"
                    cells.append(f"**{text}**" if row["judged"] else text)
                six, seven = rows[1], rows[2]
                out.append(f"| {stratum['stratum']} | {rows[0]['impostor_pairs']} | "
                           + " | ".join(cells) + f" | {six['tar']} / {seven['tar']} "
                           f"({seven['genuine_pairs']}) |")
        out += ["", "Every level in full (FAR, 95% Clopper-Pearson and identity-bootstrap "
                "intervals, pairs):", "",
                "| condition | pairing | level | impostor pairs | accepted | FAR | 95% CP | "
                "95% bootstrap | ratio | verdict | TAR | genuine pairs |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for ps in ev["pair_sets"]:
            for row in ps["levels"]:
                out.append(f"| {ps['condition']} | {ps['pairing']} | {row['level']} | "
                           f"{row['impostor_pairs']} | {row['accepted']} | {_e(row['far'])} | "
                           f"{_interval(row['cp95'])} | {_interval(row['bootstrap95'])} | "
                           f"{row['ratio']:.2f} | {row['verdict']} | {row['tar']} | "
                           f"{row['genuine_pairs']} |")
        out.append("")
    out += ["## Photos per condition (held-out half)", "",
            "What became of each photo: `ok` compared; `no_face`, `cut_off`, `covered`, "
            "`too_small`, `too_blurred`: refused by the server (4000); `other_face`: another "
            "usable face would be compared instead of the subject (not counted); "
            "`not_applicable`: the condition does not apply (e.g. the face is already smaller "
            "than the target box); `no_subject`: no usable face in the original.", "",
            "| condition | " + " | ".join(STATUSES) + " |", "|---|" + "---|" * len(STATUSES)]
    for condition, counts in result["statuses"].items():
        out.append(f"| {condition} | " + " | ".join(str(counts.get(s, 0)) for s in STATUSES) + " |")
    out += ["", "## Not measured", ""] + [f"- {line}" for line in result["not_measured"]] + [""]
    return "\n".join(out)


NOT_MEASURED = [
    "Real small or compressed photos: every condition is made from the labelled photos "
    "(mostly LFW, deep-funneled) with OpenCV; real cameras add noise, motion blur, other "
    "compression and lighting that these variants do not have.",
    "Genuine pairs in `multi_crop` (the group photos carry no identity labels).",
    "Levels whose expected false accepts at the nominal FAR are under "
    f"{ENOUGH_EXPECTED:g} (\"too few pairs\"): mostly 0.8 and 0.9 within one condition; 0.9 "
    "(FAR 1e-6) is judged nowhere except pooled.",
    "Demographic strata (the photos carry no such labels); the calibration README notes that "
    "the extreme tail is dominated by East and Southeast Asian faces.",
    "The 320 detector (FACEGATE_SMALL_DETECTOR=true), auto_rotate and check_quality.",
    "Photo byte limits: a variant is never encoded to a file, so a tiny photo that the server "
    "would refuse as under FACEGATE_MIN_PHOTO_BYTES (1 KiB) is still counted.",
]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def shipped_score(calibration: ScoreCalibration):
    """``score(distance, rows_a, rows_b)`` of the shipped table (no dependence on the faces)."""
    def score(distance: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.asarray(calibration.score(distance))
    return score


def check_against_compare(records: Records, calibration: ScoreCalibration, score,
                          samples: int = 2000, seed: int = 1) -> float:
    """Largest difference between the vectorised scores and `ScoreCalibration.compare` on
    random pairs (they must be the same function)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(records.photo), samples)
    b = rng.integers(0, len(records.photo), samples)
    vectorised = score(np.linalg.norm(records.descriptor[a] - records.descriptor[b], axis=1), a, b)
    exact = np.array([calibration.compare(records.descriptor[i].astype(np.float32),
                                          records.descriptor[j].astype(np.float32))
                      for i, j in zip(a, b, strict=True)])
    return float(np.max(np.abs(vectorised - exact)))


HOW = (
    "Impostor pairs are photos of two different people of the held-out identity half "
    "(hash of the corrected identity); `within`: both faces in the condition; `mixed`: the "
    "condition's face against every original photo of another person (a reference photo "
    "against a small or compressed one); `original (selected photos)` is the control for the "
    "conditions, the same photos unaltered. Accepted: score >= level, the server's score of the "
    "pair. FAR = accepted / impostor pairs; 95% intervals: Clopper-Pearson (pairs as if "
    "independent) and an identity bootstrap (identities drawn with replacement, "
    f"{BOOTSTRAP_REPLICATES} replicates: the honest one, since each photo is in thousands of "
    "pairs). Ratio = FAR / nominal FAR. TAR: genuine pairs (different photos of one person) "
    "in the same pairing accepted."
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--photos-per-half", type=int, default=1500,
                        help="photos per identity half that get the condition variants "
                             "(every non-LFW photo, then LFW by a hash rank; 0: all)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--no-bootstrap", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    started = time.perf_counter()
    hashes = model_hashes()
    raw = embed_all(args.data_dir, args.cache_dir, hashes, args.photos_per_half, args.threads)
    embedded_s = time.perf_counter() - started
    records = records_of(raw)
    selected = select_photos(labelled_photos(args.data_dir), args.photos_per_half)
    calibration = ScoreCalibration.from_file()
    score = shipped_score(calibration)
    gap = check_against_compare(records, calibration, score)
    if gap > 1e-5:
        raise AssertionError(f"vectorised scores differ from ScoreCalibration.compare by {gap}")
    evaluations = [{
        "title": "The shipped table, held-out identity half",
        "about": "`model_repository/calibration/face_embedder.json` as the server reads it.",
        "result": evaluate(records, selected, score, bootstrap=not args.no_bootstrap),
    }]
    evaluations += size_conditioned_evaluations(records, selected, calibration, args)
    command = " ".join(["python -m benchmarks.far_conditions"] +
                       [shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)])
    result = {
        "calibration": "model_repository/calibration/face_embedder.json",
        "command": command,
        "machine": machine(),
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": round(time.perf_counter() - started, 1),
        "embedding_s": round(embedded_s, 1),
        "onnx_sha256": hashes,
        "how": HOW,
        "levels": list(LEVELS),
        "enough_expected_false_accepts": ENOUGH_EXPECTED,
        "tolerance": TOLERANCE,
        "conditions": [c.__dict__ for c in CONDITIONS] + [
            {"name": "grid_crop", "kind": "grid", "face_box_px": GRID_FACE_PX,
             "grid": [GRID_COLUMNS, GRID_ROWS], "jpeg_quality": GRID_JPEG_QUALITY,
             "crop_margin_box_widths": CROP_MARGIN},
            {"name": "multi_crop", "kind": "group photos", "crop_margin_box_widths": CROP_MARGIN,
             "excluded": MULTI_EXCLUDED, "not_against_labelled": MULTI_NOT_AGAINST_LABELLED}],
        "held_out_set": list(HELD_OUT_SET),
        "photos_per_half": args.photos_per_half,
        "identities": {h: len({i for i in map(corrected_identity, labelled_photos(args.data_dir))
                                if half_of(i) == h}) for h in ("fit", "held_out")},
        "vectorised_score_vs_compare_max_difference": gap,
        "statuses": status_counts(raw, "held_out"),
        "evaluations": evaluations,
        "not_measured": NOT_MEASURED,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "far_conditions.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out_dir / "far_conditions.md").write_text(markdown(result))
    LOGGER.info("wrote %s in %.0f s", args.out_dir / "far_conditions.md",
                time.perf_counter() - started)


if __name__ == "__main__":
    main(sys.argv[1:])
