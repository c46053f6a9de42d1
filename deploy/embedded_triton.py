"""Run the tritonserver binary that the nvidia-pytriton wheel carries, as a supervised child.

    python -m deploy.embedded_triton [--model-repository DIR] [--http-port N] ...

What the binary needs (measured here, see ../shared/docs/FACTS.md):

- ``--backend-directory`` with ``python/`` holding ``libtriton_python.so``,
  ``triton_python_backend_utils.py`` and the stub built for the running Python version. We
  assemble it from links into the wheel, under a private run directory.
- The stub and backend find their libraries (libcudart stubs and friends) in
  ``site-packages/nvidia_pytriton.libs``; without them Triton sits on "loading" forever, so
  that folder goes on ``LD_LIBRARY_PATH``, after the running interpreter's LIBDIR so that the
  stub links the same libpython as this interpreter.
- The stub's interpreter ignores ``PYTHONPATH`` and takes its prefix from the first
  ``python3`` on ``PATH``: the venv's ``bin/`` goes first, so model.py sees its packages.

The child dies with its parent (``PR_SET_PDEATHSIG``) and leads its own process group, so a
stop (or its death) takes its python-backend stubs with it; its log lines are passed to
logging (only the last few are kept, for error messages), readiness has a deadline, and a
model that fails to load ends the start with an error naming it rather than a hang.
`TritonSupervisor` notices a Triton that died or stopped answering and restarts it with
back-off.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

LOGGER = logging.getLogger(__name__)
TRITON_LOGGER = logging.getLogger("tritonserver")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_REPOSITORY = REPO_ROOT / "model_repository" / "embedded"
DEFAULT_STARTUP_TIMEOUT_S = 120.0
DEFAULT_STOP_TIMEOUT_S = 15.0
_PR_SET_PDEATHSIG = 1
_FAILURE_LINE = re.compile(r"failed to (load|initialize)|UNAVAILABLE", re.IGNORECASE)


class TritonStartError(RuntimeError):
    """tritonserver exited, or did not become ready, while starting."""


@dataclass(frozen=True)
class TritonPorts:
    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002


@dataclass(frozen=True)
class EmbeddedTritonConfig:
    """How to start the embedded server.

    Attributes:
        model_repository: the ``embedded`` repository written by the model builder.
        ports: HTTP, gRPC and metrics ports on 127.0.0.1.
        startup_timeout_s: how long every model may take to become ready.
        stop_timeout_s: how long a stop waits after SIGINT before SIGKILL.
        extra_args: further tritonserver arguments.
    """

    model_repository: Path = DEFAULT_MODEL_REPOSITORY
    ports: TritonPorts = field(default_factory=TritonPorts)
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S
    extra_args: tuple[str, ...] = ()


def _pytriton_dirs() -> tuple[Path, Path]:
    """The wheel's ``tritonserver`` folder and its ``nvidia_pytriton.libs``."""
    import pytriton  # imported here: only the launcher needs the wheel

    server_dir = Path(pytriton.__file__).resolve().parent / "tritonserver"
    return server_dir, server_dir.parents[1] / "nvidia_pytriton.libs"


def _backend_directory(run_dir: Path, server_dir: Path) -> Path:
    """Assemble ``backends/python`` with the stub for this interpreter's version."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = server_dir / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise TritonStartError(f"nvidia-pytriton has no python backend stub for Python {version}")
    python_dir = run_dir / "backends" / "python"
    python_dir.mkdir(parents=True)
    wheel_backend = server_dir / "backends" / "python"
    for source in (
        wheel_backend / "libtriton_python.so",
        wheel_backend / "triton_python_backend_utils.py",
        stub,
    ):
        (python_dir / source.name).symlink_to(source)
    return run_dir / "backends"


def _child_environment(libs_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    library_path = [sysconfig.get_config_var("LIBDIR") or "", str(libs_dir)]
    if env.get("LD_LIBRARY_PATH"):
        library_path.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in library_path if p)
    return env


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the parent dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn_options() -> tuple[list[str], dict]:
    """How to make the child die with its parent without running Python in a forked child.

    A ``preexec_fn`` forces a plain fork, which runs gRPC's fork handlers in a process whose
    other threads are busy in gRPC (the server's own client): the child then aborted now and
    then (exit -6, "epoll_wait error: Bad file descriptor") before it could exec. util-linux's
    ``setpriv --pdeathsig`` sets the same flag after a vfork-style spawn; without it, fall
    back to ``preexec_fn``.
    """
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [setpriv, "--pdeathsig", "TERM", "--"], {}
    return [], {"preexec_fn": _die_with_parent}


def _http_json(url: str, timeout_s: float = 2.0) -> tuple[int, dict | None]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as error:
        return error.code, None
    except (urllib.error.URLError, OSError):
        return 0, None


class EmbeddedTriton:
    """A tritonserver child process: `start` (blocks until ready), `stop` (idempotent).

    Use as a context manager, or call `start` and `stop` yourself.
    """

    def __init__(self, config: EmbeddedTritonConfig | None = None) -> None:
        self.config = config or EmbeddedTritonConfig()
        self._process: subprocess.Popen[str] | None = None
        self._run_dir: tempfile.TemporaryDirectory[str] | None = None
        self._log_tail: collections.deque[str] = collections.deque(maxlen=60)
        self._log_thread: threading.Thread | None = None

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.config.ports.http}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.config.ports.grpc}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.config.ports.metrics}/metrics"

    def command(self, backend_dir: Path, server_dir: Path) -> list[str]:
        ports = self.config.ports
        return [
            str(server_dir / "bin" / "tritonserver"),
            f"--model-repository={self.config.model_repository}",
            f"--backend-directory={backend_dir}",
            f"--cache-directory={server_dir / 'caches'}",
            f"--http-port={ports.http}",
            f"--grpc-port={ports.grpc}",
            f"--metrics-port={ports.metrics}",
            "--http-address=127.0.0.1",
            "--grpc-address=127.0.0.1",
            "--exit-on-error=true",
            "--strict-readiness=true",
            "--disable-auto-complete-config",
            *self.config.extra_args,
        ]

    def start(self) -> EmbeddedTriton:
        """Start tritonserver and wait until it and every model in the repository are ready.

        Raises:
            TritonStartError: it exited, a model failed to load, or the deadline passed.
        """
        if self._process is not None:
            return self
        repository = self.config.model_repository
        models = sorted(p.name for p in repository.iterdir() if (p / "config.pbtxt").is_file()) \
            if repository.is_dir() else []
        if not models:
            raise TritonStartError(
                f"no models in {repository}: build them first (make models)"
            )
        server_dir, libs_dir = _pytriton_dirs()
        self._run_dir = tempfile.TemporaryDirectory(prefix="facegate-triton-")
        backend_dir = _backend_directory(Path(self._run_dir.name), server_dir)
        command = self.command(backend_dir, server_dir)
        LOGGER.info("starting tritonserver: %s", " ".join(command))
        prefix, options = _spawn_options()
        self._process = subprocess.Popen(
            prefix + command,
            env=_child_environment(libs_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group: the stubs go with it
            **options,
        )
        self._log_thread = threading.Thread(target=self._pump_logs, daemon=True)
        self._log_thread.start()
        try:
            self._wait_ready(models)
        except BaseException:
            self.stop()
            raise
        return self

    def _pump_logs(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            line = line.rstrip()
            self._log_tail.append(line)
            TRITON_LOGGER.info("%s", line)

    def _failure(self, reason: str) -> TritonStartError:
        """The error to raise: the log's failure lines, then its last lines, each shown once."""
        lines = list(self._log_tail)
        failures = [line for line in lines if _FAILURE_LINE.search(line)]
        detail = "\n".join(dict.fromkeys(failures + lines[-10:]))
        return TritonStartError(f"{reason}\n{detail}")

    def _wait_ready(self, models: list[str]) -> None:
        deadline = time.monotonic() + self.config.startup_timeout_s
        base = f"http://{self.http_url}"
        while True:
            assert self._process is not None
            code = self._process.poll()
            if code is not None:
                if self._log_thread:
                    self._log_thread.join(timeout=2)
                raise self._failure(f"tritonserver exited with code {code} while starting")
            status, _ = _http_json(f"{base}/v2/health/ready")
            if status == 200:
                waiting = [m for m in models if _http_json(f"{base}/v2/models/{m}/ready")[0] != 200]
                if not waiting:
                    LOGGER.info("tritonserver ready with %s", ", ".join(models))
                    return
            if time.monotonic() > deadline:
                raise self._failure(
                    f"tritonserver not ready after {self.config.startup_timeout_s:.0f} s "
                    f"(models: {', '.join(models)})"
                )
            time.sleep(0.2)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def exit_code(self) -> int | None:
        """The exit code of a child that has ended (negative: the signal), else None."""
        return None if self._process is None else self._process.poll()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def live(self, timeout_s: float = 2.0) -> bool:
        """Triton answers its liveness endpoint."""
        return _http_json(f"http://{self.http_url}/v2/health/live", timeout_s)[0] == 200

    def stop(self) -> None:
        """SIGINT, then SIGKILL after `stop_timeout_s`; then whatever is left of its process
        group (python-backend stubs of a Triton that was killed), reaped. Safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=self.config.stop_timeout_s)
            except subprocess.TimeoutExpired:
                LOGGER.warning("tritonserver ignored SIGINT; killing it")
                process.kill()
                process.wait()
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            _wait_for_group_gone(process.pid, timeout_s=5.0)
        if self._log_thread is not None:
            self._log_thread.join(timeout=5)
            self._log_thread = None
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self._run_dir is not None:
            self._run_dir.cleanup()
            self._run_dir = None

    def restart(self) -> None:
        """Stop what is left of it (reaping it, its stubs and its run folder) and start anew.

        Raises:
            TritonStartError: as `start`.
        """
        self.stop()
        self.start()

    def __enter__(self) -> EmbeddedTriton:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _wait_for_group_gone(pgid: int, timeout_s: float) -> None:
    """Until the killed stubs are reaped (orphans, their new parent reaps them): a restart
    then starts with none of the old group left, holding neither memory nor ports."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)  # succeeds while any member, zombies included, remains
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)
    LOGGER.warning("tritonserver's process group %d still has members after %.0f s",
                   pgid, timeout_s)


class TritonSupervisor:
    """Keeps an embedded Triton serving: notices it died or stopped answering, restarts it.

    Every `poll_s` the child is checked: exited, or `unanswered_checks` liveness probes in a
    row unanswered (hung). Then it is killed with its stubs and started again, waiting
    `backoff_s[i]` before the i-th attempt in a row; after `max_attempts` failed attempts in a
    row the state is ``failed`` (the server's liveness probe then fails, so an orchestrator
    replaces the process). Every death and recovery is logged at ERROR with times.

    Attributes:
        state: ``running``, ``restarting`` or ``failed``.
        restarts: restarts that succeeded.
    """

    def __init__(
        self,
        triton: EmbeddedTriton,
        *,
        poll_s: float = 1.0,
        unanswered_checks: int = 3,
        backoff_s: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0),
        max_attempts: int = 8,
    ) -> None:
        self.triton = triton
        self.poll_s = poll_s
        self.unanswered_checks = unanswered_checks
        self.backoff_s = backoff_s
        self.max_attempts = max_attempts
        self.state = "running"
        self.restarts = 0

    async def run(self) -> None:
        """Watch until cancelled."""
        unanswered = 0
        while True:
            await asyncio.sleep(self.poll_s)
            if self.triton.running():
                answered = await asyncio.to_thread(self.triton.live)
                unanswered = 0 if answered else unanswered + 1
                if unanswered < self.unanswered_checks:
                    continue
                LOGGER.error("tritonserver (pid %s) stopped answering %d liveness checks in "
                             "a row; killing it", self.triton.pid, unanswered)
            else:
                LOGGER.error("tritonserver (pid %s) exited with code %s; restarting it",
                             self.triton.pid, self.triton.exit_code)
            unanswered = 0
            await self._recover()

    async def _recover(self) -> None:
        self.state = "restarting"
        down_since = time.monotonic()
        for attempt in range(self.max_attempts):
            await asyncio.sleep(self.backoff_s[min(attempt, len(self.backoff_s) - 1)])
            try:
                await asyncio.to_thread(self.triton.restart)
            except TritonStartError as error:
                LOGGER.error("tritonserver restart %d of %d failed: %s", attempt + 1,
                             self.max_attempts, error)
                continue
            self.state = "running"
            self.restarts += 1
            LOGGER.error("tritonserver recovered after %.1f s (restart %d, attempt %d)",
                         time.monotonic() - down_since, self.restarts, attempt + 1)
            return
        self.state = "failed"
        await asyncio.to_thread(self.triton.stop)
        LOGGER.critical("tritonserver could not be restarted in %d attempts; giving up",
                        self.max_attempts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the embedded tritonserver in the foreground.")
    parser.add_argument("--model-repository", type=Path, default=DEFAULT_MODEL_REPOSITORY)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    config = EmbeddedTritonConfig(
        model_repository=args.model_repository,
        ports=TritonPorts(args.http_port, args.grpc_port, args.metrics_port),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with EmbeddedTriton(config) as triton:
            with contextlib.suppress(KeyboardInterrupt):
                while triton.running() and not stop.wait(1.0):
                    pass
    except TritonStartError as error:
        LOGGER.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
