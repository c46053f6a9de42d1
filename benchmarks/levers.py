"""Two speed levers measured alone, for the choice whether to build them (neither was kept).

    .venv/bin/python -m benchmarks.levers

1. **Triton's system shared memory for the detector's input.** The 640x640x3 image (1.2 MB)
   of every detector call travels in the gRPC message; with a registered POSIX shared-memory
   region per call in flight it would not. An embedded Triton with the committed models gets
   `CALLS` detector calls at concurrency `CONCURRENCY`, alternately by bytes and through
   shared memory, twice each; per call: the client's CPU (this process: serialising, gRPC)
   and Triton's (the server and its python-backend stubs, from /proc).
2. **Threads of the video decoder.** Every frame of an H.264 clip is decoded (the sampled ones
   depend on the others); PyAV's thread types (`AUTO`, as shipped, `SLICE`, `FRAME`, `NONE`)
   on three live clips: wall time and CPU time per decode (best of `REPEATS`), since under
   load it is CPU, not wall time, that limits clips/s.

Writes ``benchmarks/results/levers.{json,md}``.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import resource
import time

import av
import numpy as np
import tritonclient.grpc.aio as grpcclient
import tritonclient.utils.shared_memory as shm

from benchmarks.load.payloads import short_clip
from benchmarks.load.servers import _children, _cpu_seconds, _name, free_port
from benchmarks.paths import DATA, RESULTS
from deploy.embedded_triton import (
    DEFAULT_MODEL_REPOSITORY,
    EmbeddedTriton,
    EmbeddedTritonConfig,
    TritonPorts,
)
from frontend.inference.triton import _CHANNEL_ARGS
from model_repository.specs import FACE_DETECTOR

CALLS, CONCURRENCY = 200, 4
CLIPS = (("liveportrait_source_s32.mp4", 3.0), ("liveportrait_driving_d13.mp4", 10.0),
         ("liveportrait_driving_d6.mp4", 10.0))
THREAD_TYPES = ("AUTO", "SLICE", "FRAME", "NONE")
REPEATS = 5


async def _detector_calls(url: str, triton_pids: list[int]) -> list[dict]:
    image = np.random.default_rng(0).integers(0, 255, (1, 640, 640, 3), dtype=np.uint8)
    client = grpcclient.InferenceServerClient(url, channel_args=_CHANNEL_ARGS)
    outputs = [grpcclient.InferRequestedOutput("detections")]
    regions = []
    for k in range(CONCURRENCY):
        name, key = f"levers{k}", f"/facegate-levers-{os.getpid()}-{k}"
        regions.append((name, shm.create_shared_memory_region(name, key, image.nbytes)))
        await client.register_system_shared_memory(name, key, image.nbytes)
    free: asyncio.Queue[int] = asyncio.Queue()
    for k in range(CONCURRENCY):
        free.put_nowait(k)

    async def by_bytes() -> None:
        tensor = grpcclient.InferInput("image", list(image.shape), "UINT8")
        tensor.set_data_from_numpy(image)
        await client.infer(FACE_DETECTOR.name, [tensor], outputs=outputs)

    async def by_shared_memory() -> None:
        k = await free.get()
        try:
            name, handle = regions[k]
            shm.set_shared_memory_region(handle, [image])
            tensor = grpcclient.InferInput("image", list(image.shape), "UINT8")
            tensor.set_shared_memory(name, image.nbytes)
            await client.infer(FACE_DETECTOR.name, [tensor], outputs=outputs)
        finally:
            free.put_nowait(k)

    rows = []
    try:
        for mode, call in (("bytes", by_bytes), ("shared memory", by_shared_memory)) * 2:
            for _ in range(10):
                await call()
            limit = asyncio.Semaphore(CONCURRENCY)

            async def one(call=call, limit=limit) -> None:
                async with limit:
                    await call()

            client_before, triton_before = os.times(), sum(map(_cpu_seconds, triton_pids))
            started = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(CALLS)))
            wall = time.perf_counter() - started
            client_after, triton_after = os.times(), sum(map(_cpu_seconds, triton_pids))
            client_s = (client_after.user + client_after.system
                        - client_before.user - client_before.system)
            rows.append({"mode": mode, "calls_per_s": round(CALLS / wall, 1),
                         "client_cpu_ms": round(1000 * client_s / CALLS, 2),
                         "triton_cpu_ms": round(1000 * (triton_after - triton_before) / CALLS,
                                                2)})
            print(rows[-1], flush=True)
    finally:
        for name, handle in regions:
            await client.unregister_system_shared_memory(name)
            shm.destroy_shared_memory_region(handle)
        await client.close()
    return rows


def shared_memory() -> list[dict]:
    config = EmbeddedTritonConfig(model_repository=DEFAULT_MODEL_REPOSITORY,
                                  ports=TritonPorts(free_port(), free_port(), free_port()))
    with EmbeddedTriton(config) as triton:
        pids = [c for c in _children(os.getpid())
                if _name(c) == "tritonserver" or "triton_python" in _name(c)]
        return asyncio.run(_detector_calls(triton.grpc_url, pids))


def _decode(clip: bytes, thread_type: str) -> None:
    with av.open(io.BytesIO(clip)) as container:
        stream = container.streams.video[0]
        stream.thread_type = thread_type
        for _ in container.decode(stream):
            pass


def decoder_threads() -> list[dict]:
    rows = []
    for name, seconds in CLIPS:
        clip = short_clip(DATA / "video" / "live" / name, seconds)
        for thread_type in THREAD_TYPES:
            _decode(clip, thread_type)
            walls, cpus = [], []
            for _ in range(REPEATS):
                before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                _decode(clip, thread_type)
                after = resource.getrusage(resource.RUSAGE_SELF)
                walls.append(time.perf_counter() - started)
                cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            rows.append({"clip": f"{name} ({seconds:g} s)", "thread_type": thread_type,
                         "wall_ms": round(1000 * min(walls)), "cpu_ms": round(1000 * min(cpus))})
            print(rows[-1], flush=True)
    return rows


def markdown(report: dict) -> str:
    lines = [
        "# Levers measured alone", "",
        f"`{report['command']}`, {report['date']}, {report['cpu_count']} cores.", "",
        f"## The detector's 1.2 MB input by bytes or through system shared memory "
        f"({CALLS} calls at concurrency {CONCURRENCY}, embedded Triton)", "",
        "| mode | calls/s | client CPU ms per call | Triton CPU ms per call |",
        "|---|---|---|---|",
        *(f"| {r['mode']} | {r['calls_per_s']} | {r['client_cpu_ms']} | {r['triton_cpu_ms']} |"
          for r in report["shared_memory"]),
        "", f"## Video decoder threads (best of {REPEATS} decodes of every frame)", "",
        "| clip | thread type | wall ms | CPU ms |", "|---|---|---|---|",
        *(f"| {r['clip']} | {r['thread_type']} | {r['wall_ms']} | {r['cpu_ms']} |"
          for r in report["decoder_threads"]),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    report = {"command": "python -m benchmarks.levers",
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "cpu_count": os.cpu_count(), "shared_memory": shared_memory(),
              "decoder_threads": decoder_threads()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "levers.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "levers.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
