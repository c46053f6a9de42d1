"""In-process model runtime: the built ONNX files in ONNX Runtime, no Triton.

The same files the server's Triton serves (`model_repository.specs.onnx_file`), each in one
``InferenceSession`` opened on first use. Calls run in a thread pool (ONNX Runtime releases
the GIL), so concurrent pipeline steps overlap as they would against Triton, without batching
across callers. Calibration, the evaluations, the in-process baseline server and the pipeline's
unit tests run on it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from frontend.inference.runtime import InferenceError, ModelRuntime
from model_repository.specs import MODELS, NATIVE_REPOSITORY, ModelSpec, onnx_file


class OnnxModels(ModelRuntime):
    """Args:
    repository: a model repository holding ``<model>/1/model.onnx``.
    executor: where the sessions run (None: the event loop's default pool).
    threads: ONNX Runtime intra-op threads per session (0: one per core).
    spin: let ONNX Runtime's pool threads spin between ops (its default).
    """

    def __init__(
        self,
        repository: Path = NATIVE_REPOSITORY,
        *,
        executor: concurrent.futures.Executor | None = None,
        threads: int = 0,
        spin: bool = True,
    ) -> None:
        self.repository = Path(repository)
        self.executor = executor
        self.threads = threads
        self.spin = spin
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._lock = threading.Lock()

    def session(self, spec: ModelSpec) -> ort.InferenceSession:
        """The model's session, opened on first use.

        Raises:
            InferenceError: the model's ONNX file is missing (``make models`` builds it).
        """
        with self._lock:
            if spec.name not in self._sessions:
                path = onnx_file(spec, self.repository)
                if not path.is_file():
                    raise InferenceError(f"{spec.name}: {path} not built (run `make models`)")
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                if not self.spin:
                    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self._sessions[spec.name] = ort.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"]
                )
            return self._sessions[spec.name]

    def run(self, spec: ModelSpec, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The synchronous call behind `infer`."""
        feeds = {
            t.name: np.ascontiguousarray(inputs[t.name], dtype=t.dtype) for t in spec.inputs
        }
        names = [t.name for t in spec.outputs]
        results = self.session(spec).run(names, feeds)
        return dict(zip(names, results, strict=True))

    async def infer(
        self, spec: ModelSpec, inputs: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, self.run, spec, inputs
        )

    async def ready(self) -> bool:
        return all(onnx_file(spec, self.repository).is_file() for spec in MODELS)

    async def close(self) -> None:
        with self._lock:
            self._sessions.clear()

