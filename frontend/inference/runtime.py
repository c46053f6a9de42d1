"""The model-runtime seam: facegate's model calls over anything that runs the ONNX files.

A runtime implements one method, `ModelRuntime.infer` (a batch of named tensors in, named
tensors out, shaped by the model's `ModelSpec`); the typed calls every pipeline step uses
(`detect`, `embed`, `liveness`) are written once here on top of it. Two runtimes exist:

- `frontend.inference.triton.TritonModels`: the server's path; Triton's dynamic batcher
  merges concurrent callers' requests into one model execution;
- `frontend.inference.onnx.OnnxModels`: in-process ONNX Runtime over the same files, for
  calibration, evaluations, the baseline server and pipeline tests without a Triton process.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping

import numpy as np

from model_repository.specs import DETECTORS, FACE_EMBEDDER, FACE_LIVENESS, ModelSpec


class InferenceError(RuntimeError):
    """The runtime could not be reached, timed out, or a model failed: the server's fault."""


class ModelRuntime(abc.ABC):
    """Runs facegate's models on batches of tensors; the typed calls below follow the specs."""

    @abc.abstractmethod
    async def infer(
        self, spec: ModelSpec, inputs: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Run one batch (arrays carry the batch dimension first) on a model.

        Raises:
            InferenceError: the model could not be run.
        """

    async def ready(self) -> bool:
        """True when every model can be called now."""
        return True

    async def close(self) -> None:  # noqa: B027 - a runtime without resources keeps this
        """Release connections or sessions."""

    async def detect(self, images: np.ndarray) -> np.ndarray:
        """[N, S, S, 3] uint8 BGR letterboxed images -> [N, anchors, 15] decoded anchors, from
        the detector whose input side is S (320 or 640)."""
        side = images.shape[1]
        spec = next((d for d in DETECTORS if d.inputs[0].dims[0] == side), None)
        if spec is None:
            raise ValueError(f"no detector takes {side}x{side} images")
        return (await self.infer(spec, {"image": images}))["detections"]

    async def embed(self, chips: np.ndarray) -> np.ndarray:
        """[N, 150, 150, 3] uint8 RGB chips -> [N, 128] raw dlib descriptors."""
        return (await self.infer(FACE_EMBEDDER, {"chip": chips}))["embedding"]

    async def liveness(self, crops_v2: np.ndarray, crops_v1se: np.ndarray) -> np.ndarray:
        """Two [N, 80, 80, 3] uint8 BGR crops -> [N] P(real)."""
        result = await self.infer(FACE_LIVENESS, {"crop_v2": crops_v2, "crop_v1se": crops_v1se})
        return result["p_real"][:, 0]
