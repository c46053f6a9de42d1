"""Markdown tables, ratios and PNG plots from one `benchmarks.load` run."""

from __future__ import annotations

from pathlib import Path

from benchmarks.plots import pyplot, save

COMPARED = ("facegate", "facegate-nobatch", "ort-inprocess", "ort-inprocess-nospin", "dlib",
            "facegate-spinning", "facegate-detector-batched", "facegate-small-detector")
P99_BUDGETS_MS = (250, 500, 1000, 2000, 4000)


def _runs(results: dict, **match: str) -> list[dict]:
    return [r for r in results["runs"] if all(r[k] == v for k, v in match.items())]


def _step(run: dict, concurrency: int) -> dict | None:
    return next((s for s in run["steps"] if s["concurrency"] == concurrency), None)


def best_within(run: dict, p99_ms: float) -> float:
    """Highest requests/s of a sweep among steps whose p99 stays within `p99_ms` (0 if none)."""
    fits = [s["requests_per_s"] for s in run["steps"]
            if s["p99_ms"] <= p99_ms and s["error_rate"] == 0]
    return max(fits, default=0.0)


def ratios(results: dict, baseline: str, server: str = "facegate") -> dict:
    """facegate / baseline on image_verification: throughput at equal p99, p99 at equal load."""
    ours = _runs(results, endpoint="image_verification", server=server)
    theirs = _runs(results, endpoint="image_verification", server=baseline)
    if not ours or not theirs:
        return {}
    ours, theirs = ours[0], theirs[0]
    at_budget = {}
    for budget in P99_BUDGETS_MS:
        a, b = best_within(ours, budget), best_within(theirs, budget)
        at_budget[budget] = round(a / b, 2) if b else None
    at_load = {}
    for step in ours["steps"]:
        other = _step(theirs, step["concurrency"])
        if other and other["requests_per_s"] > 0 and other["p99_ms"] > 0:
            at_load[step["concurrency"]] = {
                "throughput": round(step["requests_per_s"] / other["requests_per_s"], 2),
                "p99": round(step["p99_ms"] / other["p99_ms"], 2),
            }
    return {"throughput_at_equal_p99": at_budget, "at_equal_concurrency": at_load}


def _endpoint_table(run: dict) -> list[str]:
    lines = [f"#### {run['endpoint']} ({run['server']})", "",
             "| c | req/s | p50 ms | p95 ms | p99 ms | errors | detector batch / queue ms | "
             "embedder batch / queue ms | liveness batch / queue ms | CPU frontend / Triton % |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in run["steps"]:
        triton = s.get("triton", {})
        cells = []
        for model in ("face_detector", "face_embedder", "face_liveness"):
            m = triton.get(model)
            cells.append(f"{m['average_batch']} / {m['queue_ms_per_request']}" if m else "-")
        lines.append(
            f"| {s['concurrency']} | {s['requests_per_s']} | {s['p50_ms']:.0f} | "
            f"{s['p95_ms']:.0f} | {s['p99_ms']:.0f} | {100 * s['error_rate']:.1f}% | "
            + " | ".join(cells) + f" | {s['cpu_server_pct']} / {s['cpu_triton_pct']} |")
    codes = run["warm_up_codes"]
    lines += ["", f"Warm-up answers (each body once): {codes}."]
    if run.get("skipped_concurrency"):
        lines.append(f"Skipped concurrency {run['skipped_concurrency']}: saturated, a step would "
                     "only measure a longer queue (latency = concurrency / throughput) and need "
                     "a window over the limit.")
    lines.append("")
    return lines


def _comparison_table(results: dict) -> list[str]:
    servers = [s for s in COMPARED if _runs(results, endpoint="image_verification", server=s)]
    servers += [r["server"] for r in _runs(results, endpoint="image_verification")
                if r["server"] not in servers]
    lines = ["| c | " + " | ".join(f"{s} req/s (p99 ms)" for s in servers) + " |",
             "|---|" + "---|" * len(servers)]
    concurrencies = sorted({s["concurrency"] for r in _runs(results, endpoint="image_verification")
                            for s in r["steps"]})
    for c in concurrencies:
        cells = []
        for server in servers:
            step = _step(_runs(results, endpoint="image_verification", server=server)[0], c)
            cells.append(f"{step['requests_per_s']} ({step['p99_ms']:.0f})" if step else "-")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return lines


def _ratio_table(results: dict) -> list[str]:
    lines = ["| facegate / baseline | " + " | ".join(f"p99 <= {b} ms" for b in P99_BUDGETS_MS)
             + " | c16 throughput | c16 p99 |", "|---|" + "---|" * (len(P99_BUDGETS_MS) + 2)]
    for baseline in COMPARED[1:]:
        r = ratios(results, baseline)
        if not r:
            continue
        budget = [f"{v}x" if v is not None else "n/a"
                  for v in r["throughput_at_equal_p99"].values()]
        c16 = r["at_equal_concurrency"].get(16, {})
        lines.append(f"| {baseline} | " + " | ".join(budget)
                     + f" | {c16.get('throughput', 'n/a')}x | {c16.get('p99', 'n/a')}x |")
    return lines


def _cpu_table(results: dict, concurrency: int = 16) -> list[str]:
    """Where the machine's CPU went at one load, per server: the cost of one request."""
    lines = [f"| server (c{concurrency}) | req/s | CPU frontend % | CPU Triton % | "
             "CPU ms per request |", "|---|---|---|---|---|"]
    for run in _runs(results, endpoint="image_verification"):
        step = _step(run, concurrency)
        if step and step["requests_per_s"]:
            cpu = step["cpu_server_pct"] + step["cpu_triton_pct"]
            lines.append(f"| {run['server']} | {step['requests_per_s']} | "
                         f"{step['cpu_server_pct']} | {step['cpu_triton_pct']} | "
                         f"{10 * cpu / step['requests_per_s']:.1f} |")
    return lines


def _stage_table(results: dict) -> list[str]:
    run = _runs(results, endpoint="image_verification", server="facegate")
    if not run:
        return []
    steps = [s for s in run[0]["steps"] if "stages_ms_per_request" in s]
    stages = sorted({k for s in steps for k in s["stages_ms_per_request"]})
    lines = ["| c | " + " | ".join(stages) + " | p50 |", "|---|" + "---|" * (len(stages) + 1)]
    for s in steps:
        cells = [str(s["stages_ms_per_request"].get(k, "-")) for k in stages]
        lines.append(f"| {s['concurrency']} | " + " | ".join(cells) + f" | {s['p50_ms']:.0f} |")
    return lines


def markdown(results: dict) -> str:
    machine = results["machine"]
    lines = [
        "# Load benchmark results", "",
        f"Command: `{results['command']}` ({results.get('wall_s', '?')} s), {results['date']}. "
        f"Machine: {machine['cpu']}, {machine['cpu_count']} cores, Python {machine['python']}, "
        f"ONNX Runtime {machine['onnxruntime']}, tritonserver {machine['tritonserver']}, "
        f"wrk {machine['wrk']}; {machine['note']}.", "",
        "Workloads: " + "; ".join(f"`{k}`: {v}" for k, v in results["workloads"].items()) + ".",
        "", "## image_verification: facegate and the baselines", "",
        *_comparison_table(results), "", "Ratios (facegate / baseline): throughput at equal p99 "
        "(best requests/s of each sweep among error-free steps within the p99 budget), and "
        "throughput and p99 at equal concurrency.", "", *_ratio_table(results), "",
        "CPU per request (the servers' processes' CPU time over the step, from /proc; "
        "100% is one core busy):", "", *_cpu_table(results), "",
        "Stage time per request inside facegate (ms, summed over the request's concurrent "
        "parts, from `facegate_stage_duration_seconds`):", "", *_stage_table(results), "",
        "## Every endpoint", "",
    ]
    for run in results["runs"]:
        lines += _endpoint_table(run)
    return "\n".join(lines) + "\n"


def plot(results: dict, out_dir: Path) -> list[Path]:
    """Throughput and p99 against concurrency: facegate's endpoints, and image_verification's
    servers."""
    return [
        _plot_pair(_runs(results, server="facegate"), "endpoint", "facegate",
                   out_dir / "load_endpoints.png"),
        _plot_pair(_runs(results, endpoint="image_verification"), "server",
                   "image_verification", out_dir / "load_image_verification.png"),
    ]


def _plot_pair(runs: list[dict], label: str, title: str, path: Path) -> Path:
    fig, (left, right) = pyplot().subplots(1, 2, figsize=(12, 4.5))
    for run in runs:
        c = [s["concurrency"] for s in run["steps"]]
        left.plot(c, [s["requests_per_s"] for s in run["steps"]], marker="o", label=run[label])
        right.plot(c, [s["p99_ms"] for s in run["steps"]], marker="o", label=run[label])
    _axes(left, "requests/s", f"{title}: throughput")
    _axes(right, "p99 latency (ms)", f"{title}: p99", log_y=True)
    left.legend(fontsize=8)
    return save(fig, path)


def _axes(ax, ylabel: str, title: str, log_y: bool = False) -> None:
    ax.set_xscale("log", base=2)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("concurrency (connections)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)




def write(results: dict, out_dir: Path) -> None:
    (out_dir / "load.md").write_text(markdown(results))
    plot(results, out_dir)
