"""The native repository the Triton GPU image serves, read back from disk as Triton will.

tests/unit/test_triton_config.py checks the generator; these tests check the built files
themselves against Triton's own schema (model_config.proto, through tritonclient's generated
module) and against the ONNX graphs next to them, which the GPU image is the first to load.
"""

from __future__ import annotations

import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from model_repository.triton_config import TRT_ENGINE_CACHE
from tests.deploy.files import NATIVE_REPOSITORY

MODELS = ("face_detector", "face_detector_320", "face_embedder", "face_liveness")

_ONNX_TO_TRITON = {
    onnx.TensorProto.UINT8: model_config_pb2.TYPE_UINT8,
    onnx.TensorProto.FLOAT: model_config_pb2.TYPE_FP32,
    onnx.TensorProto.FLOAT16: model_config_pb2.TYPE_FP16,
    onnx.TensorProto.INT64: model_config_pb2.TYPE_INT64,
}


def _config(model: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse(
        (NATIVE_REPOSITORY / model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )


def _graph_io(model: str) -> dict[str, dict[str, tuple]]:
    """{"inputs"|"outputs": {name: (onnx element type, dims)}}; a symbolic dim is None."""
    path = NATIVE_REPOSITORY / model / "1" / "model.onnx"
    if not path.is_file():
        pytest.fail(f"{path} is missing: build the models first (make models; make test does)")
    graph = onnx.load(str(path), load_external_data=False).graph

    def describe(values) -> dict[str, tuple]:
        return {
            v.name: (
                v.type.tensor_type.elem_type,
                tuple(d.dim_value if d.HasField("dim_value") else None
                      for d in v.type.tensor_type.shape.dim),
            )
            for v in values
        }

    initializers = {i.name for i in graph.initializer}
    return {
        "inputs": describe(v for v in graph.input if v.name not in initializers),
        "outputs": describe(graph.output),
    }


def test_the_native_repository_holds_exactly_the_four_models():
    assert sorted(p.name for p in NATIVE_REPOSITORY.iterdir() if p.is_dir()) == list(MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_native_config_parses_with_tritons_model_config_schema(model: str):
    config = _config(model)
    assert config.name == model
    assert config.max_batch_size > 0


@pytest.mark.parametrize("model", MODELS)
def test_native_config_names_only_tensors_the_onnx_file_has(model: str):
    config, graph = _config(model), _graph_io(model)
    for kind, tensors in (("inputs", config.input), ("outputs", config.output)):
        assert {t.name for t in tensors} == set(graph[kind]), kind
        for tensor in tensors:
            element_type, dims = graph[kind][tensor.name]
            assert _ONNX_TO_TRITON[element_type] == tensor.data_type, tensor.name
            # max_batch_size > 0: the graph's first dimension is the batch, and must be free.
            assert dims[0] is None, f"{tensor.name}: batch dimension is fixed in the graph"
            assert list(dims[1:]) == list(tensor.dims), tensor.name


@pytest.mark.parametrize("model", MODELS)
def test_native_config_runs_the_onnx_file_on_gpus_with_the_tensorrt_accelerator(model: str):
    config = _config(model)
    # backend "onnxruntime" with model.onnx is what platform "onnxruntime_onnx" names.
    assert config.backend == "onnxruntime" or config.platform == "onnxruntime_onnx"
    assert (NATIVE_REPOSITORY / model / "1" / config.default_model_filename).is_file()
    assert [g.kind for g in config.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["trt_engine_cache_enable"] == "true"
    assert accelerator.parameters["trt_engine_cache_path"] == TRT_ENGINE_CACHE
    assert config.HasField("dynamic_batching")

