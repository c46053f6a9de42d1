"""Run a built ONNX file on the CPU: ONNX Runtime, or OpenVINO (optionally in bfloat16).

One function, `open_runner`, gives a callable ``{input name: array} -> {output name: array}``
for a model file and the runtime its `ModelSpec.cpu_runtime` names; the embedded Triton's
python backend (`onnx_runner.py`) and the in-process runtime (`frontend.inference.onnx`) both
use it, so a model runs the same way in the server and in the evaluations.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

Runner = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]
ENGINES = ("onnxruntime", "openvino")
PRECISIONS = ("f32", "bf16")


def open_runner(
    path: Path | str, *, engine: str = "onnxruntime", precision: str = "f32",
    threads: int = 0, spin: bool = False,
) -> Runner:
    """A thread-safe callable running the ONNX file at `path`.

    Args:
        engine: ``onnxruntime`` or ``openvino``.
        precision: ``f32``, or ``bf16`` (OpenVINO on a CPU with AVX-512 BF16 / AMX computes in
            bfloat16 where its plugin judges it safe; elsewhere it falls back to f32).
        threads: intra-op threads (0: the runtime's default, one per core).
        spin: let ONNX Runtime's pool threads spin between ops.

    Raises:
        ValueError: an unknown engine or precision.
    """
    if engine not in ENGINES or precision not in PRECISIONS:
        raise ValueError(f"unknown runtime {engine}/{precision}")
    if engine == "onnxruntime":
        if precision != "f32":
            raise ValueError("onnxruntime runs these models in f32 only")
        return _onnxruntime(str(path), threads, spin)
    return _openvino(str(path), precision, threads)


def _onnxruntime(path: str, threads: int, spin: bool) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    flag = "1" if spin else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", flag)
    options.add_session_config_entry("session.inter_op.allow_spinning", flag)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def run(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, dict(feeds)), strict=True))

    return run


def _openvino(path: str, precision: str, threads: int) -> Runner:
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = ov.Core().compile_model(path, "CPU", config)
    # pybind11 sets up its numpy bridge on first use, under a C++ static guard that it enters
    # with the GIL held: two threads making their first call at once deadlock (seen in
    # liveness_eval, both stuck in InferRequest.infer). Set it up here, in the opening thread.
    ov.Tensor(np.zeros(1, dtype=np.float32)).data  # noqa: B018
    names = [o.get_any_name() for o in compiled.outputs]
    local = threading.local()  # an infer request is not shared between threads

    def run(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = getattr(local, "request", None)
        if request is None:
            request = local.request = compiled.create_infer_request()
        results = request.infer(dict(feeds))
        return {name: np.array(results[port]) for name, port in zip(names, compiled.outputs,
                                                                      strict=True)}

    return run
