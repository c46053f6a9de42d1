"""Model-level sweeps with Triton's perf_analyzer: throughput and latency per model, against
batch size, concurrency, queue delay and instance count (issue 5, item 4).

    python -m benchmarks.perf_analyzer [--out-dir benchmarks/results] [--quick]

perf_analyzer is not on PyPI in a form that runs here: ``tritonclient`` 2.73 carries none, and
the binaries of newer wheels need glibc 2.38. The one in the ``tritonclient==2.51.0`` manylinux1
wheel (the same Triton release as the server of nvidia-pytriton 0.7.0) runs, given
``libb64.so.0d`` and ``libcudart.so.12`` from ``nvidia_pytriton.libs`` on ``LD_LIBRARY_PATH``.
`perf_analyzer_binary` downloads that wheel once into the model builder's cache
(``<cache>/tools/perf_analyzer-2.51.0``), checks it against a pinned SHA-256 and extracts the
binary; nothing is installed.

What is measured, each point by one perf_analyzer run over gRPC (``--input-data random``, no
shared memory, synchronous clients, one per concurrent request):

1. **committed**: the configs `model_repository/specs.py` describes, for all three models:
   batch 1, 4, 16 at concurrency 1, and concurrency 1, 2, 4, 8, 16 at batch 1.
2. **choice grid**: for the detector and the embedder, ``max_queue_delay_microseconds`` 0, 1000,
   4000 times instance count 1 and 2 (plus 2 instances with one ONNX Runtime thread each), at
   concurrency 1 and 8, batch 1. Every variant is loaded at once, under its own model name
   (``face_embedder__delay0-inst2``), in one server (a second one for the one-thread variant,
   whose setting is an environment variable of the server), and the variants are measured in
   three rounds, alternately in forward and reverse order, so that a change in the machine's
   background load falls on all of them alike. Each point is then represented by its best round
   (highest infer/s; at a fixed concurrency that is also the lowest mean latency): other work
   on the cores can only slow a run down, so the best round is the least disturbed one. The
   spread between rounds is reported beside it.

Every point is three perf_analyzer windows merged (``-r 3``) with the stability check
effectively off (``-s 999``): on two shared cores a real stability criterion (10-50% on the
mean or p99) aborted runs, so each point has a fixed length instead. The choice rule and its
threshold are at `choose`; the numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.metadata
import json
import logging
import os
import platform
import socket
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks.paths import REPO_ROOT
from deploy.embedded_triton import (
    DEFAULT_MODEL_REPOSITORY,
    EmbeddedTriton,
    EmbeddedTritonConfig,
    TritonPorts,
)
from model_repository.build import write_embedded
from model_repository.specs import (
    FACE_DETECTOR,
    FACE_DETECTOR_SMALL,
    FACE_EMBEDDER,
    FACE_LIVENESS,
    ModelSpec,
)
from model_repository.weights import default_cache_dir, sha256_of

LOGGER = logging.getLogger(__name__)
DEFAULT_OUT_DIR = REPO_ROOT / "benchmarks" / "results"

# The tool: perf_analyzer 2.51.0 out of the tritonclient 2.51.0 manylinux1 wheel.
PERF_ANALYZER_VERSION = "2.51.0"
PERF_ANALYZER_REQUIREMENT = f"tritonclient=={PERF_ANALYZER_VERSION}"
PERF_ANALYZER_WHEEL = f"tritonclient-{PERF_ANALYZER_VERSION}-py3-none-manylinux1_x86_64.whl"
PERF_ANALYZER_WHEEL_SHA256 = "c485bb0123bdf310f90bc8b03d3489b28df2ffed55b30c7eee0b795b48113d52"
PERF_ANALYZER_MEMBER = f"tritonclient-{PERF_ANALYZER_VERSION}.data/data/bin/perf_analyzer"
PERF_ANALYZER_SHA256 = "a8e3fa6d2fcd535770f18fa3c9baf21aee85697352637d24c6b2818401c95a34"
# soname the binary asks for -> pattern of the copy in nvidia_pytriton.libs
PERF_ANALYZER_LIBS = {"libb64.so.0d": "libb64*.so.0d", "libcudart.so.12": "libcudart*.so.12*"}

# The sweep.
BATCHES = (1, 4, 16)
CONCURRENCIES = (1, 2, 4, 8, 16)
CHOICE_MODELS = (FACE_DETECTOR, FACE_EMBEDDER)
CHOICE_DELAYS_US = (0, 1000, 4000)
CHOICE_INSTANCES = (1, 2)
CHOICE_CONCURRENCIES = (1, 8)
LATENCY_TOLERANCE = 0.25
"""A variant qualifies when its concurrency-1 p50 is within this fraction of the lowest one.

25%: the embedder's p50 at concurrency 1 is about 5 ms, so this admits about 1 ms of queue
delay paid in full by a lone request, and rejects 4 ms."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """How long each point runs and which points there are."""

    window_ms: int = 1000  # committed configs
    grid_window_ms: int = 500  # choice grid (measured `rounds` times)
    trials: int = 3
    rounds: int = 2
    batches: tuple[int, ...] = BATCHES
    concurrencies: tuple[int, ...] = CONCURRENCIES
    ort_one_thread_variant: bool = True


FULL = Settings()
QUICK = Settings(window_ms=500, grid_window_ms=500, rounds=1, batches=(1, 16),
                 concurrencies=(1, 8), ort_one_thread_variant=False)


@dataclasses.dataclass(frozen=True)
class Variant:
    """A server configuration: the specs' batching with these fields replaced."""

    name: str
    max_queue_delay_us: int | None = None  # None: as in specs.py
    instance_count: int | None = None
    ort_threads: int | None = None  # FACEGATE_ORT_THREADS for model.py; None: ORT's default
    batch_on_cpu: bool | None = None  # dynamic batching in the embedded config; None: specs.py

    def apply(self, spec: ModelSpec) -> ModelSpec:
        batching = spec.batching
        if self.batch_on_cpu is not None:
            batching = dataclasses.replace(batching, batch_on_cpu=self.batch_on_cpu)
        if self.max_queue_delay_us is not None:
            batching = dataclasses.replace(
                batching, max_queue_delay_microseconds=self.max_queue_delay_us)
        if self.instance_count is not None:
            batching = dataclasses.replace(batching, instance_count=self.instance_count)
        return dataclasses.replace(spec, batching=batching)

    def served_name(self, spec: ModelSpec) -> str:
        return spec.name if self is COMMITTED else f"{spec.name}__{self.name}"


COMMITTED = Variant("committed")


# --------------------------------------------------------------------------------------------
# The tool
# --------------------------------------------------------------------------------------------


def _tool_dir(cache_dir: Path | None) -> Path:
    return (cache_dir or default_cache_dir()) / "tools" / f"perf_analyzer-{PERF_ANALYZER_VERSION}"


def _pytriton_libs() -> Path:
    import pytriton  # only the tool's libraries need the wheel's location

    return Path(pytriton.__file__).resolve().parents[1] / "nvidia_pytriton.libs"


def _fetch_wheel(tool_dir: Path) -> Path:
    wheel = tool_dir / PERF_ANALYZER_WHEEL
    if not wheel.is_file():
        LOGGER.info("fetching %s into %s (once; it is cached)", PERF_ANALYZER_REQUIREMENT, tool_dir)
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--platform", "manylinux1_x86_64", "--quiet", "--dest", str(tool_dir),
            PERF_ANALYZER_REQUIREMENT,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not wheel.is_file():
            raise RuntimeError(f"could not download {PERF_ANALYZER_REQUIREMENT}: "
                               f"{result.stderr.strip()}")
    actual = sha256_of(wheel)
    if actual != PERF_ANALYZER_WHEEL_SHA256:
        raise RuntimeError(f"{wheel} has sha256 {actual}, expected {PERF_ANALYZER_WHEEL_SHA256}; "
                           f"delete it to fetch it again")
    return wheel


def perf_analyzer_binary(cache_dir: Path | None = None) -> Path:
    """The checked perf_analyzer 2.51.0 binary, fetched and extracted on first use.

    Beside it, ``lib/`` holds the links the binary needs on ``LD_LIBRARY_PATH``
    (`perf_analyzer_env`).

    Raises:
        RuntimeError: the wheel cannot be downloaded, or a checksum differs.
    """
    tool_dir = _tool_dir(cache_dir)
    tool_dir.mkdir(parents=True, exist_ok=True)
    binary = tool_dir / "perf_analyzer"
    if not (binary.is_file() and sha256_of(binary) == PERF_ANALYZER_SHA256):
        wheel = _fetch_wheel(tool_dir)
        partial = binary.with_suffix(".partial")
        with zipfile.ZipFile(wheel) as archive, archive.open(PERF_ANALYZER_MEMBER) as source, \
                partial.open("wb") as out:
            for block in iter(lambda: source.read(1 << 20), b""):
                out.write(block)
        actual = sha256_of(partial)
        if actual != PERF_ANALYZER_SHA256:
            partial.unlink()
            raise RuntimeError(f"{PERF_ANALYZER_MEMBER} in {wheel} has sha256 {actual}, "
                               f"expected {PERF_ANALYZER_SHA256}")
        partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        partial.replace(binary)
    lib_dir = tool_dir / "lib"
    lib_dir.mkdir(exist_ok=True)
    libs = _pytriton_libs()
    for soname, pattern in PERF_ANALYZER_LIBS.items():
        matches = sorted(libs.glob(pattern))
        if not matches:
            raise RuntimeError(f"{libs} has no {pattern} for perf_analyzer's {soname}")
        link = lib_dir / soname
        link.unlink(missing_ok=True)
        link.symlink_to(matches[0])
    return binary


def perf_analyzer_env(binary: Path) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(binary.parent / "lib"), env.get("LD_LIBRARY_PATH", "")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in paths if p)
    return env


def perf_analyzer_version(binary: Path) -> str:
    result = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                            env=perf_analyzer_env(binary), check=False, timeout=30)
    return (result.stdout + result.stderr).strip()


# --------------------------------------------------------------------------------------------
# Servers and measurements
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _env(name: str, value: str | None) -> Iterator[None]:
    """Set (or leave alone, for None) one environment variable the Triton child inherits."""
    previous = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextmanager
def serve(models: Iterable[tuple[Variant, ModelSpec]],
          ort_threads: int | None = None) -> Iterator[EmbeddedTriton]:
    """A fresh embedded Triton serving each (variant, spec) under the variant's model name."""
    with tempfile.TemporaryDirectory(prefix="facegate-pa-") as tmp:
        repository = Path(tmp)
        for variant, spec in models:
            onnx_path = (DEFAULT_MODEL_REPOSITORY / spec.name / "1" / "model.onnx").resolve()
            if not onnx_path.is_file():
                raise FileNotFoundError(f"{onnx_path} missing: build the models (make models)")
            served = dataclasses.replace(variant.apply(spec), name=variant.served_name(spec))
            write_embedded(served, onnx_path, repository)
        ports = TritonPorts(_free_port(), _free_port(), _free_port())
        config = EmbeddedTritonConfig(model_repository=repository, ports=ports)
        started = time.monotonic()
        threads = None if ort_threads is None else str(ort_threads)
        with _env("FACEGATE_ORT_THREADS", threads), EmbeddedTriton(config) as server:
            LOGGER.info("tritonserver ready in %.1f s with %d models (ORT threads %s)",
                        time.monotonic() - started, len(list(repository.iterdir())),
                        threads or "default")
            yield server


def server_version(server: EmbeddedTriton) -> str:
    with urllib.request.urlopen(f"http://{server.http_url}/v2", timeout=5) as response:
        return json.loads(response.read()).get("version", "?")


def _number(text: str | None) -> float | None:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _stdout_count(stdout: str, label: str) -> int | None:
    """An integer from perf_analyzer's report, e.g. ``Execution count: 141``."""
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith(label + ":"):
            return int(line.split(":", 1)[1].strip().split()[0])
    return None


class PerfAnalyzer:
    """Runs perf_analyzer against a server and parses its CSV report."""

    def __init__(self, binary: Path, trials: int) -> None:
        self.binary = binary
        self.trials = trials
        self.env = perf_analyzer_env(binary)

    def command(self, server: EmbeddedTriton, model: str, batch: int, concurrency: int, *,
                window_ms: int = 1000, csv_path: Path | None = None,
                request_count: int | None = None) -> list[str]:
        command = [
            str(self.binary), "-i", "grpc", "-u", server.grpc_url, "-m", model,
            "-b", str(batch), "--concurrency-range", str(concurrency),
            "--input-data", "random", "--shared-memory", "none",
        ]
        if request_count:
            command += ["--request-count", str(request_count)]
        else:
            command += ["--measurement-interval", str(window_ms),
                        "--max-trials", str(self.trials), "--stability-percentage", "999"]
        if csv_path is not None:
            command += ["-f", str(csv_path), "--verbose-csv"]
        return command

    def warm_up(self, server: EmbeddedTriton, model: str, batch: int) -> None:
        """A few requests at the largest batch and at concurrency 8, not recorded."""
        for b, c, n in ((batch, 1, 3), (1, 8, 32)):
            subprocess.run(self.command(server, model, b, c, request_count=n),
                           capture_output=True, text=True, env=self.env, check=False, timeout=120)

    def measure(self, server: EmbeddedTriton, model: str, batch: int, concurrency: int,
                window_ms: int) -> dict:
        with tempfile.TemporaryDirectory(prefix="facegate-pa-csv-") as tmp:
            csv_path = Path(tmp) / "report.csv"
            command = self.command(server, model, batch, concurrency, window_ms=window_ms,
                                   csv_path=csv_path)
            started = time.monotonic()
            result = subprocess.run(command, capture_output=True, text=True, env=self.env,
                                    check=False, timeout=60 + 10 * window_ms / 1000)
            row: dict = {"batch": batch, "concurrency": concurrency, "window_ms": window_ms,
                         "run_s": round(time.monotonic() - started, 1)}
            if result.returncode != 0 or not csv_path.is_file():
                tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
                row["error"] = f"perf_analyzer exit {result.returncode}: {' | '.join(tail)}"
                return row
            with csv_path.open(newline="") as stream:
                record = next(csv.DictReader(stream))
        row.update({
            "infer_per_s": _number(record.get("Inferences/Second")),
            "requests": _stdout_count(result.stdout, "Request count"),
            "p50_us": _number(record.get("p50 latency")),
            "p90_us": _number(record.get("p90 latency")),
            "p99_us": _number(record.get("p99 latency")),
            "avg_us": _number(record.get("Avg latency")),
            "server_queue_us": _number(record.get("Server Queue")),
            "server_compute_input_us": _number(record.get("Server Compute Input")),
            "server_compute_infer_us": _number(record.get("Server Compute Infer")),
            "server_compute_output_us": _number(record.get("Server Compute Output")),
        })
        inferences = _stdout_count(result.stdout, "Inference count")
        executions = _stdout_count(result.stdout, "Execution count")
        if inferences and executions:
            row["avg_executed_batch"] = round(inferences / executions, 2)
        return row


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------


def choice_variants(settings: Settings) -> list[Variant]:
    variants = [
        Variant(f"delay{delay}-inst{instances}", max_queue_delay_us=delay,
                instance_count=instances, batch_on_cpu=True)
        for delay in CHOICE_DELAYS_US for instances in CHOICE_INSTANCES
    ]
    # no dynamic batching at all: each request executes alone (the detectors' setting on CPU)
    variants.append(Variant("unbatched-inst1", instance_count=1, batch_on_cpu=False))
    if settings.ort_one_thread_variant:
        variants.append(Variant("delay1000-inst2-ort1", max_queue_delay_us=1000,
                                instance_count=2, ort_threads=1, batch_on_cpu=True))
    return variants


def _grid_name(spec: ModelSpec) -> str:
    """The choice-grid name of the spec's own settings."""
    batching = spec.batching
    if not batching.batch_on_cpu:
        return f"unbatched-inst{batching.instance_count}"
    return f"delay{batching.max_queue_delay_microseconds}-inst{batching.instance_count}"


def _describe(variant: Variant, spec: ModelSpec) -> dict:
    applied = variant.apply(spec).batching
    return {
        "model": spec.name,
        "served_model": variant.served_name(spec),
        "variant": variant.name,
        "max_queue_delay_us": applied.max_queue_delay_microseconds,
        "instance_count": applied.instance_count,
        "dynamic_batching": applied.batch_on_cpu,
        "ort_threads": variant.ort_threads if variant.ort_threads is not None else "default",
    }


def _record(rows: list[dict], row: dict) -> None:
    rows.append(row)
    if "error" in row:
        LOGGER.warning("%s", row)
    else:
        LOGGER.info("%s %s b%d c%d: %.1f infer/s, p50 %.1f ms, p99 %.1f ms", row["sweep"],
                    row["served_model"], row["batch"], row["concurrency"], row["infer_per_s"],
                    row["p50_us"] / 1000, row["p99_us"] / 1000)


def sweep(settings: Settings) -> tuple[list[dict], dict]:
    """All measurements, as rows, and what the tools reported about themselves."""
    binary = perf_analyzer_binary()
    analyzer = PerfAnalyzer(binary, settings.trials)
    meta = {"perf_analyzer": perf_analyzer_version(binary)}
    committed_models = (FACE_DETECTOR, FACE_DETECTOR_SMALL, FACE_EMBEDDER, FACE_LIVENESS)
    variants = choice_variants(settings)
    groups: dict[int | None, list[tuple[Variant, ModelSpec]]] = {}
    groups[None] = [(COMMITTED, spec) for spec in committed_models]
    for variant in variants:
        groups.setdefault(variant.ort_threads, []).extend(
            (variant, spec) for spec in CHOICE_MODELS)
    rows: list[dict] = []
    with ExitStack() as stack:
        servers = {threads: stack.enter_context(serve(models, threads))
                   for threads, models in groups.items()}
        meta["tritonserver"] = server_version(servers[None])

        for spec in committed_models:
            analyzer.warm_up(servers[None], spec.name, max(settings.batches))
            points = [(b, 1) for b in settings.batches]
            points += [(1, c) for c in settings.concurrencies if (1, c) not in points]
            for batch, concurrency in points:
                row = analyzer.measure(servers[None], spec.name, batch, concurrency,
                                       settings.window_ms)
                _record(rows, {"sweep": "committed", **_describe(COMMITTED, spec), **row})

        for variant in variants:
            for spec in CHOICE_MODELS:
                analyzer.warm_up(servers[variant.ort_threads], variant.served_name(spec), 1)
        for round_index in range(settings.rounds):
            order = variants if round_index % 2 == 0 else variants[::-1]
            for variant in order:
                server = servers[variant.ort_threads]
                for spec in CHOICE_MODELS:
                    for concurrency in CHOICE_CONCURRENCIES:
                        row = analyzer.measure(server, variant.served_name(spec), 1,
                                               concurrency, settings.grid_window_ms)
                        _record(rows, {"sweep": "choice", "round": round_index + 1,
                                       **_describe(variant, spec), **row})
    return rows, meta


_KEPT = ("infer_per_s", "p50_us", "p90_us", "p99_us", "server_queue_us",
         "server_compute_infer_us", "avg_executed_batch")


def grid_summary(rows: list[dict]) -> list[dict]:
    """Choice-grid points, each represented by its best round (highest infer/s; at a fixed
    concurrency also the lowest mean latency); `spread` = max / min - 1 over rounds."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["sweep"] == "choice" and "error" not in row:
            groups.setdefault((row["model"], row["variant"], row["concurrency"]), []).append(row)
    summary = []
    for members in groups.values():
        first = members[0]
        entry = {key: first[key] for key in ("model", "variant", "max_queue_delay_us",
                                             "instance_count", "ort_threads", "concurrency",
                                             "dynamic_batching")}
        entry["rounds"] = len(members)
        best = max(members, key=lambda m: m["infer_per_s"])
        entry["best_round"] = best["round"]
        entry.update({key: best.get(key) for key in _KEPT})
        members.sort(key=lambda m: m["round"])
        entry["round_numbers"] = [m["round"] for m in members]
        for key in ("infer_per_s", "p50_us"):
            values = [m[key] for m in members]
            entry[f"{key}_rounds"] = values
            entry[f"{key}_spread"] = round(max(values) / min(values) - 1, 3)
        summary.append(entry)
    summary.sort(key=lambda e: (e["model"], e["concurrency"], e["max_queue_delay_us"],
                                e["instance_count"], e["ort_threads"] != "default"))
    return summary


def choose(summary: list[dict], spec: ModelSpec, tolerance: float = LATENCY_TOLERANCE) -> dict:
    """The choice-grid variant with the highest throughput at concurrency 8 among those whose
    concurrency-1 p50 latency is within `tolerance` of the lowest such p50 (best rounds).

    Against the runner-up and the committed setting it also counts the rounds in which the
    choice had the higher concurrency-8 throughput: the rounds are interleaved, so each round
    compares the two under about the same background load.
    """
    points: dict[str, dict[int, dict]] = {}
    for entry in summary:
        if entry["model"] == spec.name:
            points.setdefault(entry["variant"], {})[entry["concurrency"]] = entry
    complete = {name: p for name, p in points.items()
                if all(c in p for c in CHOICE_CONCURRENCIES)}
    if not complete:
        return {"model": spec.name, "chosen": None, "reason": "no complete variant measured"}
    best_p50 = min(p[1]["p50_us"] for p in complete.values())
    allowed = {name: p for name, p in complete.items()
               if p[1]["p50_us"] <= best_p50 * (1 + tolerance)}
    ranked = sorted(allowed, key=lambda name: allowed[name][8]["infer_per_s"], reverse=True)
    chosen = ranked[0]
    result: dict = {
        "model": spec.name,
        "rule": (f"highest infer/s at concurrency 8 among variants whose concurrency-1 p50 "
                 f"is within {tolerance:.0%} of the lowest one (each point: its best round)"),
        "lowest_c1_p50_us": best_p50,
        "chosen": chosen,
        "chosen_c8_infer_per_s": allowed[chosen][8]["infer_per_s"],
        "chosen_c1_p50_us": allowed[chosen][1]["p50_us"],
        "qualifying_by_c8_throughput": ranked,
        "excluded_by_latency": sorted(set(complete) - set(allowed)),
        "committed_variant": _grid_name(spec),
    }

    def compare(other: str, key: str) -> None:
        a, b = complete[chosen][8], complete[other][8]
        ours = dict(zip(a["round_numbers"], a["infer_per_s_rounds"], strict=True))
        theirs = dict(zip(b["round_numbers"], b["infer_per_s_rounds"], strict=True))
        common = sorted(set(ours) & set(theirs))
        result[key] = other
        result[f"{key}_c8_infer_per_s"] = b["infer_per_s"]
        result[f"{key}_c1_p50_us"] = complete[other][1]["p50_us"]
        result[f"{key}_excluded_by_latency"] = other not in allowed
        result[f"margin_over_{key}"] = round(a["infer_per_s"] / b["infer_per_s"] - 1, 3)
        result[f"rounds_ahead_of_{key}"] = [sum(ours[r] > theirs[r] for r in common), len(common)]

    if len(ranked) > 1 and ranked[1] != result["committed_variant"]:
        compare(ranked[1], "runner_up")
    if result["committed_variant"] in complete and chosen != result["committed_variant"]:
        compare(result["committed_variant"], "committed")
    return result


def repeatability(rows: list[dict], summary: list[dict]) -> dict:
    """How far one point moves: between grid rounds, and committed step vs grid."""
    spreads = [e["infer_per_s_spread"] for e in summary if e["rounds"] > 1]
    p50_spreads = [e["p50_us_spread"] for e in summary if e["rounds"] > 1]
    out: dict = {}
    if spreads:
        out["round_spread_infer_per_s"] = {"median": round(statistics.median(spreads), 3),
                                           "max": max(spreads)}
        out["round_spread_p50"] = {"median": round(statistics.median(p50_spreads), 3),
                                   "max": max(p50_spreads)}
    pairs = []
    for spec in CHOICE_MODELS:
        for concurrency in CHOICE_CONCURRENCIES:
            first = [r for r in rows if r["sweep"] == "committed" and r["model"] == spec.name
                     and r["batch"] == 1 and r["concurrency"] == concurrency and "error" not in r]
            grid = [e for e in summary if e["model"] == spec.name
                    and e["variant"] == _grid_name(spec) and e["concurrency"] == concurrency]
            if first and grid:
                a, b = first[0], grid[0]
                pairs.append({
                    "model": spec.name, "concurrency": concurrency,
                    "committed_step": {"infer_per_s": a["infer_per_s"], "p50_us": a["p50_us"]},
                    "grid_mean": {"infer_per_s": b["infer_per_s"], "p50_us": b["p50_us"]},
                })
    out["committed_step_vs_grid"] = pairs
    return out


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.1f}"


def _cells(row: dict) -> str:
    if "error" in row:
        return "failed | | | | | | "
    batch = row.get("avg_executed_batch")
    return (f"{row['infer_per_s']:.1f} | {_ms(row['p50_us'])} | {_ms(row['p90_us'])} | "
            f"{_ms(row['p99_us'])} | {_ms(row['server_queue_us'])} | "
            f"{_ms(row['server_compute_infer_us'])} | {'-' if batch is None else f'{batch:.2f}'}")


_HEADER = ("infer/s | p50 ms | p90 ms | p99 ms | server queue ms | server compute infer ms | "
           "executed batch")


def choice_sentence(choice: dict) -> str:
    """One line: the choice for one model, with its margins and whether they exceed noise."""
    if choice.get("chosen") is None:
        return f"{choice['model']}: no choice ({choice.get('reason')})."
    text = (f"{choice['model']}: {choice['chosen']} ({choice['chosen_c8_infer_per_s']:.1f} "
            f"infer/s at concurrency 8; p50 {choice['chosen_c1_p50_us'] / 1000:.1f} ms at "
            f"concurrency 1, lowest {choice['lowest_c1_p50_us'] / 1000:.1f} ms)")

    def margin(key: str, label: str) -> str:
        ahead, rounds = choice[f"rounds_ahead_of_{key}"]
        excluded = ", excluded by the latency rule" if choice[f"{key}_excluded_by_latency"] else ""
        return (f"; vs {label} {choice[key]}{excluded}: {choice[f'{key}_c8_infer_per_s']:.1f} "
                f"infer/s, p50 {choice[f'{key}_c1_p50_us'] / 1000:.1f} ms "
                f"({choice[f'margin_over_{key}']:+.0%} infer/s for the choice, ahead in "
                f"{ahead} of {rounds} rounds)")

    if choice["chosen"] == choice["committed_variant"]:
        text += "; it is the committed setting"
    elif "committed" in choice:
        text += margin("committed", "committed")
    if "runner_up" in choice:
        text += margin("runner_up", "runner-up")
    if choice["excluded_by_latency"]:
        text += f"; excluded by the latency rule: {', '.join(choice['excluded_by_latency'])}"
    return text + "."


def markdown(report: dict) -> str:
    rows, s, machine = report["rows"], report["settings"], report["machine"]
    lines = [
        "# perf_analyzer sweeps (issue 5, item 4)",
        "",
        f"Command: `{report['command']}`, {report['date']}, wall {report['wall_s']:.0f} s. "
        f"Machine: {machine['cpu_count']} cores ({machine['processor']}), no GPU, load average "
        f"(1/5/15 min) {machine['loadavg_start']} at start and {machine['loadavg_end']} at end; "
        f"Python {machine['python']}; tritonserver {report['tritonserver']} (nvidia-pytriton "
        f"{report['nvidia_pytriton']}, python backend running ONNX Runtime on CPU); "
        f"{report['perf_analyzer']} (binary of the tritonclient {PERF_ANALYZER_VERSION} wheel).",
        "",
        f"Each point is one perf_analyzer run over gRPC: `--input-data random` (the cost does "
        f"not depend on pixel values; NMS is outside the models), no shared memory, synchronous "
        f"clients, {s['trials']} windows merged ({s['window_ms']} ms each for the committed "
        f"configs, {s['grid_window_ms']} ms for the grid), stability check off (`-s 999`; on "
        f"these shared cores a real criterion aborted runs). Latency is per request as the "
        f"client sees it; infer/s counts faces (batch x requests per second). "
        f"**These are CPU numbers on {machine['cpu_count']} cores shared with other work, and "
        f"perf_analyzer and its client threads run on the same cores as Triton**: absolute "
        f"figures are pessimistic and a repeated point moves (see Repeatability).",
        "",
        "## Committed configs (model_repository/specs.py)",
        "",
        "Batch size at concurrency 1:",
        "",
        "| model | batch | " + _HEADER + " |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    committed = [r for r in rows if r["sweep"] == "committed"]
    lines += [f"| {r['model']} | {r['batch']} | {_cells(r)} |"
              for r in committed if r["concurrency"] == 1]
    lines += ["", "Concurrency at batch 1:", "",
              "| model | concurrency | " + _HEADER + " |",
              "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['concurrency']} | {_cells(r)} |"
              for r in committed if r["batch"] == 1]
    lines += [
        "", "## Queue delay and instance count (batch 1)", "",
        f"Each point is its best of {s['rounds']} round(s) (highest infer/s, which at a fixed "
        "concurrency is also the lowest mean latency); infer/s and p50 of every round in "
        "brackets. "
        "ORT threads \"default\" is ONNX Runtime's own choice (one per physical core: 2 per "
        "instance here); \"1\" is FACEGATE_ORT_THREADS=1 (one thread per instance).", "",
        "| model | max_queue_delay_us | instances | ORT threads | concurrency | infer/s "
        "(rounds) | p50 ms (rounds) | p90 ms | p99 ms | server queue ms | "
        "server compute infer ms | executed batch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in report["grid"]:
        rounds_ips = ", ".join(f"{v:.0f}" for v in e["infer_per_s_rounds"])
        rounds_p50 = ", ".join(_ms(v) for v in e["p50_us_rounds"])
        batch = e.get("avg_executed_batch")
        lines.append(
            f"| {e['model']} | "
            f"{e['max_queue_delay_us'] if e['dynamic_batching'] else 'no batching'} | "
            f"{e['instance_count']} | "
            f"{e['ort_threads']} | {e['concurrency']} | {e['infer_per_s']:.1f} ({rounds_ips}) | "
            f"{_ms(e['p50_us'])} ({rounds_p50}) | {_ms(e['p90_us'])} | {_ms(e['p99_us'])} | "
            f"{_ms(e['server_queue_us'])} | {_ms(e['server_compute_infer_us'])} | "
            f"{'-' if batch is None else f'{batch:.2f}'} |")
    rep = report["repeatability"]
    lines += ["", "## Repeatability", ""]
    if "round_spread_infer_per_s" in rep:
        ips, p50 = rep["round_spread_infer_per_s"], rep["round_spread_p50"]
        lines.append(
            f"Between the grid's rounds a point's infer/s moved by {ips['median']:.0%} (median "
            f"over points; max {ips['max']:.0%}), its p50 by {p50['median']:.0%} "
            f"(max {p50['max']:.0%}).")
        lines.append("")
    if rep["committed_step_vs_grid"]:
        lines += ["The committed setting measured in the first step and in the grid (same "
                  "config, other model instance, other time; grid: best round):", "",
                  "| model | concurrency | infer/s (step 1, grid) | p50 ms (step 1, grid) |",
                  "|---|---|---|---|"]
        for p in rep["committed_step_vs_grid"]:
            a, b = p["committed_step"], p["grid_mean"]
            lines.append(f"| {p['model']} | {p['concurrency']} | {a['infer_per_s']:.1f}, "
                         f"{b['infer_per_s']:.1f} | {_ms(a['p50_us'])}, {_ms(b['p50_us'])} |")
    lines += ["", "## Choice", ""]
    if report["choice"] and report["choice"][0].get("rule"):
        lines += [f"Rule: {report['choice'][0]['rule']}.", ""]
    lines += [f"- {choice_sentence(c)}" for c in report["choice"]]
    lines += ["", "A margin with the choice ahead in fewer than all rounds is not a consistent "
              "difference on this machine; the committed setting then stays as good a choice as "
              "the data can tell."]
    return "\n".join(lines) + "\n"


def run(out_dir: Path, *, quick: bool = False) -> dict:
    """Run the sweeps, write ``perf_analyzer.json`` and ``.md`` into `out_dir`; the report."""
    settings = QUICK if quick else FULL
    started = time.monotonic()
    loadavg_start = [round(x, 2) for x in os.getloadavg()]
    rows, meta = sweep(settings)
    grid = grid_summary(rows)
    report = {
        "command": "python -m benchmarks.perf_analyzer" + (" --quick" if quick else ""),
        "date": time.strftime("%Y-%m-%d"),
        "wall_s": round(time.monotonic() - started, 1),
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "loadavg_start": loadavg_start,
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        },
        "tritonserver": meta["tritonserver"],
        "nvidia_pytriton": importlib.metadata.version("nvidia-pytriton"),
        "perf_analyzer": meta["perf_analyzer"],
        "settings": dataclasses.asdict(settings) | {
            "input_data": "random", "protocol": "grpc", "shared_memory": "none",
            "sync_clients": True, "stability_percentage": 999,
            "latency_tolerance": LATENCY_TOLERANCE,
        },
        "rows": rows,
        "grid": grid,
        "repeatability": repeatability(rows, grid),
        "choice": [choose(grid, spec) for spec in CHOICE_MODELS],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "perf_analyzer.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "perf_analyzer.md").write_text(markdown(report))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    parser.add_argument("--quick", action="store_true",
                        help="shorter windows, fewer points, one round (a smoke run)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("tritonserver").setLevel(logging.WARNING)
    report = run(args.out_dir, quick=args.quick)
    print(f"wall {report['wall_s']:.0f} s; wrote {args.out_dir / 'perf_analyzer.json'} and .md")
    for choice in report["choice"]:
        print("choice:", choice_sentence(choice))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
