"""Silent-liveness evaluation in ISO/IEC 30107-3 terms, through the server's own VideoService
and face pipeline with the real models, run in-process (`frontend.inference.onnx.OnnxModels`).

    .venv/bin/python -m benchmarks.liveness_eval [--data-dir ../shared/data]

Bona fide: every video in ``video/live`` (BPCER). Attacks, by type (APCER each):

- ``replay_video``: the replay recordings in ``spoof/video``;
- ``spoof_photo_<kind>``: each photo in ``spoof/images/<kind>`` (print, replay, mask, other),
  turned into a 4 s hand-held video (`benchmarks.synth_attacks.still_photo_video`);
- ``still_photo``: real face photos of 10 people, turned into hand-held videos the same way;
- ``screen_replay``: 5 live videos re-rendered as if filmed off a screen.

Writes ``benchmarks/results/liveness_eval.{json,md}``: per file P(real), the motion residual,
the fused score and the decision, then APCER/BPCER at the configured threshold.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.synth_attacks import screen_replay_video, still_photo_video
from frontend.contract.codes import ContractError
from frontend.inference.onnx import OnnxModels
from frontend.service.faces import FacePipeline
from frontend.service.photos import PhotoService
from frontend.service.stages import Stages
from frontend.service.video import VideoService
from preprocessing.image import PhotoLimits
from preprocessing.video import VideoError, VideoLimits

RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLD = 0.5
STILL_PHOTOS = [
    "faces/Barack_Obama/facerec_obama.jpg",
    "faces/Angelina_Jolie/deepface_img4.jpg",
    "faces/Alex_Lacamoire/facerec_img1.jpg",
    "faces/Aaron_Eckhart/Aaron_Eckhart_0001.jpg",
    "faces/BBT_Penny/faceapi_penny1.png",
    "faces/Joseph_Biden/Joseph_Biden_0001.jpg",
    "faces/Tony_Blair/Tony_Blair_0001.jpg",
    "faces/Colin_Powell/Colin_Powell_0001.jpg",
    "faces/Serena_Williams/Serena_Williams_0001.jpg",
    "spoof/images/live/minivision_image_T1.jpg",
]
SCREEN_SOURCES = [
    "video/live/liveportrait_driving_d0.mp4",
    "video/live/lestari15_real.mp4",
    "video/live/liveportrait_source_s18.mp4",
    "video/live/zubair_real.webm",
    "video/live/liveportrait_driving_d12.mp4",
]


def _samples(data: Path) -> list[tuple[str, str, bool, object]]:
    """(kind, name, bona fide, a function giving the video bytes)."""
    samples: list[tuple[str, str, bool, object]] = []
    for path in sorted((data / "video/live").iterdir()):
        samples.append(("bona_fide", path.name, True, path.read_bytes))
    for path in sorted((data / "spoof/video").iterdir()):
        samples.append(("replay_video", path.name, False, path.read_bytes))
    for folder in sorted((data / "spoof/images").iterdir()):
        if folder.name == "live":
            continue
        for path in sorted(folder.iterdir()):
            samples.append(
                (
                    f"spoof_photo_{folder.name}",
                    path.name,
                    False,
                    lambda p=path: still_photo_video(cv2.imread(str(p)), seed=3),
                )
            )
    for number, name in enumerate(STILL_PHOTOS):
        path = data / name
        if path.is_file():
            samples.append(
                (
                    "still_photo",
                    path.name,
                    False,
                    lambda p=path, n=number: still_photo_video(cv2.imread(str(p)), seed=n),
                )
            )
    for number, name in enumerate(SCREEN_SOURCES):
        path = data / name
        samples.append(
            (
                "screen_replay",
                path.name,
                False,
                lambda p=path, n=number: screen_replay_video(p.read_bytes(), seed=n),
            )
        )
    return samples


async def _evaluate(data: Path, service: VideoService) -> list[dict]:
    rows = []
    for kind, name, bona_fide, make in _samples(data):
        video = make()
        started = time.perf_counter()
        row = {"kind": kind, "file": name, "bona_fide": bona_fide}
        try:
            result = await service.silent_liveness(video)
        except (ContractError, VideoError) as error:
            row |= {"status": "error", "error": str(error), "passed": False}
        else:
            row |= {
                "p_real": round(result.p_real, 4),
                "motion_residual_p90": round(result.motion.residual_p90, 3),
                "motion_score": round(result.motion.score, 4),
                "score": round(result.score, 4),
                "face_seconds": round(result.face_seconds, 2),
                "status": result.status,
                "passed": result.passed,
            }
        row["seconds"] = round(time.perf_counter() - started, 2)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _rates(rows: list[dict]) -> dict[str, dict]:
    rates: dict[str, dict] = {}
    for kind in dict.fromkeys(r["kind"] for r in rows):
        group = [r for r in rows if r["kind"] == kind]
        if kind == "bona_fide":
            errors = sum(not r["passed"] for r in group)
            rates[kind] = {"BPCER": errors / len(group), "rejected": errors, "n": len(group)}
        else:
            errors = sum(r["passed"] for r in group)
            rates[kind] = {"APCER": errors / len(group), "accepted": errors, "n": len(group)}
    return rates


def _markdown(rows: list[dict], rates: dict[str, dict], command: str) -> str:
    lines = [
        "# Silent liveness evaluation (ISO/IEC 30107-3 terms)",
        "",
        f"Command: `{command}`; machine: {platform.node()}, {platform.machine()}, "
        f"{platform.python_version()}; threshold {THRESHOLD}.",
        "",
        "| type | n | error rate |",
        "|---|---|---|",
    ]
    for kind, rate in rates.items():
        name, value = ("BPCER", rate["BPCER"]) if "BPCER" in rate else ("APCER", rate["APCER"])
        lines.append(f"| {kind} | {rate['n']} | {name} {value:.1%} |")
    lines += [
        "",
        "| type | file | P(real) | motion p90 | motion score | score | face s | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['kind']} | {r['file']} | {r.get('p_real', '')} | "
            f"{r.get('motion_residual_p90', '')} | {r.get('motion_score', '')} | "
            f"{r.get('score', '')} | {r.get('face_seconds', '')} | "
            f"{r['status']}{' (' + r['error'] + ')' if 'error' in r else ''} |"
        )
    return "\n".join(lines) + "\n"


async def _main(data: Path) -> None:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        pipeline = FacePipeline(OnnxModels(executor=pool, threads=2), Stages(pool))
        photos = PhotoService(pipeline, PhotoLimits())
        videos = VideoService(pipeline, photos, VideoLimits(), threshold=THRESHOLD)
        rows = await _evaluate(data, videos)
    rates = _rates(rows)
    command = ".venv/bin/python -m benchmarks.liveness_eval"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "liveness_eval.json").write_text(
        json.dumps(
            {"command": command, "threshold": THRESHOLD, "rates": rates, "rows": rows}, indent=1
        )
    )
    (RESULTS / "liveness_eval.md").write_text(_markdown(rows, rates, command))
    print(json.dumps(rates, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    args = parser.parse_args()
    np.seterr(all="ignore")
    asyncio.run(_main(args.data_dir))


if __name__ == "__main__":
    main()
