"""Model-level benchmark: faces per second and latency through Triton, with and without batching.

    python -m benchmarks.models [--seconds 5] [--out benchmarks/results/models.json]

For the detector and the embedder, at concurrency 1, 4, 16 and 64 (each caller sends one face
per request, back to back, for a fixed time after a warm-up), in one run on one machine:

- ``triton``: the embedded tritonserver with the configs `make models` writes (dynamic batching);
- ``triton-nobatch``: the same server and files with dynamic batching left out;
- ``ort-inprocess``: the same ONNX file in an in-process ONNX Runtime session, called from as
  many threads as there are callers (what a server without Triton would do).

It also sweeps the embedder's ``max_queue_delay_microseconds`` at concurrency 1 and 16, the
data behind the delay in `model_repository/specs.py`. Results go to JSON and a Markdown table.
Latency is measured around each call with ``time.perf_counter`` and reported as percentiles of
all calls in the window; no figure is asserted anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import dataclasses
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from benchmarks.inprocess import InProcessPipeline
from benchmarks.paths import DATA, REPO_ROOT
from deploy.embedded_triton import (
    DEFAULT_MODEL_REPOSITORY,
    EmbeddedTriton,
    EmbeddedTritonConfig,
    TritonPorts,
)
from frontend.inference.triton import TritonModels
from model_repository.build import write_embedded
from model_repository.specs import FACE_DETECTOR, FACE_EMBEDDER, ModelSpec
from preprocessing.alignment import align_chip
from preprocessing.detection import letterbox

LOGGER = logging.getLogger(__name__)
EMBEDDED = DEFAULT_MODEL_REPOSITORY
CONCURRENCY = (1, 4, 16, 64)
DELAYS_US = (0, 500, 1000, 2000, 4000)
WARMUP_S = 1.0


def sample_inputs() -> tuple[np.ndarray, np.ndarray]:
    """One real letterboxed photo and one real aligned chip."""
    photo = cv2.imread(str(DATA / "faces/Eric_Daze/Eric_Daze_0001.jpg"))
    if photo is None:
        photo = np.random.default_rng(0).integers(0, 255, (250, 250, 3), dtype=np.uint8)
    boxed = letterbox(photo)
    pipeline = InProcessPipeline()
    faces = pipeline.detect(photo)
    pipeline.close()
    landmarks = faces[0].landmarks if faces else np.array(
        [[90, 110], [160, 110], [125, 150], [95, 185], [155, 185]], np.float32)
    return boxed.image[None], align_chip(photo, landmarks)[None]


async def measure(call: Callable[[], Awaitable[object]], concurrency: int, seconds: float) -> dict:
    """Run `concurrency` callers back to back; latency of every call that ends in the window."""
    latencies: list[float] = []
    measuring = False
    stop_at = time.perf_counter() + WARMUP_S + seconds

    async def caller() -> None:
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                return
            await call()
            if measuring:
                latencies.append(time.perf_counter() - started)

    async def clock() -> float:
        nonlocal measuring
        await asyncio.sleep(WARMUP_S)
        measuring = True
        begun = time.perf_counter()
        await asyncio.sleep(seconds)
        measuring = False
        return time.perf_counter() - begun

    results = await asyncio.gather(clock(), *(caller() for _ in range(concurrency)))
    window = results[0]
    ms = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "calls": len(latencies),
        "faces_per_s": round(len(latencies) / window, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def write_repository(target: Path, specs: dict[str, ModelSpec], dynamic_batching: bool) -> Path:
    """An embedded repository over the built ONNX files, with configs from the given specs."""
    for name, spec in specs.items():
        onnx_path = (EMBEDDED / name / "1" / "model.onnx").resolve()
        write_embedded(spec, onnx_path, target, dynamic_batching=dynamic_batching)
    return target


async def run_triton(specs: dict[str, ModelSpec], dynamic_batching: bool, inputs: dict,
                     seconds: float, concurrencies=CONCURRENCY) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        repository = write_repository(Path(tmp), specs, dynamic_batching)
        ports = TritonPorts(18100, 18101, 18102)
        config = EmbeddedTritonConfig(model_repository=repository, ports=ports)
        with EmbeddedTriton(config) as server:
            client = TritonModels(server.grpc_url, timeout_s=60)
            try:
                for name, spec in specs.items():
                    tensors = {spec.inputs[0].name: inputs[name]}
                    for concurrency in concurrencies:
                        row = await measure(lambda s=spec, t=tensors: client.infer(s, t),
                                            concurrency, seconds)
                        rows.append({"model": name, **row})
                        LOGGER.info("%s %s", name, row)
            finally:
                await client.close()
    return rows


async def run_inprocess(name: str, tensor: np.ndarray, seconds: float) -> list[dict]:
    session = ort.InferenceSession(str(EMBEDDED / name / "1" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    rows = []
    for concurrency in CONCURRENCY:
        with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
            loop = asyncio.get_running_loop()

            def call(loop=loop, pool=pool):
                return loop.run_in_executor(pool, session.run, None, {input_name: tensor})

            row = await measure(call, concurrency, seconds)
        rows.append({"model": name, **row})
        LOGGER.info("%s in-process %s", name, row)
    return rows


async def main_async(seconds: float) -> dict:
    image, chip = sample_inputs()
    inputs = {"face_detector": image, "face_embedder": chip}
    specs = {"face_detector": FACE_DETECTOR, "face_embedder": FACE_EMBEDDER}
    results: dict[str, list[dict]] = {}
    results["triton"] = await run_triton(specs, True, inputs, seconds)
    results["triton-nobatch"] = await run_triton(specs, False, inputs, seconds)
    results["ort-inprocess"] = [
        row for name in specs for row in await run_inprocess(name, inputs[name], seconds)
    ]
    sweep = []
    for delay in DELAYS_US:
        spec = dataclasses.replace(FACE_EMBEDDER, batching=dataclasses.replace(
            FACE_EMBEDDER.batching, max_queue_delay_microseconds=delay))
        for row in await run_triton({"face_embedder": spec}, True, inputs, seconds, (1, 16)):
            sweep.append({"max_queue_delay_us": delay, **row})
    results["embedder-delay-sweep"] = sweep
    return results


def markdown(results: dict) -> str:
    lines = ["| model | concurrency | " + " | ".join(
        f"{mode} faces/s (p50 / p99 ms)" for mode in ("triton", "triton-nobatch", "ort-inprocess")
    ) + " | triton / ort |", "|---|---|---|---|---|---|"]
    index = {(m, r["model"], r["concurrency"]): r for m in results for r in results[m]
             if "max_queue_delay_us" not in r}
    for model in ("face_detector", "face_embedder"):
        for c in CONCURRENCY:
            cells = []
            for mode in ("triton", "triton-nobatch", "ort-inprocess"):
                r = index[(mode, model, c)]
                cells.append(f"{r['faces_per_s']} ({r['p50_ms']} / {r['p99_ms']})")
            ratio = (index[("triton", model, c)]["faces_per_s"]
                     / index[("ort-inprocess", model, c)]["faces_per_s"])
            lines.append(f"| {model} | {c} | " + " | ".join(cells) + f" | {ratio:.2f}x |")
    lines += ["", "| embedder max_queue_delay_us | concurrency | faces/s | p50 ms | p99 ms |",
              "|---|---|---|---|---|"]
    for r in results["embedder-delay-sweep"]:
        lines.append(f"| {r['max_queue_delay_us']} | {r['concurrency']} | {r['faces_per_s']} | "
                     f"{r['p50_ms']} | {r['p99_ms']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Model-level benchmark through Triton.")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks/results/models.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("tritonserver").setLevel(logging.WARNING)
    results = asyncio.run(main_async(args.seconds))
    report = {
        "command": f"python -m benchmarks.models --seconds {args.seconds:g}",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "onnxruntime": ort.__version__},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(results)
    args.out.with_suffix(".md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
