"""Triton configs come from the model descriptions and pass Triton's own schema."""

from __future__ import annotations

import pytest

from model_repository.specs import DETECTORS, FACE_EMBEDDER, MODELS
from model_repository.triton_config import FLAVOURS, parse, render
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_config_parses_with_triton_schema_and_carries_the_description(spec, flavour):
    config = parse(render(spec, flavour))
    assert config.name == spec.name
    assert config.max_batch_size == spec.batching.max_batch_size
    def shapes(tensors):
        return [(t.name, list(t.dims)) for t in tensors]

    assert shapes(config.input) == shapes(spec.inputs)
    assert shapes(config.output) == shapes(spec.outputs)
    if flavour == "embedded" and not spec.batching.batch_on_cpu:
        assert not config.HasField("dynamic_batching")
        return
    batching = config.dynamic_batching
    assert batching.max_queue_delay_microseconds == spec.batching.max_queue_delay_microseconds
    assert list(batching.preferred_batch_size) == list(spec.batching.preferred_batch_sizes)


def test_the_detectors_run_each_request_alone_on_the_cpu_and_batch_on_the_gpu():
    for spec in DETECTORS:
        assert not parse(render(spec, "embedded")).HasField("dynamic_batching")
        assert parse(render(spec, "native")).HasField("dynamic_batching")
    assert parse(render(FACE_EMBEDDER, "embedded")).HasField("dynamic_batching")


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_native_config_runs_onnxruntime_on_gpu_with_tensorrt(spec):
    config = parse(render(spec, "native"))
    assert config.backend == "onnxruntime"
    assert config.instance_group[0].kind == config.instance_group[0].KIND_GPU
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["trt_engine_cache_enable"] == "true"


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_embedded_config_runs_the_python_backend_on_cpu(spec):
    config = parse(render(spec, "embedded"))
    assert config.backend == "python"
    assert config.instance_group[0].kind == config.instance_group[0].KIND_CPU


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_committed_native_config_is_what_the_generator_writes(spec):
    committed = REPO_ROOT / "model_repository" / "native" / spec.name / "config.pbtxt"
    assert committed.read_text() == render(spec, "native"), "run `make models` and commit"
