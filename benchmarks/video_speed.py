"""Speed of ``/liveness/silent_detection/stateless`` over real HTTP, and its stage breakdown.

    .venv/bin/python -m benchmarks.video_speed [--requests-c1 10] [--requests-c8 24] [--soak 200]

Two clips cut and re-encoded (H.264) from the shared live videos: 3 s at 1280x720
(``liveportrait_source_s32``) and 10 s at 720x1280 (``liveportrait_driving_d13``). For each:
end-to-end latency at concurrency 1 and requests/s at concurrency 8 over HTTP, and the time of
each video stage (decode, detect, liveness, motion), timed in-process on the same
server (mean of 5 runs): their sum against the end-to-end p50 shows what HTTP, AES and JSON
add. Then a soak of consecutive requests: the server process's RSS before and after, and the
temporary directory's entries, which must not grow. Writes
``benchmarks/results/video_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from aiohttp.test_utils import TestServer

from benchmarks.load.payloads import short_clip
from benchmarks.load.servers import free_port
from benchmarks.paths import DATA, RESULTS
from deploy.embedded_triton import (
    DEFAULT_MODEL_REPOSITORY,
    EmbeddedTriton,
    EmbeddedTritonConfig,
    TritonPorts,
)
from frontend.api.app import create_app
from frontend.api.handlers import VIDEO_COST
from frontend.api.metrics import METRICS
from frontend.api.services import SERVICES
from frontend.config import Settings
from frontend.contract.fields import SILENT_DETECTION
from frontend.crypto import KeyRing

KEY, IV = "k" * 32, "i" * 12


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _post(session: aiohttp.ClientSession, body: bytes) -> float:
    started = time.perf_counter()
    async with session.post(
        SILENT_DETECTION.path,
        data=io.BytesIO(body),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ) as response:
        answer = await response.json()
    assert answer["code"] == 1000, answer
    return time.perf_counter() - started


async def _load(session, body: bytes, concurrency: int, requests: int) -> dict:
    queue = list(range(requests))
    latencies: list[float] = []

    async def worker() -> None:
        while queue:
            queue.pop()
            latencies.append(await _post(session, body))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": requests,
        "requests_per_s": round(requests / wall, 3),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "max_ms": round(1000 * max(latencies), 1),
    }


VIDEO_STAGES = ("decode", "detect", "liveness", "motion")


async def _stages(app, video: bytes, repeats: int = 5) -> dict[str, float]:
    """Mean ms of each video stage, as the server's own stage histogram counts it."""
    registry = app[METRICS].registry

    def sums() -> dict[str, float]:
        return {
            stage: registry.get_sample_value(
                "facegate_stage_duration_seconds_sum", {"stage": f"video_{stage}"}
            ) or 0.0
            for stage in VIDEO_STAGES
        }

    before = sums()
    for _ in range(repeats):
        await app[SERVICES].videos.silent_liveness(video)
    after = sums()
    return {k: round(1000 * (after[k] - before[k]) / repeats, 1) for k in VIDEO_STAGES}


async def _main(args: argparse.Namespace) -> dict:
    data = args.data_dir
    clips = {
        "3s_1280x720": short_clip(data / "video/live/liveportrait_source_s32.mp4", 3.0),
        "10s_720x1280": short_clip(data / "video/live/liveportrait_driving_d13.mp4", 10.0),
    }
    keyring = KeyRing.from_strings([KEY], IV)
    config = EmbeddedTritonConfig(
        model_repository=DEFAULT_MODEL_REPOSITORY,
        ports=TritonPorts(free_port(), free_port(), free_port()),
    )
    results: dict = {
        "clips": {},
        "machine": {
            "node": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
    }
    with EmbeddedTriton(config) as triton:
        app = create_app(
            # Admission and the decoded-pixel budget widened to the 8 concurrent clips: this
            # measures the pipeline, not the fast 503s the defaults give the clips beyond
            # what they admit (README "Configuration").
            Settings(triton_url=triton.grpc_url, aes_key=KEY, aes_iv=IV, allow_legacy_iv=True,
                     triton_timeout_s=60, max_cost_in_flight=8 * VIDEO_COST,
                     max_decoded_pixels=8 * 500_000_000, decode_wait_s=120)
        )
        server = TestServer(app, port=free_port())
        await server.start_server()
        try:
            async with aiohttp.ClientSession(str(server.make_url("/"))) as session:
                for name, video in clips.items():
                    body = urlencode({"encrypted_video": keyring.encrypt(video)}).encode()
                    await _post(session, body)  # warm-up
                    c1 = await _load(session, body, 1, args.requests_c1)
                    c8 = await _load(session, body, 8, args.requests_c8)
                    stages = await _stages(app, video)
                    results["clips"][name] = {
                        "bytes": len(video),
                        "c1": c1,
                        "c8": c8,
                        "stages_ms_at_c1": stages,
                    }
                    print(json.dumps({name: results["clips"][name]}), flush=True)
                body = urlencode(
                    {"encrypted_video": keyring.encrypt(clips["3s_1280x720"])}
                ).encode()
                temp_before = sorted(os.listdir(tempfile.gettempdir()))
                rss_before = rss_mb()
                soak = await _load(session, body, 2, args.soak)
                rss_after = rss_mb()
                temp_after = sorted(os.listdir(tempfile.gettempdir()))
                results["soak"] = {
                    **soak,
                    "rss_mb_before": round(rss_before, 1),
                    "rss_mb_after": round(rss_after, 1),
                    "max_rss_mb": round(
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
                    ),
                    "temp_entries_added": sorted(set(temp_after) - set(temp_before)),
                }
                print(json.dumps({"soak": results["soak"]}), flush=True)
        finally:
            await server.close()
    return results


def _markdown(results: dict, command: str) -> str:
    lines = [
        "# silent_detection speed",
        "",
        f"Command: `{command}`; machine: "
        f"{results['machine']}. Load generator, server and Triton share the machine.",
        "",
        "| clip | c1 p50 ms | c8 req/s | c8 p50 ms | stages at c1 (ms) |",
        "|---|---|---|---|---|",
    ]
    for name, clip in results["clips"].items():
        stages = ", ".join(f"{k} {v}" for k, v in clip["stages_ms_at_c1"].items())
        lines.append(
            f"| {name} | {clip['c1']['p50_ms']} | {clip['c8']['requests_per_s']} | "
            f"{clip['c8']['p50_ms']} | {stages} |"
        )
    soak = results["soak"]
    lines += [
        "",
        f"Soak: {soak['requests']} requests at concurrency 2: RSS "
        f"{soak['rss_mb_before']} MB before, {soak['rss_mb_after']} MB after; temporary "
        f"directory entries added: {soak['temp_entries_added'] or 'none'}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=DATA
    )
    parser.add_argument("--requests-c1", type=int, default=10)
    parser.add_argument("--requests-c8", type=int, default=24)
    parser.add_argument("--soak", type=int, default=200)
    args = parser.parse_args()
    results = asyncio.run(_main(args))
    command = (
        f".venv/bin/python -m benchmarks.video_speed --requests-c1 {args.requests_c1} "
        f"--requests-c8 {args.requests_c8} --soak {args.soak}"
    )
    results["command"] = command
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "video_speed.json").write_text(json.dumps(results, indent=1))
    (RESULTS / "video_speed.md").write_text(_markdown(results, command))


if __name__ == "__main__":
    main()
