"""`make bench`: the HTTP load benchmark of every endpoint, its baselines, and the model sweeps.

    .venv/bin/python -m benchmarks.load [--seconds 6] [--video-seconds 8]
                                        [--max-step-seconds 20] [--quick]

One run on one machine, in this order (each server is a separate process, started the way an
operator starts it, then stopped before the next):

1. facegate (`python -m frontend`, embedded Triton, the committed configs): every endpoint,
   concurrency 1..64, each step at least 3 predicted latencies long; a step that would need
   more than 20 s only measures a deeper queue on a saturated server and is skipped;
2. the same server with Triton's dynamic batching left out: image_verification;
3. the baselines behind a minimal aiohttp handler (`benchmarks/baselines/`): in-process ONNX
   Runtime (as by default, and with facegate's no-spinning setting), and dlib:
   image_verification;
4. the tuning's "before" (facegate as it was before the change the measurements called for),
   and the small-detector option: image_verification;
5. perf_analyzer sweeps of each Triton model (`benchmarks/perf_analyzer.py`).

Before any server starts, `benchmarks/flops.py` measures the CPU's float32 and bfloat16 peaks
and each model's FLOPs per face and share of its peak (the physical limit).

Load comes from wrk (`benchmarks/load/wrk.py`). Between steps the servers' Prometheus counters
and /proc CPU times are read, giving per step: requests/s, p50/p95/p99, error rate, Triton's
average batch and queue time per model, CPU of the frontend and of Triton, and the frontend's
stage times per request. Results: `benchmarks/results/load.{json,md}` and PNG plots.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import flops
from benchmarks.load import payloads, report
from benchmarks.load.servers import (
    IV,
    KEY,
    Server,
    drain,
    post_form,
    scrape,
    start_baseline,
    start_facegate,
    total,
)
from benchmarks.load.wrk import run_wrk, wrk_binary
from benchmarks.paths import DATA, RESULTS
from deploy.embedded_triton import DEFAULT_MODEL_REPOSITORY
from frontend.crypto import KeyRing
from model_repository.build import write_embedded
from model_repository.specs import MODELS as SPECS

LOGGER = logging.getLogger("bench")
CONCURRENCY = (1, 2, 4, 8, 16, 32, 64)
WINDOW_LATENCIES = 3.0
"""A step lasts at least this many predicted request latencies (`step_seconds`)."""
VIDEO_ENDPOINTS = ("silent_detection", "silent_image_verification")
MODELS = ("face_detector", "face_embedder", "face_liveness")


def measure_step(server: Server, workload: payloads.Workload, bodies: list[Path],
                 concurrency: int, seconds: float) -> dict:
    """One wrk step, with the servers' counters and CPU read before and after."""
    drain(server)
    before = _counters(server)
    step = run_wrk(server.url, workload.path, payloads.FORM, bodies, concurrency, seconds)
    after = _counters(server)
    row = {"endpoint": workload.endpoint, "server": server.name, **dataclasses.asdict(step),
           "error_rate": round(step.error_rate, 4)}
    wall = step.seconds
    for part in ("server", "triton"):
        spent = after["cpu"][part] - before["cpu"][part]
        row[f"cpu_{part}_pct"] = round(100 * spent / wall, 1)  # 100 = one core busy
    if after.get("facegate") is not None:
        row["stages_ms_per_request"] = _stages(before["facegate"], after["facegate"], step.requests)
    if after.get("triton") is not None:
        row["triton"] = triton_figures(before["triton"], after["triton"])
    LOGGER.info("%-28s %-16s c=%-3d %7.2f req/s p50 %8.1f p99 %8.1f ms errors %.3f cpu %s/%s",
                workload.endpoint, server.name, concurrency, step.requests_per_s, step.p50_ms,
                step.p99_ms, step.error_rate, row["cpu_server_pct"], row["cpu_triton_pct"])
    return row


def _counters(server: Server) -> dict:
    counters: dict = {"cpu": server.cpu_seconds()}
    if server.triton_metrics:
        counters["facegate"] = scrape(server.url + "/metrics")
        counters["triton"] = scrape(server.triton_metrics)
    return counters


def _stages(before: dict, after: dict, requests: int) -> dict[str, float]:
    stages = {labels for (name, labels) in after if name == "facegate_stage_duration_seconds_sum"}
    result = {}
    for labels in stages:
        stage = dict(labels)["stage"]
        spent = (total(after, "facegate_stage_duration_seconds_sum", stage=stage)
                 - total(before, "facegate_stage_duration_seconds_sum", stage=stage))
        if spent > 0:
            result[stage] = round(1000 * spent / max(1, requests), 2)
    return dict(sorted(result.items()))


def triton_figures(before: dict, after: dict) -> dict[str, dict[str, float]]:
    """Per model that ran in a step: inferences, executions, average batch, queue time per
    request and compute time per inference, from Triton's counters scraped before and after."""
    models = {}
    for model in MODELS:
        def moved(name: str, model: str = model) -> float:
            return total(after, name, model=model) - total(before, name, model=model)
        executions = moved("nv_inference_exec_count")
        requests = moved("nv_inference_request_success")
        if executions <= 0:
            continue
        models[model] = {
            "inferences": moved("nv_inference_count"),
            "executions": executions,
            "average_batch": round(moved("nv_inference_count") / executions, 2),
            "queue_ms_per_request": round(
                moved("nv_inference_queue_duration_us") / requests / 1000, 2),
            # Triton charges each request of a batch the execution's whole compute time
            "compute_ms_per_execution": round(
                moved("nv_inference_compute_infer_duration_us") / moved("nv_inference_count")
                / 1000, 2),
        }
    return models


def warm_up(server: Server, workload: payloads.Workload) -> dict[str, int]:
    """Post every body once; the contract codes seen (a server answering errors is reported).
    Starts once the previous sweep's last requests have finished."""
    drain(server)
    codes: dict[str, int] = {}
    for body in workload.bodies:
        answer, _ = post_form(server.url + workload.path, body)
        code = str(answer["code"])
        codes[code] = codes.get(code, 0) + 1
    return codes


def step_seconds(concurrency: int, previous: dict | None, seconds: float) -> float:
    """How long a step must run to measure more than its start.

    All `concurrency` connections start together, and once the server is saturated each
    request takes about concurrency / throughput: a window shorter than a few of those measures
    the ramp-up, not the steady state. So a step lasts at least `WINDOW_LATENCIES` times the
    latency the previous step's throughput predicts.
    """
    if previous is None or previous["requests_per_s"] <= 0:
        return seconds
    return max(seconds, WINDOW_LATENCIES * concurrency / previous["requests_per_s"])


def sweep(server: Server, workload: payloads.Workload, bodies: list[Path],
          concurrencies: tuple[int, ...], seconds: float, max_step_s: float) -> dict:
    """Steps of rising concurrency; those that would only measure a deeper queue are skipped."""
    codes = warm_up(server, workload)
    rows: list[dict] = []
    skipped = []
    for concurrency in concurrencies:
        length = step_seconds(concurrency, rows[-1] if rows else None, seconds)
        if length > max_step_s:
            skipped.append(concurrency)
            continue
        rows.append(measure_step(server, workload, bodies, concurrency, length))
    if skipped:
        LOGGER.info("%s on %s: skipped concurrency %s (a step would need over %.0f s; the "
                    "server is saturated, latency = concurrency / throughput)",
                    workload.endpoint, server.name, skipped, max_step_s)
    return {"endpoint": workload.endpoint, "server": server.name, "warm_up_codes": codes,
            "steps": rows, "skipped_concurrency": skipped}


def run(args: argparse.Namespace) -> dict:
    wrk_binary()  # fail now, not after the first server started
    keyring = KeyRing.from_strings([KEY], IV)
    work = Path(tempfile.mkdtemp(prefix="facegate-bench-"))
    concurrency = (1, 4, 16) if args.quick else CONCURRENCY
    try:
        loads = {w.endpoint: w for w in payloads.workloads(DATA, keyring)}
        bodies = {name: payloads.write_bodies(w, work / "bodies") for name, w in loads.items()}
        verification = loads["image_verification"]
        runs = []
        limits = flops.run()  # first, while no server runs

        def facegate_run(name: str, endpoints, env=None) -> None:
            server = start_facegate(name, work / "logs", env)
            try:
                for endpoint in endpoints:
                    video = endpoint in VIDEO_ENDPOINTS
                    runs.append(sweep(server, loads[endpoint], bodies[endpoint], concurrency,
                                      args.video_seconds if video else args.seconds,
                                      args.max_step_seconds))
            finally:
                server.stop()

        def baseline_run(name: str, module: str, env=None) -> None:
            server = start_baseline(name, module, work / "logs", env)
            try:
                runs.append(sweep(server, verification, bodies["image_verification"],
                                  concurrency, args.seconds, args.max_step_seconds))
            finally:
                server.stop()

        facegate_run("facegate", list(loads))
        nobatch = _repository(work, "nobatch", dynamic_batching=False)
        facegate_run("facegate-nobatch", ["image_verification"],
                     {"FACEGATE_MODEL_REPOSITORY": str(nobatch)})
        baseline_run("ort-inprocess", "benchmarks.baselines.ort_server")
        baseline_run("ort-inprocess-nospin", "benchmarks.baselines.ort_server",
                     {"FACEGATE_ORT_SPIN": "0"})
        baseline_run("dlib", "benchmarks.baselines.dlib_server")
        batched = _repository(work, "detector-batched", batch_on_cpu=True)
        tuning = {
            **TUNING_BEFORE,
            "facegate-detector-batched": {"FACEGATE_MODEL_REPOSITORY": str(batched)},
            **OPTIONS,
        }
        for name, env in tuning.items():
            facegate_run(name, ["image_verification"], env)
        models = None
        if not args.skip_perf_analyzer:
            from benchmarks import perf_analyzer
            models = perf_analyzer.run(RESULTS, quick=args.quick)
        return {
            "command": " ".join(["python -m benchmarks.load", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": _machine(),
            "workloads": {name: w.description for name, w in loads.items()},
            "runs": runs,
            "perf_analyzer": "perf_analyzer.json" if models else None,
            "flops": limits,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


# The tuning (issue 5, item 6), each change undone alone and measured in the same run as the
# default configuration: ONNX Runtime's spinning threads (on before; they burned the cores the
# other models and the frontend needed), and the detectors' dynamic batching on the CPU
# ("facegate-detector-batched" below: a batch of 640 images costs more per image there).
TUNING_BEFORE: dict[str, dict[str, str]] = {
    "facegate-spinning": {"FACEGATE_ORT_SPIN": "1"},
}
# An operator's option measured beside it: photos <= 320 px on the 320 detector (less work,
# slightly less TAR at strict thresholds; off by default).
OPTIONS: dict[str, dict[str, str]] = {
    "facegate-small-detector": {"FACEGATE_SMALL_DETECTOR": "true"},
}


def _repository(work: Path, name: str, *, dynamic_batching: bool = True,
                batch_on_cpu: bool | None = None) -> Path:
    """An embedded repository over the built ONNX files with other batching: every model
    without the batcher, or `batch_on_cpu` forced for every model."""
    target = work / name
    for spec in SPECS:
        if batch_on_cpu is not None:
            spec = dataclasses.replace(spec, batching=dataclasses.replace(
                spec.batching, batch_on_cpu=batch_on_cpu))
        onnx = (DEFAULT_MODEL_REPOSITORY / spec.name / "1" / "model.onnx").resolve()
        write_embedded(spec, onnx, target, dynamic_batching=dynamic_batching)
    return target


def _machine() -> dict:
    import aiohttp
    import onnxruntime
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__, "aiohttp": aiohttp.__version__,
            "tritonserver": "2.51.0 (nvidia-pytriton 0.7.0)", "wrk": "4.1.0 (Debian)",
            "note": "load generator, servers and Triton share the same cores"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of a photo step")
    parser.add_argument("--video-seconds", type=float, default=8.0,
                        help="length of a video step")
    parser.add_argument("--max-step-seconds", type=float, default=20.0,
                        help="skip a step that would need a longer window (see step_seconds)")
    parser.add_argument("--quick", action="store_true", help="three steps per sweep (a smoke run)")
    parser.add_argument("--skip-perf-analyzer", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "load.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.monotonic()
    results = run(args)
    results["wall_s"] = round(time.monotonic() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    report.write(results, args.out.parent)
    LOGGER.info("done in %d s: %s", results["wall_s"], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
