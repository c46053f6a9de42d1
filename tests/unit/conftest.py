"""Unit-test fixtures: the face pipeline over the in-process runtime, no Triton process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.inprocess import InProcessPipeline
from model_repository.specs import MODELS, onnx_file


@pytest.fixture(scope="session")
def detector() -> Iterator[InProcessPipeline]:
    """The server's pipeline steps on the built ONNX files in ONNX Runtime."""
    missing = [str(onnx_file(spec)) for spec in MODELS if not onnx_file(spec).is_file()]
    if missing:
        pytest.skip(f"models not built ({', '.join(missing)}): run `make models`")
    pipeline = InProcessPipeline()
    yield pipeline
    pipeline.close()
