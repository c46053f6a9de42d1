"""Run wrk (Debian's `wrk` 4.1, C, epoll) for one load step and read its JSON summary.

wrk keeps exactly `concurrency` connections busy (closed loop: each sends its next request as
soon as the answer arrives) and records every answer's latency in its own histogram; the Lua
script (`contract.lua`) counts answers by contract code, since errors are JSON codes too.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("contract.lua")
TIMEOUT_S = 120  # wrk's default of 2 s would count a queued video request as a timeout


class WrkMissing(RuntimeError):
    """wrk is not installed."""


@dataclass(frozen=True)
class Step:
    """What one load step measured (latencies in ms)."""

    concurrency: int
    seconds: float
    requests: int
    ok: int
    failed: int
    codes: dict[str, int]
    socket_errors: int
    timeouts: int
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @property
    def error_rate(self) -> float:
        bad = self.requests - self.ok + self.socket_errors + self.timeouts
        return bad / max(1, self.requests + self.socket_errors + self.timeouts)


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkMissing("wrk is not installed: `apt-get install wrk` (Debian's package)")
    return found


def run_wrk(
    url: str, path: str, content_type: str, bodies: list[Path], concurrency: int, seconds: float,
    *, honour_retry_after: bool = False,
) -> Step:
    """Load `url + path` with `concurrency` connections for `seconds`, posting `bodies` in turn;
    with `honour_retry_after` a connection answered 503 waits its Retry-After first."""
    threads = min(concurrency, 2)
    command = [  # wrk takes whole seconds
        wrk_binary(), "-c", str(concurrency), "-t", str(threads), "-d", f"{math.ceil(seconds)}s",
        "--timeout", f"{TIMEOUT_S}s", "-s", str(SCRIPT), url + path,
        "--", path, content_type, *map(str, bodies),
    ]
    environ = {**os.environ, "WRK_HONOUR_RETRY_AFTER": "1" if honour_retry_after else "0"}
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            timeout=seconds + TIMEOUT_S + 30, env=environ)
    line = next((x for x in result.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr or result.stdout}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    latency = data["latency_us"]
    duration = data["duration_us"] / 1e6
    return Step(
        concurrency=concurrency,
        seconds=round(duration, 2),
        requests=data["requests"],
        ok=data["ok"],
        failed=data["failed"] + data["unparsed"],
        codes=data["codes"],
        socket_errors=data["socket_errors"],
        timeouts=data["timeouts"],
        requests_per_s=round(data["requests"] / duration, 2),
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p95_ms=latency["p95"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
    )
