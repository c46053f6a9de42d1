"""The servers under test, each a separate process started the way an operator starts it, and
what can be read off them between load steps: CPU time of their processes, Prometheus counters.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.paths import REPO_ROOT
from frontend.service.video import VIDEO_PIXELS

LOGGER = logging.getLogger("bench")
KEY, IV = "dcbbad6765e14139a07d34b92292a672", "df25d188a061"  # the manual's sample pair


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """Every descendant (a child started by any thread of the process counts)."""
    kids = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids += [int(x) for x in children.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return kids + [grand for kid in kids for grand in _children(kid)]


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""


def triton_cpu_seconds(parent: int) -> float:
    """CPU seconds so far of the Triton below process `parent`: tritonserver and the python
    backend's stub processes (one per model instance)."""
    return sum(_cpu_seconds(child) for child in _children(parent)
               if _name(child) in ("tritonserver", "triton_python_b") or "stub" in _name(child))


@dataclass
class Server:
    """A server process on `port`; `triton_metrics` is set when it runs an embedded Triton."""

    name: str
    process: subprocess.Popen
    port: int
    triton_metrics: str | None = None
    log: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far: the frontend process, and Triton with its model stubs."""
        pid = self.process.pid
        forked = sum(_cpu_seconds(c) for c in _children(pid) if _name(c).startswith("python"))
        return {"server": _cpu_seconds(pid) + forked, "triton": triton_cpu_seconds(pid)}

    def stop(self) -> None:
        """SIGTERM to the server's process group (a forked baseline's processes too)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _wait_ready(server: Server, path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited ({server.process.returncode}); see {server.log}")
        try:
            with urllib.request.urlopen(server.url + path, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"{server.name} not ready after {timeout_s} s; see {server.log}")


def _spawn(name: str, module: str, args: list[str], env: Mapping[str, str], port: int,
           logs: Path) -> tuple[subprocess.Popen, Path]:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    environ = {**os.environ, "FACEGATE_AES_KEY": KEY, "FACEGATE_AES_IV": IV,
               "FACEGATE_ALLOW_LEGACY_IV": "true", **env}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO_ROOT,
                                   env=environ, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return process, log


UNLIMITED = {
    "FACEGATE_MAX_IN_FLIGHT": "128",
    "FACEGATE_MAX_COST_IN_FLIGHT": "4096",
    "FACEGATE_MAX_DECODED_PIXELS": str(64 * VIDEO_PIXELS),
    "FACEGATE_DECODE_WAIT_S": "120",
}
"""Admission and the decoded-pixel budget above the sweeps' 64 connections of any endpoint (a
video reserves `VIDEO_PIXELS`): a sweep measures capacity, not the limits' fast 503s
(the overload step and tests/integration/test_response_codes.py measure those)."""


def start_facegate(name: str, logs: Path, env: Mapping[str, str] | None = None) -> Server:
    """`python -m frontend` with its embedded Triton on free ports; `env` varies the settings."""
    port, metrics = free_port(), free_port()
    settings = {
        "FACEGATE_PORT": str(port),
        "FACEGATE_HOST": "127.0.0.1",
        "FACEGATE_TRITON_HTTP_PORT": str(free_port()),
        "FACEGATE_TRITON_GRPC_PORT": str(free_port()),
        "FACEGATE_TRITON_METRICS_PORT": str(metrics),
        "FACEGATE_LOG_LEVEL": "WARNING",
        **UNLIMITED,
        **(env or {}),
    }
    process, log = _spawn(name, "frontend", [], settings, port, logs)
    server = Server(name, process, port, f"http://127.0.0.1:{metrics}/metrics", log,
                    {"env": dict(env or {})})
    _wait_ready(server, "/readyz", 180)
    return server


def start_baseline(name: str, module: str, logs: Path, env: Mapping[str, str] | None = None,
                   *, processes: int = 1, workers: int | None = None) -> Server:
    """A baseline server (`benchmarks.baselines.*`) on a free port, as `processes` processes
    of `workers` threads (default: one process, a thread per core)."""
    port = free_port()
    # the same log level as facegate's run (FACEGATE_LOG_LEVEL below): no per-request log line
    args = ["--port", str(port), "--host", "127.0.0.1", "--log-level", "WARNING",
            "--processes", str(processes)]
    if workers is not None:
        args += ["--workers", str(workers)]
    process, log = _spawn(name, module, args, env or {}, port, logs)
    server = Server(name, process, port, None, log)
    _wait_ready(server, "/healthz", 120)
    return server


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text -> {(sample name, labels): value}."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Mapping[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    """The sum of the `name` samples carrying `labels`. A counter is found by its exposed name
    too: prometheus_client's parser names every counter sample ``<name>_total``, and Triton's
    counters (``nv_inference_exec_count``...) have no such suffix."""
    wanted = set(labels.items())
    names = {name, f"{name}_total"}
    return sum(v for (n, ls), v in samples.items() if n in names and wanted <= ls)


def post_form(url: str, body: bytes, timeout_s: float = 120) -> tuple[dict, float]:
    """POST a form-urlencoded body: the JSON answer (a 503's too) and the seconds it took."""
    started = time.monotonic()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            text = answer.read()
    except urllib.error.HTTPError as error:  # a 4xx/5xx answer still carries the contract's JSON
        text = error.read()
    return json.loads(text), time.monotonic() - started


def drain(server: Server, timeout_s: float = 120.0) -> None:
    """Wait until the server has finished the requests wrk left behind when it stopped: they
    would otherwise be counted, and take CPU, in the next step."""
    if not server.triton_metrics:
        time.sleep(1.0)  # the baselines have no gauge; each request takes well under a second
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if total(scrape(server.url + "/metrics"), "facegate_requests_in_flight") <= 1:
            return  # the scrape itself
        time.sleep(0.2)
    LOGGER.warning("%s still busy after %.0f s", server.name, timeout_s)
