"""The server's model runtime: async gRPC calls to Triton, shaped by each model's `ModelSpec`.

Each call is one gRPC request carrying the caller's own batch; Triton's dynamic batcher merges
concurrent callers' requests into one model execution, so nothing here queues or batches.
Every call has a deadline. A model that answers with an error, or a Triton that cannot be
reached, raises `InferenceError`: the server is at fault, not the client's input.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from frontend.inference.runtime import InferenceError, ModelRuntime
from model_repository.specs import MODELS, ModelSpec

LOGGER = logging.getLogger(__name__)

# gRPC's default 4 MB message limit is below one batch of 640x640 images.
_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
CHANNEL_ARGS = [
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    # A Triton that went away is tried again within a second or two of coming back (gRPC's
    # default back-off grows to two minutes).
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 2000),
]

ObserveCall = Callable[[str, float, bool], None]
"""Called with a model's name, the call's seconds and whether it succeeded (metrics)."""


class TritonModels(ModelRuntime):
    """One gRPC connection to Triton.

    Args:
        url: Triton's gRPC address, ``host:port``.
        timeout_s: deadline of each model call.
        observer: told about every model call (`frontend.api.metrics.Metrics.observe_model_call`).
    """

    def __init__(
        self, url: str, *, timeout_s: float = 10.0, observer: ObserveCall | None = None
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.observer = observer
        self._client = grpcclient.InferenceServerClient(url, channel_args=CHANNEL_ARGS)

    async def close(self) -> None:
        await self._client.close()

    async def infer(
        self, spec: ModelSpec, inputs: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Run a batch on a model; one larger than its ``max_batch_size`` goes as several requests.

        Raises:
            InferenceError: Triton is unreachable, timed out or the model failed.
        """
        size = len(next(iter(inputs.values())))
        step = spec.batching.max_batch_size
        if size <= step:
            return await self._infer_one(spec, inputs)
        parts = [
            await self._infer_one(spec, {k: v[i:i + step] for k, v in inputs.items()})
            for i in range(0, size, step)
        ]
        return {t.name: np.concatenate([p[t.name] for p in parts]) for t in spec.outputs}

    async def _infer_one(
        self, spec: ModelSpec, inputs: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        request = []
        for tensor in spec.inputs:
            array = np.ascontiguousarray(inputs[tensor.name], dtype=tensor.dtype)
            infer_input = grpcclient.InferInput(
                tensor.name, list(array.shape), np_to_triton_dtype(array.dtype)
            )
            infer_input.set_data_from_numpy(array)
            request.append(infer_input)
        outputs = [grpcclient.InferRequestedOutput(t.name) for t in spec.outputs]
        started = time.perf_counter()
        try:
            result = await self._client.infer(
                spec.name, request, outputs=outputs, client_timeout=self.timeout_s
            )
        except InferenceServerException as error:
            self._observe(spec.name, started, ok=False)
            raise InferenceError(f"{spec.name}: {error.message()}") from error
        self._observe(spec.name, started, ok=True)
        return {t.name: result.as_numpy(t.name) for t in spec.outputs}

    def _observe(self, model: str, started: float, *, ok: bool) -> None:
        if self.observer is not None:
            self.observer(model, time.perf_counter() - started, ok)

    async def ready(self) -> bool:
        """True when Triton answers and every model is ready."""
        try:
            if not await self._client.is_server_ready(client_timeout=self.timeout_s):
                return False
            for spec in MODELS:
                if not await self._client.is_model_ready(spec.name, client_timeout=self.timeout_s):
                    return False
        except InferenceServerException as error:
            LOGGER.debug("triton not ready: %s", error)
            return False
        return True
