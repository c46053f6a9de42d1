"""Three speed levers measured alone, for the choice whether to build them (none was kept).

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
3. **An int8 detector.** ONNX Runtime's static post-training quantisation (QDQ, per-channel
   int8 weights, uint8 activations, the convolutions only) of the served 640 px detector,
   calibrated on `INT8_CALIBRATION` LFW photos of the fit half (`benchmarks.split`): its
   batch-1 time beside the float32 graph's (best of `INT8_CALLS`, alternating, two rounds),
   and how far the main face's landmarks move on `INT8_CHECK` LFW photos of the held-out half.

Writes ``benchmarks/results/levers.{json,md}``.
"""

from __future__ import annotations

import asyncio
import io
import os
import resource
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
import onnx
import tritonclient.grpc.aio as grpcclient
import tritonclient.utils.shared_memory as shm
from onnx import version_converter
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from benchmarks.flops import best_seconds
from benchmarks.load.payloads import short_clip
from benchmarks.load.servers import free_port, triton_cpu_seconds
from benchmarks.paths import DATA, write_results
from benchmarks.split import half_of
from deploy.embedded_triton import (
    DEFAULT_MODEL_REPOSITORY,
    EmbeddedTriton,
    EmbeddedTritonConfig,
    TritonPorts,
)
from frontend.inference.triton import CHANNEL_ARGS
from model_repository.cpu_runtimes import open_runner
from model_repository.specs import FACE_DETECTOR
from preprocessing.detection import faces_from_detections, letterbox

CALLS, CONCURRENCY = 200, 4
CLIPS = (("liveportrait_source_s32.mp4", 3.0), ("liveportrait_driving_d13.mp4", 10.0),
         ("liveportrait_driving_d6.mp4", 10.0))
THREAD_TYPES = ("AUTO", "SLICE", "FRAME", "NONE")
REPEATS = 5
INT8_CALIBRATION, INT8_CHECK, INT8_CALLS = 120, 150, 30


async def _detector_calls(url: str) -> list[dict]:
    image = np.random.default_rng(0).integers(0, 255, (1, 640, 640, 3), dtype=np.uint8)
    client = grpcclient.InferenceServerClient(url, channel_args=CHANNEL_ARGS)
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

            client_before, triton_before = os.times(), triton_cpu_seconds(os.getpid())
            started = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(CALLS)))
            wall = time.perf_counter() - started
            client_after, triton_after = os.times(), triton_cpu_seconds(os.getpid())
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
        return asyncio.run(_detector_calls(triton.grpc_url))


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


def int8_detector(work: Path) -> dict:
    source = DEFAULT_MODEL_REPOSITORY / FACE_DETECTOR.name / "1" / "model.onnx"
    photos = sorted((DATA / "faces").glob("*/*_0001.jpg"))  # LFW: one photo per person
    fit = [p for p in photos if half_of(p.parent.name) == "fit"][:INT8_CALIBRATION]
    held_out = [p for p in photos if half_of(p.parent.name) == "held_out"][:INT8_CHECK]
    name = FACE_DETECTOR.inputs[0].name

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self.paths = iter(fit)

        def get_next(self) -> dict | None:
            path = next(self.paths, None)
            return None if path is None else {name: letterbox(cv2.imread(str(path))).image[None]}

    # per-channel scales need DequantizeLinear's axis: opset 13 (the YuNet graph is opset 11)
    onnx.save(version_converter.convert_version(onnx.load(str(source)), 13), work / "13.onnx")
    quant_pre_process(str(work / "13.onnx"), str(work / "pre.onnx"), skip_symbolic_shape=True)
    quantize_static(str(work / "pre.onnx"), str(work / "int8.onnx"), Photos(),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["Conv"])
    runners = {"float32": open_runner(source), "int8": open_runner(work / "int8.onnx")}
    image = letterbox(cv2.imread(str(held_out[0]))).image[None]
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(2):
        for label, run in runners.items():
            best = best_seconds(lambda run=run: run({name: image}), INT8_CALLS)
            times[label].append(round(1000 * best, 2))
    shifts = []
    for path in held_out:
        boxed = letterbox(cv2.imread(str(path)))
        main = [faces_from_detections(run({name: boxed.image[None]})["detections"][0],
                                      boxed.scale)[:1] for run in runners.values()]
        if all(main):
            shifts.append(float(np.abs(main[0][0].landmarks - main[1][0].landmarks).max()))
    report = {"batch1_ms": times, "faces_compared": len(shifts), "photos": len(held_out),
              "landmark_shift_px": {"median": round(float(np.median(shifts)), 2),
                                    "p95": round(float(np.percentile(shifts, 95)), 2),
                                    "max": round(max(shifts), 2)}}
    print(report, flush=True)
    return report


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
    q = report["int8_detector"]
    shift = q["landmark_shift_px"]
    lines += ["", "## An int8 detector (static QDQ, per-channel; calibrated on fit-half LFW)", "",
              "| graph | batch-1 ms, round 1 / 2 |", "|---|---|",
              *(f"| {k} | {' / '.join(map(str, v))} |" for k, v in q["batch1_ms"].items()),
              "", f"Main face's landmarks, int8 against float32, on {q['faces_compared']} of "
              f"{q['photos']} held-out LFW photos: median {shift['median']} px, 95th percentile "
              f"{shift['p95']} px, max {shift['max']} px."]
    return "\n".join(lines) + "\n"


def main() -> int:
    report = {"command": "python -m benchmarks.levers",
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "cpu_count": os.cpu_count(), "shared_memory": shared_memory(),
              "decoder_threads": decoder_threads()}
    with tempfile.TemporaryDirectory(prefix="facegate-int8-") as work:
        report["int8_detector"] = int8_detector(Path(work))
    write_results("levers", report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
