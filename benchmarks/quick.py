"""`make bench-quick`: image_verification at concurrency 16, facegate against the in-process
ONNX Runtime baselines, in alternating rounds, in about three minutes.

    .venv/bin/python -m benchmarks.quick [--rounds 3] [--seconds 12]

The three servers (facegate with its embedded Triton; the ONNX Runtime baseline as by default,
and with facegate's no-spinning setting, each in its better layout of the two a user tries:
one process of two threads, or two processes of one) are started once; then each round loads
each server in turn for `--seconds` with the same 16 real photo pairs. Alternating rounds
spread the machine's drift over all three. The last line is the medians:

    image_verification c16: facegate F req/s, ort-default D req/s, ort-nospin N req/s, ratio R
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import tempfile
from pathlib import Path

from benchmarks.load import payloads
from benchmarks.load.servers import IV, KEY, Server, start_baseline, start_facegate
from benchmarks.load.wrk import run_wrk
from benchmarks.paths import DATA, RESULTS
from frontend.crypto import KeyRing

LOGGER = logging.getLogger("bench-quick")
CONCURRENCY = 16
LAYOUTS = {"1x2": {"processes": 1, "workers": 2}, "2x1": {"processes": 2, "workers": 1}}
"""The baselines' layouts: processes x threads."""


def _step(server: Server, workload: payloads.Workload, bodies: list[Path], seconds: float
          ) -> dict:
    step = run_wrk(server.url, workload.path, payloads.FORM, bodies, CONCURRENCY, seconds)
    LOGGER.info("%-26s %7.2f req/s p99 %7.1f ms errors %.3f", server.name,
                step.requests_per_s, step.p99_ms, step.error_rate)
    return {"req_s": step.requests_per_s, "p99_ms": step.p99_ms, "error_rate": step.error_rate}


def _best_layout(name: str, env: dict, logs: Path, workload, bodies, seconds: float) -> Server:
    """The better of the baseline's two layouts, by one short step each."""
    scored = []
    for layout, shape in LAYOUTS.items():
        server = start_baseline(f"{name}-{layout}", "benchmarks.baselines.ort_server", logs, env,
                                **shape)
        try:
            scored.append((_step(server, workload, bodies, seconds / 2)["req_s"], layout))
        finally:
            server.stop()
    best = max(scored)[1]
    LOGGER.info("%s: layouts %s, keeping %s", name, scored, best)
    return start_baseline(f"{name}-{best}", "benchmarks.baselines.ort_server", logs, env,
                          **LAYOUTS[best])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    keyring = KeyRing.from_strings([KEY], IV)
    workload = next(w for w in payloads.workloads(DATA, keyring)
                    if w.endpoint == "image_verification")
    logs = Path(tempfile.mkdtemp(prefix="facegate-quick-"))
    bodies = payloads.write_bodies(workload, logs / "bodies")
    servers = {"facegate": start_facegate("facegate", logs)}
    try:
        servers["ort-default"] = _best_layout("ort-default", {}, logs, workload, bodies,
                                              args.seconds)
        servers["ort-nospin"] = _best_layout("ort-nospin", {"FACEGATE_ORT_SPIN": "0"}, logs,
                                             workload, bodies, args.seconds)
        for server in servers.values():  # warm-up
            _step(server, workload, bodies, 2)
        rounds: dict[str, list[dict]] = {name: [] for name in servers}
        for _ in range(args.rounds):
            for name, server in servers.items():
                rounds[name].append(_step(server, workload, bodies, args.seconds))
    finally:
        for server in servers.values():
            server.stop()
    median = {name: statistics.median(r["req_s"] for r in steps) for name, steps in rounds.items()}
    ratio = median["facegate"] / max(median["ort-default"], median["ort-nospin"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "quick.json").write_text(json.dumps({
        "command": "make bench-quick", "machine": platform.node(), "concurrency": CONCURRENCY,
        "layouts": {n: s.name for n, s in servers.items()}, "rounds": rounds, "median_req_s":
        median, "ratio": round(ratio, 2)}, indent=1) + "\n")
    print(f"image_verification c{CONCURRENCY}: facegate {median['facegate']:.1f} req/s, "
          f"ort-default {median['ort-default']:.1f} req/s, ort-nospin "
          f"{median['ort-nospin']:.1f} req/s, ratio F/max(D,N) {ratio:.2f}")


if __name__ == "__main__":
    main()
