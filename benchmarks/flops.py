"""The physical limit on this machine: FLOPs per face of each model over the CPU's measured rate.

    .venv/bin/python -m benchmarks.flops

FLOPs are counted from each ONNX graph after shape inference at batch 1: 2 x multiply-adds
of every Conv (weights x output elements / groups) and Gemm/MatMul; element-wise work is left
out (a few percent for these networks). The CPU's rate is measured, not taken from a data
sheet: float32 1024x1024 matrix products in ONNX Runtime (best of several) with all cores and
with one. Faces/s at the limit = rate / FLOPs per face; `benchmarks/results/flops.json` also
records ONNX Runtime's own batch-1 and batch-16 faces/s in-process, so the page can say how far
each model is from the limit. Results: `benchmarks/results/flops.{json,md}`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper, shape_inference

from deploy.embedded_triton import DEFAULT_MODEL_REPOSITORY
from model_repository.specs import MODELS, ModelSpec

RESULTS = Path(__file__).resolve().parent / "results"


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


def measured_gflops(threads: int, size: int = 1024, repeats: int = 20) -> float:
    """float32 GEMM rate of ONNX Runtime's own kernels (MLAS, which also runs the models'
    convolutions) with `threads` intra-op threads: best of `repeats` 1024^3 products."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [size, size]) for n in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal((size, size), dtype=np.float32) for n in "ab"}
    session.run(None, feeds)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, feeds)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def ort_faces_per_s(spec: ModelSpec, path: Path, batch: int, seconds: float = 2.0) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {t.name: rng.integers(0, 255, (batch, *t.dims), dtype=np.uint8) for t in spec.inputs}
    session.run(None, feeds)
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        session.run(None, feeds)
        runs += 1
    return runs * batch / (time.perf_counter() - started)


def run() -> dict:
    """Measure, write `results/flops.{json,md}`, return the report."""
    rate_all = measured_gflops(os.cpu_count() or 1)
    rate_one = measured_gflops(1)
    rows = []
    for spec in MODELS:
        path = DEFAULT_MODEL_REPOSITORY / spec.name / "1" / "model.onnx"
        gflop = count_flops(path) / 1e9
        measured = {b: round(ort_faces_per_s(spec, path, b), 1) for b in (1, 16)}
        limit = rate_all / gflop
        rows.append({"model": spec.name, "gflop_per_face": round(gflop, 3),
                     "limit_faces_per_s": round(limit, 1), "ort_faces_per_s": measured,
                     "fraction_of_limit": {b: round(v / limit, 2) for b, v in measured.items()}})
    report = {"command": "python -m benchmarks.flops", "date": time.strftime("%Y-%m-%d"),
              "cpu_count": os.cpu_count(), "gemm_gflops_all_cores": round(rate_all, 1),
              "gemm_gflops_one_core": round(rate_one, 1), "models": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "flops.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"float32 GEMM: {report['gemm_gflops_all_cores']} GFLOP/s on {os.cpu_count()} cores "
             f"({report['gemm_gflops_one_core']} on one).", "",
             "| model | GFLOP per face | limit faces/s | ORT batch 1 faces/s (of limit) | "
             "ORT batch 16 faces/s (of limit) |", "|---|---|---|---|---|"]
    for r in rows:
        m, f = r["ort_faces_per_s"], r["fraction_of_limit"]
        lines.append(f"| {r['model']} | {r['gflop_per_face']} | {r['limit_faces_per_s']} | "
                     f"{m[1]} ({f[1]:.0%}) | {m[16]} ({f[16]:.0%}) |")
    (RESULTS / "flops.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return report


def main() -> int:
    run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
