"""A second liveness network for issue 14, judged before building it in: hairymax's
`AntiSpoofing_bin_1.5_128` (../shared/models), on the liveness evaluation's clips.

    .venv/bin/python -m benchmarks.pad_candidate

The question: MiniFASNet refuses a few degraded live copies (over-exposed, zoomed, small faces;
`results/liveness_eval.md`) with low P(real) in every frame. Would a second, independently
trained net tell those live people from the attacks that MiniFASNet catches, so that it could
rescue them? Each clip of `benchmarks.liveness_eval` (live, degraded live, synthesised and real
attacks) goes through the server's video path in-process, as the evaluation runs it; on the
same 8 subject frames MiniFASNet scores, the candidate's P(live) is averaged (its input: a
square crop of 1.5x the face box, zero-padded at the frame's edges, 128x128 RGB / 255, as its
MANIFEST entry states). Reported per half of `benchmarks.split`: its BPCER and APCER alone at
a few thresholds, and which of MiniFASNet's refused live copies it would call live beside how
many of MiniFASNet's caught attacks it would call live too. The weights' licence is its own
question (no LICENSE file; trained on CelebA-Spoof, non-commercial research data): this is an
evaluation, nothing of it ships.

The same frames also answer the question for MiniFASNet's own two nets: V2 (2.7x crop) and V1SE
(4.0x crop), whose P(real) the shipped path averages over nets and frames. Each of a few other
readings (`NET_FUSIONS`: one net alone, the higher or lower net, the median frame...) re-decides
every clip with the other cues (motion, moire, the 2 s rule) as they were, per half: a reading
worth shipping would refuse fewer live copies on the fit half without passing more attacks,
and hold on the held-out half. Writes ``benchmarks/results/pad_candidate.{json,md}``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import time
from collections.abc import Callable

import cv2
import numpy as np
import onnxruntime as ort

from benchmarks.liveness_eval import THRESHOLD, identity, samples
from benchmarks.paths import DATA, REPO_ROOT, write_results
from benchmarks.split import HALVES, half_of
from frontend.contract.codes import ContractError
from frontend.inference.onnx import OnnxModels
from frontend.service.faces import FacePipeline, Sighting, fuse
from frontend.service.photos import PhotoService
from frontend.service.stages import Stages
from frontend.service.video import LIVENESS_FRAMES, VideoService, spread
from model_repository.specs import FACE_LIVENESS, WeightFile
from model_repository.weights import verify
from preprocessing.alignment import liveness_crops
from preprocessing.image import PhotoLimits
from preprocessing.video import VideoError, VideoLimits

CANDIDATE = WeightFile(
    name="minifasnet_onnx_128_hairymax/AntiSpoofing_bin_1.5_128.onnx",
    sha256="a6c0553fab996a56962baeb0a49013a03c32b866999f6aea76936b6833929bda",
    size_bytes=1896015,
    source="hairymax/Face-AntiSpoofing @ eed4e278d80e60c2c63ea8e480886266e566ec63 : "
           "saved_models/AntiSpoofing_bin_1.5_128.onnx",
    licence="no LICENSE file (README badge: BSD); trained on CelebA-Spoof (non-commercial)",
)
CROP_SCALE, SIDE = 1.5, 128
THRESHOLDS = (0.5, 0.8, 0.9, 0.99)
SHIPPED = "mean of both nets (shipped)"
NET_FUSIONS: dict[str, Callable[[np.ndarray], float]] = {
    SHIPPED: lambda nets: float(nets.mean()),
    "V2 alone (2.7x crop)": lambda nets: float(nets[:, 0].mean()),
    "V1SE alone (4.0x crop)": lambda nets: float(nets[:, 1].mean()),
    "the higher net": lambda nets: float(nets.mean(axis=0).max()),
    "the lower net": lambda nets: float(nets.mean(axis=0).min()),
    "the median frame": lambda nets: float(np.median(nets.mean(axis=1))),
    "the upper half of the frames": lambda nets: float(
        np.sort(nets.mean(axis=1))[len(nets) // 2:].mean()),
}
"""Readings of MiniFASNet's P(real) over a clip: [frames, 2] (V2, V1SE) -> one P(real)."""


def crop(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """3 x 128 x 128 float RGB in [0, 1]: the square of 1.5x the box's longer side around its
    centre, zero beyond the frame."""
    x, y, w, h = box
    side = round(max(w, h) * CROP_SCALE)
    x0, y0 = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    height, width = image.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - width, y0 + side - height)
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    square = padded[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
    rgb = cv2.cvtColor(cv2.resize(square, (SIDE, SIDE)), cv2.COLOR_BGR2RGB)
    return rgb.astype(np.float32).transpose(2, 0, 1) / 255.0


def p_live(session: ort.InferenceSession, sightings: list[Sighting]) -> float:
    """Mean softmax P(live) over the frames (the model's batch dimension is fixed at 1)."""
    logits = np.concatenate([session.run(None, {"input": crop(s.image, s.face.box)[None]})[0]
                             for s in sightings])
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return float((exp[:, 0] / exp.sum(axis=1)).mean())


def passes(row: dict, fusion: str) -> bool:
    """The clip's decision with P(real) read by `fusion`, every other cue as it was."""
    if row["status"] == "short_time":
        return False
    cues = {"p_real": NET_FUSIONS[fusion](np.asarray(row["nets"])),
            "motion": math.nan if row["motion"] is None else row["motion"],
            "moire": math.nan if row["moire"] is None else row["moire"]}
    return fuse(cues)[0] >= THRESHOLD


async def nets_p_real(models: OnnxModels, scored: list[Sighting]) -> np.ndarray:
    """[frames, 2]: each net's P(real) on the frames, from the same crops the server takes."""
    crops = [liveness_crops(s.image, s.face) for s in scored]
    result = await models.infer(FACE_LIVENESS, {"crop_v2": np.stack([c[0] for c in crops]),
                                                "crop_v1se": np.stack([c[1] for c in crops])})
    return result["probs"][:, :, 1]


def _evidence(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


async def evaluate(session: ort.InferenceSession) -> list[dict]:
    rows = []
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        models = OnnxModels(executor=pool, threads=1)
        pipeline = FacePipeline(models, Stages(pool))
        photos = PhotoService(pipeline, PhotoLimits())
        videos = VideoService(pipeline, photos, VideoLimits(), threshold=THRESHOLD)
        for set_name, kind, name, bona_fide, make in samples(DATA, ("live", "degraded",
                                                                    "attacks")):
            row = {"set": set_name, "kind": kind, "file": name, "bona_fide": bona_fide}
            row["half"] = half_of(identity(row))
            try:
                result = await videos.silent_liveness(await asyncio.to_thread(make))
            except (ContractError, VideoError) as error:
                rows.append(row | {"error": str(error)})
                continue
            seen = result.sightings()
            scored = [seen[i] for i in spread(list(range(len(seen))), LIVENESS_FRAMES)]
            row |= {"passed": result.passed, "score": round(result.score, 4),
                    "status": result.status, "motion": _evidence(result.motion.score),
                    "moire": _evidence(result.moire_score),
                    "nets": np.round(await nets_p_real(models, scored), 4).tolist(),
                    "candidate": round(await asyncio.to_thread(p_live, session, scored), 4)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def summary(rows: list[dict]) -> dict:
    scored = [r for r in rows if "candidate" in r]
    out: dict = {}
    for half in HALVES:
        bona = [r for r in scored if r["half"] == half and r["bona_fide"]]
        attacks = [r for r in scored if r["half"] == half and not r["bona_fide"]]
        out[half] = {
            "bona_fide": len(bona), "attacks": len(attacks),
            "alone": {str(t): {"bpcer": sum(r["candidate"] < t for r in bona),
                               "apcer": sum(r["candidate"] >= t for r in attacks)}
                      for t in THRESHOLDS},
            "refused_live": [{"file": r["file"], "score": r["score"],
                              "candidate": r["candidate"]} for r in bona if not r["passed"]],
            "caught_attacks_called_live": {
                str(t): sum(r["candidate"] >= t for r in attacks if not r["passed"])
                for t in THRESHOLDS},
            "caught_attacks": sum(not r["passed"] for r in attacks),
            "net_fusions": {name: {"bpcer": sum(not passes(r, name) for r in bona),
                                   "apcer": sum(passes(r, name) for r in attacks)}
                            for name in NET_FUSIONS},
            "shipped_reproduced": sum(passes(r, SHIPPED) == r["passed"] for r in bona + attacks),
        }
    return out


def markdown(report: dict) -> str:
    lines = [
        "# Other liveness scores judged before building them in: a second network, and "
        "MiniFASNet's two nets read otherwise", "",
        f"`{report['command']}`, {report['date']}; candidate `{CANDIDATE.name}` "
        f"({CANDIDATE.licence}); clips of `benchmarks.liveness_eval`, split by person.", "",
        "| half | threshold | BPCER alone | APCER alone | MiniFASNet's caught attacks it calls "
        "live |", "|---|---|---|---|---|",
    ]
    for half, s in report["summary"].items():
        for t in THRESHOLDS:
            a = s["alone"][str(t)]
            lines.append(f"| {half} | {t} | {a['bpcer']} / {s['bona_fide']} | {a['apcer']} / "
                         f"{s['attacks']} | {s['caught_attacks_called_live'][str(t)]} / "
                         f"{s['caught_attacks']} |")
    lines += ["", "Live copies the shipped path refuses, and the candidate's P(live):", ""]
    for half, s in report["summary"].items():
        for r in s["refused_live"]:
            lines.append(f"- {half}: {r['file']}: score {r['score']}, candidate {r['candidate']}")
    return "\n".join(lines + _fusions_markdown(report)) + "\n"


def _fusions_markdown(report: dict) -> list[str]:
    halves = [report["summary"][half] for half in HALVES]
    reproduced = sum(s["shipped_reproduced"] for s in halves)
    clips = sum(s["bona_fide"] + s["attacks"] for s in halves)
    lines = ["", "MiniFASNet's two nets read otherwise (`NET_FUSIONS`): each clip re-decided with "
             f"its other cues as they were (the shipped reading gives the served decision on "
             f"{reproduced} of {clips} clips); errors / clips:", "",
             "| P(real) read as | " + " | ".join(
                 f"{half}: live refused | {half}: attacks passed" for half in HALVES) + " |",
             "|---|" + "---|---|" * len(HALVES)]
    for name in NET_FUSIONS:
        cells = [f"{s['net_fusions'][name]['bpcer']} / {s['bona_fide']} | "
                 f"{s['net_fusions'][name]['apcer']} / {s['attacks']}" for s in halves]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Each net's P(real) per frame where the shipped path errs:", ""]
    for r in report["rows"]:
        if "nets" in r and r["passed"] != r["bona_fide"]:
            v2, v1se = (", ".join(f"{p:.2f}" for p in net) for net in np.asarray(r["nets"]).T)
            kind = "live" if r["bona_fide"] else "attack"
            lines.append(f"- {r['file']} ({kind}, {r['half']}): V2 {v2}; V1SE {v1se}")
    return lines


def main() -> int:
    path = verify(REPO_ROOT.parent / "shared" / "models" / CANDIDATE.name, CANDIDATE)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    started = time.time()
    rows = asyncio.run(evaluate(session))
    report = {"command": "python -m benchmarks.pad_candidate",
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
              "summary": summary(rows), "rows": rows}
    write_results("pad_candidate", report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
