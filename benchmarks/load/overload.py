"""Overload: every request gets its answer or a fast 503, and none runs into the model deadline.

    .venv/bin/python -m benchmarks.load.overload [--seconds 12] [--concurrency 16,64,128,256]

facegate runs with its default admission (`FACEGATE_MAX_IN_FLIGHT` requests and
`FACEGATE_MAX_COST_IN_FLIGHT` photo units in progress, a video costing 16; the decoded-pixel
budget), started the way an operator starts it. Each step loads it with an endpoint mix (`MIX`:
photos, quality checks, liveness files and videos) at a total number of connections, one wrk
per endpoint, all started together, each connection sending its next request as soon as the
previous one is answered. Beside them a probe sends one image_verification at a time and keeps
each answer's code and latency, so that the 503s' own latency is known (wrk's histogram mixes
them with the served answers).

A step passes (`verdict`) when no connection broke and no request timed out, every answer is
success (1000) or 503, the server counted no failed model call (`facegate_triton_errors_total`:
a call that runs into `FACEGATE_TRITON_TIMEOUT_S` counts there) and the probe's 503s came
within `FAST_503_S`. Writes ``benchmarks/results/overload.{json,md}``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.load import payloads
from benchmarks.load.servers import (
    IV,
    KEY,
    UNLIMITED,
    Server,
    drain,
    post_form,
    scrape,
    start_facegate,
    total,
)
from benchmarks.load.wrk import Step, run_wrk, wrk_binary
from benchmarks.paths import DATA, RESULTS, write_results
from frontend.config import Settings
from frontend.crypto import KeyRing

LOGGER = logging.getLogger("overload")
MIX = {"image_verification": 0.5, "face_quality": 0.25, "liveness_image_verification": 0.125,
       "silent_detection": 0.125}
"""Each endpoint's share of the connections (at least one each)."""
CONCURRENCY = (16, 64, 128, 256)
FAST_503_S = 2.5
"""A 503 is "fast" within this: admission refuses at once; a request waiting for decoded-pixel
room gives up after `PixelBudget`'s 2 s wait."""
ANSWERS = {"1000", "503"}
PROBE = "image_verification"


def connections(total_connections: int, mix: dict[str, float] = MIX) -> dict[str, int]:
    """`total_connections` shared out by `mix`, at least one each, summing to the total."""
    shares = {name: max(1, round(total_connections * share)) for name, share in mix.items()}
    largest = max(shares, key=shares.get)
    shares[largest] += total_connections - sum(shares.values())
    return shares


@dataclasses.dataclass(frozen=True)
class ProbeAnswer:
    code: str
    seconds: float


def ask(url: str, body: bytes) -> ProbeAnswer:
    """One request: its contract code and latency."""
    answer, seconds = post_form(url, body)
    return ProbeAnswer(str(answer.get("code")), seconds)


def probe(url: str, body: bytes, until: float) -> list[ProbeAnswer]:
    """One request at a time until `until` (monotonic)."""
    answers = []
    while time.monotonic() < until:
        answers.append(ask(url, body))
    return answers


def verdict(steps: dict[str, Step], triton_errors: float, probed: list[ProbeAnswer],
            fast_s: float = FAST_503_S) -> list[str]:
    """What broke the promise in one step (empty: it held)."""
    broken = []
    for endpoint, step in steps.items():
        if step.socket_errors or step.timeouts:
            broken.append(f"{endpoint}: {step.socket_errors} broken connections, "
                          f"{step.timeouts} timeouts")
        unexpected = {c: n for c, n in step.codes.items() if c not in ANSWERS}
        if unexpected or step.failed - sum(step.codes.values()):
            broken.append(f"{endpoint}: answers other than 1000 or 503: {unexpected or 'unparsed'}")
    if triton_errors:
        broken.append(f"{triton_errors:.0f} failed model calls")
    slow = [a for a in probed if a.code == "503" and a.seconds > fast_s]
    if slow:
        broken.append(f"{len(slow)} probed 503s slower than {fast_s} s "
                      f"(slowest {max(a.seconds for a in slow):.2f} s)")
    return broken


def measure(server: Server, loads: dict[str, payloads.Workload], bodies: dict[str, list[Path]],
            total_c: int, seconds: float, polite: bool) -> dict:
    """One step: every endpoint's wrk and the probe at once; `polite` clients wait the
    Retry-After of a 503 before their next request, the others send it at once."""
    shares = connections(total_c)
    drain(server)  # each step starts on an idle server
    before = scrape(server.url + "/metrics")
    with concurrent.futures.ThreadPoolExecutor(len(shares) + 1) as pool:
        running = {name: pool.submit(run_wrk, server.url, loads[name].path, payloads.FORM,
                                     bodies[name], c, seconds, honour_retry_after=polite)
                   for name, c in shares.items()}
        # the probe starts once wrk's connections are busy, and stops before they do
        time.sleep(1.0)
        probed = pool.submit(probe, server.url + loads[PROBE].path, loads[PROBE].bodies[0],
                             time.monotonic() + seconds - 2.0)
        steps = {name: future.result() for name, future in running.items()}
        answers = probed.result()
    after = scrape(server.url + "/metrics")
    failed_calls = (total(after, "facegate_triton_errors_total")
                    - total(before, "facegate_triton_errors_total"))
    broken = verdict(steps, failed_calls, answers)
    refused = [a.seconds for a in answers if a.code == "503"]
    served = [a.seconds for a in answers if a.code == "1000"]
    row = {
        "connections": total_c, "clients": "polite" if polite else "impolite",
        "seconds": seconds, "held": not broken, "broken": broken,
        "served_per_s": {name: round(step.ok / step.seconds, 2) for name, step in steps.items()},
        "failed_model_calls": failed_calls,
        "endpoints": {name: {"connections": shares[name], **dataclasses.asdict(step),
                             "refused_share": round(step.codes.get("503", 0)
                                                    / max(1, step.requests), 3)}
                      for name, step in steps.items()},
        "probe": {"answers": len(answers), "served": len(served), "refused": len(refused),
                  "served_p50_s": _median(served), "refused_p50_s": _median(refused),
                  "refused_max_s": round(max(refused), 3) if refused else None},
    }
    LOGGER.info("c=%d %s clients: %s; served/s %s, 503s %s", total_c, row["clients"],
                "held" if not broken else "BROKEN: " + "; ".join(broken), row["served_per_s"],
                {n: s.codes.get("503", 0) for n, s in steps.items()})
    return row


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def run(seconds: float, concurrency: tuple[int, ...]) -> dict:
    wrk_binary()
    keyring = KeyRing.from_strings([KEY], IV)
    defaults = Settings()
    # every limit the sweeps widen, back at its shipped value
    admission = {name: str(getattr(defaults, name.removeprefix("FACEGATE_").lower()))
                 for name in UNLIMITED}
    work = Path(tempfile.mkdtemp(prefix="facegate-overload-"))
    try:
        loads = {w.endpoint: w for w in payloads.workloads(DATA, keyring) if w.endpoint in MIX}
        bodies = {name: payloads.write_bodies(w, work / "bodies") for name, w in loads.items()}
        server = start_facegate("facegate-overload", work / "logs", admission)
        try:
            steps = [measure(server, loads, bodies, c, seconds, polite)
                     for c in concurrency for polite in (True, False)]
            drain(server)
            after = [ask(server.url + loads[PROBE].path, body) for body in loads[PROBE].bodies]
        finally:
            server.stop()
        return {
            "command": " ".join(["python -m benchmarks.load.overload", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "cpu_count": os.cpu_count(),
            "admission": {"max_in_flight": defaults.max_in_flight,
                          "max_cost_in_flight": defaults.max_cost_in_flight,
                          "max_decoded_pixels": defaults.max_decoded_pixels,
                          "triton_timeout_s": defaults.triton_timeout_s},
            "mix": MIX, "fast_503_s": FAST_503_S,
            "workloads": {name: w.description for name, w in loads.items()},
            "steps": steps, "served_after": [dataclasses.asdict(a) for a in after],
            "held": all(s["held"] for s in steps) and all(a.code == "1000" for a in after),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def markdown(result: dict) -> str:
    a = result["admission"]
    lines = [
        "# Overload: an answer or a fast 503, never the model deadline", "",
        f"`{result['command']}`, {result['date']}, {result.get('cpu_count', '?')} cores (load "
        "generator, frontend and Triton "
        f"on the same cores). Admission as shipped: {a['max_in_flight']} requests and "
        f"{a['max_cost_in_flight']} photo units in progress (a video 16, a liveness_file 8), "
        f"{a['max_decoded_pixels'] / 1e6:.0f} M decoded pixels; model deadline "
        f"{a['triton_timeout_s']:g} s. Connections shared "
        + ", ".join(f"{name} {share:.0%}" for name, share in result["mix"].items())
        + f"; a probe sends one {PROBE} at a time beside them.", "",
        f"**{'Held at every step' if result['held'] else 'Broken'}**: no broken connection or "
        "timeout, every answer 1000 or 503, no failed model call, the probe's 503s within "
        f"{result['fast_503_s']} s. *Polite* clients wait the Retry-After of a 503 before their "
        "next request; *impolite* ones send it at once (wrk's closed loop).", "",
        "| connections | clients | endpoint (connections) | served/s | 503s | answers | p50 ms "
        "| p99 ms | max ms | timeouts |", "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in result["steps"]:
        for name, e in step["endpoints"].items():
            lines.append(
                f"| {step['connections']} | {step['clients']} | {name} ({e['connections']}) | "
                f"{step['served_per_s'][name]} | {e['codes'].get('503', 0)} | {e['requests']} | "
                f"{e['p50_ms']:.0f} | {e['p99_ms']:.0f} | {e['max_ms']:.0f} | {e['timeouts']} |")
    lines += ["", "| connections | clients | held | failed model calls | probe: answers | "
              "served p50 s | 503s | 503 p50 s | 503 max s |", "|" + "---|" * 9]
    for step in result["steps"]:
        p = step["probe"]
        held = "yes" if step["held"] else "; ".join(step["broken"])
        lines.append(f"| {step['connections']} | {step['clients']} | {held} | "
                     f"{step['failed_model_calls']:.0f} | {p['answers']} | {p['served_p50_s']} | "
                     f"{p['refused']} | {p['refused_p50_s']} | {p['refused_max_s']} |")
    after = result["served_after"]
    lines += ["", f"After the last step, {len(after)} {PROBE} requests one at a time: codes "
                  + ", ".join(a["code"] for a in after) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="length of a step")
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)),
                        help="total connections of each step")
    parser.add_argument("--out", type=Path, default=RESULTS / "overload.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = run(args.seconds, tuple(int(c) for c in args.concurrency.split(",")))
    write_results(args.out.stem, result, markdown(result), args.out.parent)
    LOGGER.info("%s: %s", "held" if result["held"] else "BROKEN", args.out)
    return 0 if result["held"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
