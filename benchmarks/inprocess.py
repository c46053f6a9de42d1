"""The server's face pipeline in-process, for evaluation scripts that run one step at a time.

`InProcessPipeline` holds a `FacePipeline` over `OnnxModels` (the built ONNX files, no Triton)
and an event loop of its own, so synchronous scripts call the very steps the server runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np

from frontend.inference.onnx import OnnxModels
from frontend.service.faces import EmbeddedFace, FacePipeline
from preprocessing.detection import Face

T = TypeVar("T")


class InProcessPipeline:
    """Args:
    threads: ONNX Runtime intra-op threads per model.
    """

    def __init__(self, threads: int = 2) -> None:
        self.loop = asyncio.new_event_loop()
        self.pipeline = FacePipeline(OnnxModels(threads=threads))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """All faces in a BGR photo, highest score first (the server's detect step)."""
        return self.run(self.pipeline.detect(image_bgr))

    def main_face(self, image_bgr: np.ndarray) -> EmbeddedFace | None:
        """The face nearest the centre, embedded (the server's detect, align and embed)."""
        return self.run(self.pipeline.main_face(image_bgr))

    def close(self) -> None:
        self.loop.close()
