"""How well the planarity cue (`preprocessing.motion.planarity`) tells live faces from flat ones.

    python -m benchmarks.motion_eval [--max-side 640] [--seed-offset 0] [--keep DIR]

For every live video (video/live), every replay video (spoof/video), still-photo videos
synthesised from real photos (`PHOTOS`, `benchmarks.synth_attacks.still_photo_video`), the
same photo videos recompressed (CRF 28, and hard: CRF 35), still-photo videos of the first
frame of live videos, and screen replays synthesised from live videos (`SCREEN_SOURCES`), it
prints residual_p90, score, pairs measured and the time planarity took per pair.

Frames are sampled every 0.2 s over the first 4 s (decoded with PyAV), optionally scaled
so the long side is at most --max-side. Faces come from the built detector run in-process
(ONNX Runtime, no Triton); the subject is the longest face track (a replay video can show the
attacker's own face next to the screen). The synthesised videos are written to a temporary
directory (or --keep DIR) and read back from there; nothing is committed.
Results: `benchmarks/motion.md`.
"""

from __future__ import annotations

import argparse
import io
import math
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from benchmarks.inprocess import InProcessPipeline
from benchmarks.quality_eval import DATA
from benchmarks.synth_attacks import recompress, screen_replay_video, still_photo_video
from preprocessing.detection import Face
from preprocessing.motion import Box, MotionEvidence, planarity

UNGATED = {"window_s": 3.5, "min_motion_pct": 0.0, "min_pairs": 1, "max_pairs": 10**6,
           "budget_pairs": float("inf")}
"""How benchmarks/motion.md measured the cue: every pair of the first 3.5 s."""

SAMPLE_STEP_S = 0.2
SAMPLE_SECONDS = 4.0
PHOTOS = (  # several identities and sources: face_recognition, deepface, LFW, dlib, minivision
    "faces/Barack_Obama/facerec_obama.jpg",
    "faces/Angelina_Jolie/deepface_img1.jpg",
    "faces/Deepface_P03/deepface_img9.jpg",
    "faces/Deepface_P07/deepface_img17.jpg",
    "faces/Joseph_Biden/Joseph_Biden_0001.jpg",
    "faces/Jennifer_Aniston/Jennifer_Aniston_0001.jpg",
    "faces/Colin_Powell/Colin_Powell_0002.jpg",
    "faces/John_Savage/dlib_000289_01099139.jpg",
    "faces/Angelina_Jolie/Angelina_Jolie_0001.jpg",
    "spoof/images/live/minivision_image_T1.jpg",
)
SCREEN_SOURCES = (
    "video/live/lestari15_real.mp4",
    "video/live/liveportrait_driving_d0.mp4",
    "video/live/liveportrait_driving_d13.mp4",
    "video/live/liveportrait_source_s18.mp4",
    "video/live/zubair_real.webm",
)
RECOMPRESS_CRF = (28, 35)


def sample_frames(video_bytes: bytes, *, step_s: float = SAMPLE_STEP_S,
                  seconds: float = SAMPLE_SECONDS, max_side: int | None = None
                  ) -> tuple[list[np.ndarray], list[float]]:
    """BGR frames every step_s (the first decoded frame at or after each tick) and their times."""
    frames, times = [], []
    with av.open(io.BytesIO(video_bytes)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if frame.time is None or frame.time > seconds:
                break
            if frame.time + 1e-6 < len(times) * step_s:
                continue
            image = frame.to_ndarray(format="bgr24")
            if max_side and max(image.shape[:2]) > max_side:
                scale = max_side / max(image.shape[:2])
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            frames.append(image)
            times.append(float(frame.time))
    return frames, times


def subject_boxes(faces: Sequence[Sequence[Face]]) -> list[Box | None]:
    """The boxes of the longest face track (ties: the larger face), None where it is absent.

    A face joins the track whose last box (in the previous frame, or the one before) has its
    centre within 0.75 box widths; otherwise it starts a track.
    """
    tracks: list[dict[int, Box]] = []
    for index, frame_faces in enumerate(faces):
        taken: set[int] = set()
        for face in sorted(frame_faces, key=lambda f: -f.box[2] * f.box[3]):
            best, best_distance = None, math.inf
            for number, track in enumerate(tracks):
                last = max(track)
                if number in taken or last >= index or last < index - 2:
                    continue
                lx, ly, lw, lh = track[last]
                distance = math.dist(face.center, (lx + lw / 2, ly + lh / 2))
                if distance < 0.75 * max(lw, face.box[2]) and distance < best_distance:
                    best, best_distance = number, distance
            if best is None:
                tracks.append({index: face.box})
                best = len(tracks) - 1
            else:
                tracks[best][index] = face.box
            taken.add(best)
    if not tracks:
        return [None] * len(faces)
    subject = max(tracks, key=lambda t: (len(t), np.mean([b[2] * b[3] for b in t.values()])))
    return [subject.get(index) for index in range(len(faces))]


@dataclass(frozen=True)
class Row:
    kind: str
    name: str
    evidence: MotionEvidence
    ms_per_pair: float


def measure(detector: InProcessPipeline, video_bytes: bytes, *, max_side: int | None = None
            ) -> tuple[MotionEvidence, float]:
    """Planarity evidence for a video, and the milliseconds planarity took per pair."""
    frames, times = sample_frames(video_bytes, max_side=max_side)
    boxes = subject_boxes([detector.detect(frame) for frame in frames])
    started = time.perf_counter()
    # The cue's separating power: every measurable pair of the first 3.5 s, no motion gate
    # (the server gates them: preprocessing.motion.MIN_MOTION_PCT).
    evidence = planarity(frames, times, boxes, **UNGATED)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return evidence, elapsed_ms / max(evidence.pairs, 1)


def videos(folder: Path, seed_offset: int = 0) -> Iterator[tuple[str, str, bytes]]:
    """(kind, name, bytes) for every video: real ones, then synthesised ones written to folder
    and read back."""
    for kind, sub in (("live", "video/live"), ("replay", "spoof/video")):
        for path in sorted((DATA / sub).iterdir()):
            yield kind, path.name, path.read_bytes()

    def written(name: str, data: bytes) -> bytes:
        (folder / name).write_bytes(data)
        return (folder / name).read_bytes()

    for number, photo in enumerate(PHOTOS):
        seed, stem = seed_offset + number, Path(photo).stem
        video = written(f"photo_{seed}_{stem}.mp4",
                        still_photo_video(cv2.imread(str(DATA / photo)), seed=seed))
        yield "photo", Path(photo).name, video
        for crf in RECOMPRESS_CRF:
            yield (f"photo-crf{crf}", Path(photo).name,
                   written(f"photo_crf{crf}_{seed}_{stem}.mp4", recompress(video, crf=crf)))
    for number, source in enumerate(SCREEN_SOURCES):
        seed, live, stem = seed_offset + number, (DATA / source).read_bytes(), Path(source).stem
        first_frame = sample_frames(live, seconds=0.0)[0][0]
        yield ("photo-of-frame", Path(source).name,
               written(f"frame_photo_{seed}_{stem}.mp4", still_photo_video(first_frame, seed=seed)))
        yield ("screen", Path(source).name,
               written(f"screen_{seed}_{stem}.mp4", screen_replay_video(live, seed=seed)))


def summary(rows: Sequence[Row]) -> list[str]:
    """Per kind: how many were measured, and the range of residual_p90."""
    lines = []
    for kind in dict.fromkeys(row.kind for row in rows):
        values = [r.evidence.residual_p90 for r in rows if r.kind == kind]
        measured = [v for v in values if not math.isnan(v)]
        low, high = (min(measured), max(measured)) if measured else (math.nan, math.nan)
        lines.append(f"| {kind} | {len(values)} | {len(measured)} | {low:.3f} | {high:.3f} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-side", type=int, default=None,
                        help="scale sampled frames so the long side is at most this")
    parser.add_argument("--seed-offset", type=int, default=0,
                        help="seeds of the synthesised videos start here")
    parser.add_argument("--keep", type=Path, default=None,
                        help="write the synthesised videos here instead of a temporary directory")
    args = parser.parse_args(argv)
    detector = InProcessPipeline()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        print("| kind | video | residual_p90 (% face width) | score | pairs | ms per pair |")
        print("|---|---|---|---|---|---|")
        for kind, name, data in videos(folder, args.seed_offset):
            evidence, ms = measure(detector, data, max_side=args.max_side)
            rows.append(Row(kind, name, evidence, ms))
            print(f"| {kind} | {name} | {evidence.residual_p90:.3f} | {evidence.score:.2f} | "
                  f"{evidence.pairs} | {ms:.1f} |", flush=True)
    print()
    print("| kind | videos | measured | lowest residual_p90 | highest residual_p90 |")
    print("|---|---|---|---|---|")
    print("\n".join(summary(rows)))
    all_ms = [r.ms_per_pair for r in rows if r.evidence.pairs]
    print(f"\nplanarity: median {np.median(all_ms):.1f} ms per pair over {len(all_ms)} videos")


if __name__ == "__main__":
    main()
