"""The physical limit on this machine: the CPU's matrix peaks, and each model's share of its own.

    .venv/bin/python -m benchmarks.flops

FLOPs are counted from each ONNX graph after shape inference at batch 1: 2 x multiply-adds
of every Conv (weights x output elements / groups) and Gemm/MatMul; element-wise work is left
out (a few percent for these networks). The CPU's peaks are measured, not taken from a data
sheet: square matrix products (best of several) in every library that runs a model here, in
float32 and, where the library can, bfloat16, with all cores and with one. A model's peak is
the one of the precision its `ModelSpec.cpu_runtime` computes in; its faces/s are measured
in-process in that runtime at batch 1 and 16, and OpenVINO's kernels (primitive type and
precision of every convolution and matrix product) are read from the compiled model.
Results: `benchmarks/results/flops.{json,md}`.
"""

from __future__ import annotations

import os
import platform
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from benchmarks.paths import write_results
from deploy.embedded_triton import DEFAULT_MODEL_REPOSITORY
from model_repository.cpu_runtimes import open_runner
from model_repository.specs import MODELS, ModelSpec


def _dims(value_info) -> list[int]:
    return [d.dim_value if d.dim_value > 0 else 1 for d in value_info.type.tensor_type.shape.dim]


def count_flops(path: Path) -> float:
    """FLOPs of one batch-1 inference (Conv and Gemm/MatMul only)."""
    model = onnx.load(str(path))
    for graph_input in model.graph.input:  # fix the batch dimension to 1
        dim = graph_input.type.tensor_type.shape.dim[0]
        if not dim.dim_value:
            dim.dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes = {v.name: _dims(v) for v in (*model.graph.value_info, *model.graph.input,
                                           *model.graph.output)}
    weights = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    flops = 0.0
    for node in model.graph.node:
        if node.op_type == "Conv":
            kernel = weights.get(node.input[1])
            out = shapes.get(node.output[0])
            if kernel is None or out is None:
                raise ValueError(f"{path}: no shape for {node.name}")
            # kernel: [out_ch, in_ch / groups, kh, kw]; one MAC per kernel element per output
            flops += 2 * float(np.prod(out)) * float(np.prod(kernel[1:]))
        elif node.op_type in ("Gemm", "MatMul"):
            a = shapes.get(node.input[0]) or weights.get(node.input[0])
            b = weights.get(node.input[1]) or shapes.get(node.input[1])
            if a is None or b is None:
                raise ValueError(f"{path}: no shape for {node.name}")
            flops += 2 * float(np.prod(a)) * float(b[-1] if node.op_type == "MatMul" or
                                                   not _trans_b(node) else b[0])
    return flops


def _trans_b(node) -> bool:
    return any(a.name == "transB" and a.i == 1 for a in node.attribute)


KERNELS = {
    # name: (op, input shape, weight shape); both are as dense as arithmetic gets, and the
    # faster of the two is the peak (oneDNN's 3x3 convolution beats its own matrix product).
    "gemm 2048": ("MatMul", (2048, 2048), (2048, 2048)),
    "conv3x3 512ch 28x28 x4": ("Conv", (4, 512, 28, 28), (512, 512, 3, 3)),
}


def _kernel_model(op: str, shape: tuple[int, ...], weight: np.ndarray) -> bytes:
    """One op with its weight a constant, as in a model: the runtimes pack it (and OpenVINO
    converts it to bf16) once, at load, not at every call."""
    from onnx import TensorProto, helper

    attributes = {"pads": [1, 1, 1, 1]} if op == "Conv" else {}
    out = (shape[0], weight.shape[1]) if op == "MatMul" else shape
    graph = helper.make_graph(
        [helper.make_node(op, ["x", "w"], ["y"], **attributes)], "kernel",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out))],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    return model.SerializeToString()


def best_seconds(call, repeats: int) -> float:
    """The fastest of `repeats` timed calls, after one untimed call to warm up."""
    call()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def kernel_flops(kernel: str) -> float:
    """FLOPs of one call of a `KERNELS` op (2 x multiply-adds)."""
    op, shape, weight_shape = KERNELS[kernel]
    if op == "MatMul":
        return 2.0 * shape[0] * shape[1] * weight_shape[1]
    return 2.0 * float(np.prod(shape)) * float(np.prod(weight_shape[1:]))  # same-size output


def kernel_gflops(kernel: str, library: str, precision: str, threads: int,
                  repeats: int = 8) -> float:
    """The rate of one `KERNELS` op in ``onnxruntime`` (MLAS, which runs the detector),
    ``openvino`` (oneDNN, the embedder's and liveness nets') or ``numpy`` (OpenBLAS, the
    matrix product only, all cores)."""
    op, shape, weight_shape = KERNELS[kernel]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal(weight_shape, dtype=np.float32) * 0.01
    flops = kernel_flops(kernel)
    if library == "numpy":
        seconds = best_seconds(lambda: x @ w, repeats)
    else:
        path = Path(f"/tmp/facegate-{kernel.replace(' ', '_')}.onnx")
        path.write_bytes(_kernel_model(op, shape, w))
        run = open_runner(path, engine=library, precision=precision, threads=threads)
        seconds = best_seconds(lambda: run({"x": x}), repeats)
    return flops / seconds / 1e9


PEAKS = (  # (library, precision, threads: 0 = all cores)
    ("onnxruntime", "f32", 0), ("onnxruntime", "f32", 1),
    ("openvino", "f32", 0), ("openvino", "f32", 1),
    ("openvino", "bf16", 0), ("openvino", "bf16", 1),
    ("numpy", "f32", 0),
)
PEAK_ROUNDS = 3


def faces_per_s(spec: ModelSpec, path: Path, batch: int, *, engine: str, precision: str,
                windows: int = 3, seconds: float = 1.5) -> float:
    """Faces/s in the runtime as it serves (ONNX Runtime threads not spinning), the best of
    `windows` timed windows: this shared machine's noise only ever slows a window down."""
    run = open_runner(path, engine=engine, precision=precision)
    rng = np.random.default_rng(0)
    feeds = {t.name: rng.integers(0, 255, (batch, *t.dims), dtype=np.uint8) for t in spec.inputs}
    run(feeds)
    best = 0.0
    for _ in range(windows):
        runs, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            run(feeds)
            runs += 1
        best = max(best, runs * batch / (time.perf_counter() - started))
    return best


def openvino_kernels(path: Path, precision: str) -> dict[str, int]:
    """How many convolutions and matrix products run in each oneDNN primitive (its name says
    the ISA and precision, e.g. ``brgconv_avx512_bf16``)."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": precision})
    kernels: Counter[str] = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer = info["layerType"].astype(str)
        if layer in ("Convolution", "FullyConnected", "MatMul", "GroupConvolution"):
            kernels[f"{layer}: {info['primitiveType'].astype(str)} "
                    f"({info['runtimePrecision'].astype(str)})"] += 1
    return dict(sorted(kernels.items()))


def run() -> dict:
    """Measure, write `results/flops.{json,md}`, return the report."""
    cores = os.cpu_count() or 1
    # Rounds over the whole list: a slow spell on this shared machine spoils one round of a
    # row, not all of them (2-core rates of one run varied 1.8x without it).
    rows = [(kernel, *peak) for peak in PEAKS for kernel in KERNELS
            if not (peak[0] == "numpy" and KERNELS[kernel][0] != "MatMul")]
    rates = [[kernel_gflops(*row) for row in rows] for _ in range(PEAK_ROUNDS)]
    peaks = [{"kernel": kernel, "library": lib, "precision": prec, "threads": threads or cores,
              "gflops": round(max(r[i] for r in rates), 1)}
             for i, (kernel, lib, prec, threads) in enumerate(rows)]
    peak = {prec: max(p["gflops"] for p in peaks if p["precision"] == prec and
                      p["threads"] == cores) for prec in ("f32", "bf16")}
    rows = []
    for spec in MODELS:
        path = DEFAULT_MODEL_REPOSITORY / spec.name / "1" / "model.onnx"
        gflop = count_flops(path) / 1e9
        runtime = spec.cpu_runtime
        shipped = {str(b): round(faces_per_s(spec, path, b, engine=runtime.engine,
                                        precision=runtime.precision), 1) for b in (1, 16)}
        ort = {str(b): round(faces_per_s(spec, path, b, engine="onnxruntime", precision="f32"), 1)
               for b in (1, 16)}
        limit = peak[runtime.precision] / gflop
        rows.append({
            "model": spec.name, "gflop_per_face": round(gflop, 3),
            "runtime": f"{runtime.engine} {runtime.precision}",
            "limit_faces_per_s": round(limit, 1), "faces_per_s": shipped,
            "share_of_peak": {b: round(v / limit, 2) for b, v in shipped.items()},
            "onnxruntime_f32_faces_per_s": ort,
            "kernels": (openvino_kernels(path, runtime.precision)
                        if runtime.engine == "openvino" else
                        {"MLAS (its ISA dispatch is not exposed)": 0}),
        })
    report = {"command": "python -m benchmarks.flops", "date": time.strftime("%Y-%m-%d %H:%M"),
              "cpu": _cpu(), "cpu_count": cores, "kernels": KERNELS, "peaks": peaks,
              "peak_gflops": peak, "models": rows}
    write_results("flops", report, page(report))
    return report


def _cpu() -> str:
    flags = ""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        name = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                    if line.startswith("model name"))
        flags = " ".join(f for f in ("avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")
                         if f" {f}" in cpuinfo)
    except (OSError, StopIteration):
        name = platform.processor()
    return f"{name} ({flags})" if flags else name


def page(report: dict) -> str:
    cores = report["cpu_count"]
    lines = [
        "# Matrix peaks and each model's share", "",
        f"Command: `{report['command']}`, {report['date']} UTC; {report['cpu']}, {cores} cores. "
        f"Each kernel best of 8 calls in each of {PEAK_ROUNDS} rounds; a weight is a constant, "
        "as in a model.", "",
        "| kernel | library | precision | threads | GFLOP/s |", "|---|---|---|---|---|",
        *(f"| {p['kernel']} | {p['library']} | {p['precision']} | {p['threads']} | "
          f"{p['gflops']} |" for p in report["peaks"]),
        "", f"Peaks ({cores} cores, the best of any kernel and library): "
        f"f32 {report['peak_gflops']['f32']}, bf16 {report['peak_gflops']['bf16']} GFLOP/s.", "",
        "| model | GFLOP per face | runtime | limit faces/s | batch 1 faces/s (share) | "
        "batch 16 faces/s (share) | ONNX Runtime f32 batch 1 / 16 | kernels |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["models"]:
        m, s, o = r["faces_per_s"], r["share_of_peak"], r["onnxruntime_f32_faces_per_s"]
        kernels = "; ".join(f"{k} x{n}" if n else k for k, n in r["kernels"].items())
        lines.append(f"| {r['model']} | {r['gflop_per_face']} | {r['runtime']} | "
                     f"{r['limit_faces_per_s']} | {m['1']} ({s['1']:.0%}) | "
                     f"{m['16']} ({s['16']:.0%}) | {o['1']} / {o['16']} | {kernels} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
