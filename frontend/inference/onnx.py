"""In-process model runtime: the built ONNX files on the CPU, no Triton.

The same files the server's Triton serves (`model_repository.specs.onnx_file`), each opened
on first use in the runtime its `ModelSpec.cpu_runtime` names (as the embedded Triton runs it;
``engine="onnxruntime"`` overrides it, for the in-process baseline). Calls run in a thread
pool (both runtimes release the GIL), so concurrent pipeline steps overlap as they would
against Triton, without batching across callers. Calibration, the evaluations, the in-process
baseline server and the pipeline's unit tests run on it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from frontend.inference.runtime import InferenceError, ModelRuntime
from model_repository.cpu_runtimes import Runner, open_runner
from model_repository.specs import MODELS, NATIVE_REPOSITORY, CpuRuntime, ModelSpec, onnx_file


class OnnxModels(ModelRuntime):
    """Args:
    repository: a model repository holding ``<model>/1/model.onnx``.
    executor: where the models run (None: the event loop's default pool).
    threads: intra-op threads per model (0: one per core).
    spin: let ONNX Runtime's pool threads spin between ops (its default).
    engine: run every model in this engine (``onnxruntime``) instead of its spec's runtime.
    """

    def __init__(
        self,
        repository: Path = NATIVE_REPOSITORY,
        *,
        executor: concurrent.futures.Executor | None = None,
        threads: int = 0,
        spin: bool = True,
        engine: str | None = None,
    ) -> None:
        self.repository = Path(repository)
        self.executor = executor
        self.threads = threads
        self.spin = spin
        self.engine = engine
        self._runners: dict[str, Runner] = {}
        self._lock = threading.Lock()

    def runner(self, spec: ModelSpec) -> Runner:
        """The model's runner, opened on first use.

        Raises:
            InferenceError: the model's ONNX file is missing (``make models`` builds it).
        """
        with self._lock:
            if spec.name not in self._runners:
                path = onnx_file(spec, self.repository)
                if not path.is_file():
                    raise InferenceError(f"{spec.name}: {path} not built (run `make models`)")
                runtime = spec.cpu_runtime
                if self.engine is not None and self.engine != runtime.engine:
                    runtime = CpuRuntime(self.engine)
                self._runners[spec.name] = open_runner(
                    path, engine=runtime.engine, precision=runtime.precision,
                    threads=self.threads, spin=self.spin,
                )
            return self._runners[spec.name]

    def run(self, spec: ModelSpec, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The synchronous call behind `infer`."""
        feeds = {
            t.name: np.ascontiguousarray(inputs[t.name], dtype=t.dtype) for t in spec.inputs
        }
        results = self.runner(spec)(feeds)
        return {t.name: results[t.name] for t in spec.outputs}

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
            self._runners.clear()

