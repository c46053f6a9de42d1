"""The tfjs graph-model converter and the batchable MobileFaceNet, on the real weight files.

The three TensorFlow.js descriptors of ``human_models_3.0.4`` and the shared MobileFaceNet ONNX
file come from the weights directory (the `weights_dir` fixture); the face chips are central
crops of LFW photos under the shared data directory (`data_dir`). `REFERENCE` holds values that
TensorFlow 2.21 (tensorflow-cpu, GraphDef imported from the same JSON, weights from the same .bin,
fused ops expanded back to Conv2D/DepthwiseConv2dNative/MatMul + BiasAdd + activation) computed
for the same chips; TensorFlow is not needed to run these tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from model_repository import tfjs_onnx
from model_repository.tfjs_onnx import Normalisation, UnsupportedOpError

pytestmark = pytest.mark.unit

HUMAN_MODELS = "human_models_3.0.4"
MOBILEFACENET_ONNX = "mobilefacenet_128d/mobilefacenet.onnx"
PHOTOS = ("faces/Tom_Hanks/Tom_Hanks_0001.jpg", "faces/Tom_Hanks/Tom_Hanks_0002.jpg",
          "faces/Eric_Daze/Eric_Daze_0001.jpg")
CROP = 120
REFERENCE_TOLERANCE = 2e-5
BATCH_TOLERANCE = 1e-5

# model: (descriptor node, normalisation of the recorded run, input side, dimension, nodes)
MODELS = {
    "mobilefacenet": ("embeddings", Normalisation("RGB"), 112, 192, 359),
    "mobileface": ("batchnorm0/add_1", Normalisation("RGB"), 112, 256, 168),
    "faceres": ("global_pooling/Mean", Normalisation("RGB"), 224, 1024, 283),
}

# TensorFlow 2.21's output for the PHOTOS chips, L2-normalised: its first 8 components per chip,
# and the cosines chip0-chip1 (the same man) and chip0-chip2 (another man).
REFERENCE = {
    "mobilefacenet": {
        "first8": [
            [-0.012768, 0.024832, 0.003659, -0.003057, -0.015278, -0.012762, 0.101191, -0.034453],
            [-0.011759, 0.023096, 0.003259, -0.004814, -0.014644, -0.023485, 0.081918, -0.010769],
            [-0.014345, 0.025379, 0.002436, -0.004759, -0.016605, -0.012716, 0.102758, -0.024357],
        ],
        "cos01": 0.992611, "cos02": 0.986436},
    "mobileface": {
        "first8": [
            [0.081785, -0.112419, -0.094746, -0.099584, -0.023465, 0.00039, -0.005266, 0.015356],
            [0.009389, 0.024001, -0.074495, -0.076049, -0.013123, -0.084051, -0.111179,
             -0.053983],
            [0.066578, 0.017795, -0.090577, -0.09045, -0.022229, -0.062062, -0.04522, 0.066293],
        ],
        "cos01": 0.289886, "cos02": 0.399105},
    "faceres": {
        "first8": [
            [0.041928, 0.00092, 0.0, 0.048575, 0.0, 0.000518, 0.015247, 0.000937],
            [0.012908, 0.026725, 0.0, 0.044954, 0.013504, 0.0, 0.001892, 0.03678],
            [0.010098, 0.017408, 0.045744, 0.002424, 0.001121, 0.012878, 0.0, 0.002579],
        ],
        "cos01": 0.636024, "cos02": 0.315333},
}


@pytest.fixture(scope="module")
def human_models(weights_dir: Path) -> Path:
    folder = weights_dir / HUMAN_MODELS
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return folder


def _chips(data_dir: Path, size: int) -> np.ndarray:
    chips = []
    for name in PHOTOS:
        image = cv2.cvtColor(cv2.imread(str(data_dir / name)), cv2.COLOR_BGR2RGB)
        top, left = (image.shape[0] - CROP) // 2, (image.shape[1] - CROP) // 2
        chips.append(cv2.resize(image[top:top + CROP, left:left + CROP], (size, size),
                                interpolation=cv2.INTER_AREA))
    return np.stack(chips)


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def _run(session: ort.InferenceSession, chips: np.ndarray) -> np.ndarray:
    return session.run([tfjs_onnx.OUTPUT_NAME], {tfjs_onnx.INPUT_NAME: chips})[0]


@pytest.fixture(scope="module", params=sorted(MODELS))
def converted(request, human_models: Path, data_dir: Path):
    name = request.param
    node, normalisation, size, _, _ = MODELS[name]
    model = tfjs_onnx.build_tfjs_descriptor(human_models / f"{name}.json", node, normalisation)
    return name, model, _session(model), _chips(data_dir, size)


def test_every_op_of_the_three_graphs_is_covered(human_models: Path) -> None:
    for name, (_, _, _, _, nodes) in MODELS.items():
        graph = tfjs_onnx.load_tfjs(human_models / f"{name}.json")
        assert len(graph.nodes) == nodes
        uncovered = {op for op in graph.op_counts()
                     if op not in ("Const", "Placeholder")
                     and not hasattr(tfjs_onnx._Converter, f"_op_{op.lstrip('_')}")}
        assert not uncovered, f"{name}: {uncovered}"


def test_weights_are_read_to_the_last_byte_and_float16_is_dequantised(human_models: Path) -> None:
    graph = tfjs_onnx.load_tfjs(human_models / "faceres.json")
    manifest = json.loads((human_models / "faceres.json").read_text())["weightsManifest"]
    quantised = [w["name"] for w in manifest[0]["weights"] if "quantization" in w]
    assert quantised and all(graph.weights[n].dtype == np.float32 for n in quantised)
    relu6_cap = graph.weights["conv1_relu/Cast"]
    assert relu6_cap.dtype == np.float32 and float(relu6_cap) == 6.0


def test_converted_graph_takes_uint8_chips_and_gives_unit_descriptors(converted) -> None:
    name, model, session, chips = converted
    _, _, size, dims, _ = MODELS[name]
    (chip_in,) = model.graph.input
    shape = [d.dim_param or d.dim_value for d in chip_in.type.tensor_type.shape.dim]
    assert chip_in.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert shape == [tfjs_onnx.BATCH_DIM, size, size, 3]
    out = _run(session, chips)
    assert out.shape == (3, dims) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_a_batch_of_three_equals_three_single_chips(converted) -> None:
    _, _, session, chips = converted
    together = _run(session, chips)
    for index in range(len(chips)):
        single = _run(session, chips[index:index + 1])
        np.testing.assert_allclose(single[0], together[index], atol=BATCH_TOLERANCE)


def test_converted_graph_matches_tensorflow(converted) -> None:
    name, _, session, chips = converted
    reference = REFERENCE[name]
    out = _run(session, chips).astype(np.float64)
    np.testing.assert_allclose(out[:, :8], reference["first8"], atol=REFERENCE_TOLERANCE)
    assert out[0] @ out[1] == pytest.approx(reference["cos01"], abs=REFERENCE_TOLERANCE)
    assert out[0] @ out[2] == pytest.approx(reference["cos02"], abs=REFERENCE_TOLERANCE)


def test_builds_are_byte_identical(human_models: Path) -> None:
    node, normalisation, *_ = MODELS["mobileface"]
    first, second = (
        tfjs_onnx.build_tfjs_descriptor(human_models / "mobileface.json", node, normalisation)
        for _ in range(2))
    assert first.SerializeToString() == second.SerializeToString()


def test_normalisation_in_the_graph_is_the_numpy_one(human_models: Path, data_dir: Path) -> None:
    """BGR order, a per-channel mean and a scale in the graph equal feeding them pre-applied."""
    graph = tfjs_onnx.load_tfjs(human_models / "mobileface.json")
    bgr = Normalisation("BGR", (10.0, 20.0, 30.0), 0.5)
    with_norm = _session(tfjs_onnx.convert_tfjs(graph, "batchnorm0/add_1", bgr))
    chips = _chips(data_dir, 112)
    expected = bgr.apply(chips)
    # The plain graph (RGB, mean 0, scale 1) with its uint8 Cast made an Identity takes floats.
    plain = tfjs_onnx.convert_tfjs(graph, "batchnorm0/add_1", Normalisation())
    float_model = onnx.ModelProto()
    float_model.CopyFrom(plain)
    cast = next(n for n in float_model.graph.node if n.op_type == "Cast")
    cast.op_type = "Identity"
    del cast.attribute[:]
    float_model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    ours = _run(with_norm, chips)
    theirs = _session(float_model).run(None, {tfjs_onnx.INPUT_NAME: expected})[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


# --- small synthetic graphs, against numpy ------------------------------------------------------


def _write_tfjs(folder: Path, nodes: list[dict], weights: dict[str, np.ndarray]) -> Path:
    manifest, blobs = [], []
    for name, array in weights.items():
        manifest.append({"name": name, "shape": list(array.shape), "dtype": str(array.dtype)})
        blobs.append(np.ascontiguousarray(array).tobytes())
    (folder / "tiny.bin").write_bytes(b"".join(blobs))
    model = {"format": "graph-model", "modelTopology": {"node": nodes},
             "weightsManifest": [{"paths": ["tiny.bin"], "weights": manifest}]}
    path = folder / "tiny.json"
    path.write_text(json.dumps(model))
    return path


def _const(name: str) -> dict:
    return {"name": name, "op": "Const", "attr": {}}


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def _conv_nhwc(x: np.ndarray, kernel: np.ndarray, stride: int, pads: tuple[int, int]) -> np.ndarray:
    """Plain cross-correlation, NHWC x HWIO, explicit (before, after) padding per side."""
    x = np.pad(x, ((0, 0), pads, pads, (0, 0)))
    kh, kw, _, cout = kernel.shape
    rows = (x.shape[1] - kh) // stride + 1
    cols = (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], rows, cols, cout))
    for r in range(rows):
        for c in range(cols):
            patch = x[:, r * stride:r * stride + kh, c * stride:c * stride + kw, :]
            out[:, r, c] = np.tensordot(patch, kernel, axes=([1, 2, 3], [0, 1, 2]))
    return out


def test_same_padding_and_nhwc_flatten_order_match_numpy(tmp_path: Path) -> None:
    """A 5x5 input, 3x3 stride-2 SAME conv (odd padding), PReLU as max/min, flatten, dense."""
    rng = np.random.default_rng(7)
    kernel = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)
    bias = rng.normal(size=4).astype(np.float32)
    alpha = rng.uniform(0.1, 0.3, size=4).astype(np.float32)
    dense = rng.normal(size=(3 * 3 * 4, 5)).astype(np.float32)
    weights = {"k": kernel, "b": bias, "alpha": alpha, "zero": np.float32(0.0).reshape(()),
               "shape": np.array([-1, 36], np.int32), "dense": dense}
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"shape": {"shape": {"dim": [
            {"size": "-1"}, {"size": "5"}, {"size": "5"}, {"size": "3"}]}}}},
        *(_const(n) for n in weights),
        {"name": "conv", "op": "_FusedConv2D", "input": ["x", "k", "b"], "attr": {
            "strides": {"list": {"i": ["1", "2", "2", "1"]}}, "padding": {"s": _b64("SAME")},
            "fused_ops": {"list": {"s": [_b64("BiasAdd")]}}, "num_args": {"i": "1"}}},
        {"name": "pos", "op": "Maximum", "input": ["zero", "conv"]},
        {"name": "neg", "op": "Minimum", "input": ["zero", "conv"]},
        {"name": "scaled", "op": "Mul", "input": ["neg", "alpha"]},
        {"name": "prelu", "op": "AddV2", "input": ["pos", "scaled"]},
        {"name": "flat", "op": "Reshape", "input": ["prelu", "shape"]},
        {"name": "out", "op": "MatMul", "input": ["flat", "dense"]},
    ]
    path = _write_tfjs(tmp_path, nodes, weights)
    norm = Normalisation("RGB", (128.0,) * 3, 1 / 64)
    model = tfjs_onnx.build_tfjs_descriptor(path, "out", norm, l2_normalise=False)
    chips = rng.integers(0, 256, size=(2, 5, 5, 3), dtype=np.uint8)

    x = norm.apply(chips).astype(np.float64)
    conv = _conv_nhwc(x, kernel, 2, (1, 1)) + bias  # SAME on 5 with k3 s2: 1 before, 1 after
    prelu = np.maximum(conv, 0) + alpha * np.minimum(conv, 0)
    expected = prelu.reshape(2, -1) @ dense
    got = _run(_session(model), chips)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_an_unknown_op_is_named(tmp_path: Path) -> None:
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"shape": {"shape": {"dim": [
            {"size": "-1"}, {"size": "4"}, {"size": "4"}, {"size": "3"}]}}}},
        {"name": "odd", "op": "Cumsum", "input": ["x"]},
    ]
    path = _write_tfjs(tmp_path, nodes, {})
    with pytest.raises(UnsupportedOpError, match="Cumsum"):
        tfjs_onnx.build_tfjs_descriptor(path, "odd")


# --- the shared MobileFaceNet ONNX file ---------------------------------------------------------


@pytest.fixture(scope="module")
def mobilefacenet_path(weights_dir: Path) -> Path:
    path = weights_dir / MOBILEFACENET_ONNX
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def test_batchable_mobilefacenet_equals_the_original_image_by_image(
    mobilefacenet_path: Path, data_dir: Path
) -> None:
    original = ort.InferenceSession(str(mobilefacenet_path), providers=["CPUExecutionProvider"])
    batched = _session(tfjs_onnx.make_mobilefacenet_batchable(onnx.load(str(mobilefacenet_path))))
    chips = tfjs_onnx.MOBILEFACENET_NORMALISATION.apply(_chips(data_dir, 112))
    nchw = np.ascontiguousarray(chips.transpose(0, 3, 1, 2))
    together = batched.run(None, {"input": nchw})[0]
    for index in range(len(nchw)):
        single = original.run(None, {"input": nchw[index:index + 1]})[0]
        np.testing.assert_array_equal(single[0], together[index])


def test_served_mobilefacenet_is_uint8_in_unit_vector_out(
    mobilefacenet_path: Path, data_dir: Path
) -> None:
    model = tfjs_onnx.build_mobilefacenet_onnx(mobilefacenet_path)
    chips = _chips(data_dir, 112)
    out = _run(_session(model), chips)
    original = ort.InferenceSession(str(mobilefacenet_path), providers=["CPUExecutionProvider"])
    nchw = tfjs_onnx.MOBILEFACENET_NORMALISATION.apply(chips).transpose(0, 3, 1, 2)
    raw = np.concatenate([original.run(None, {"input": nchw[i:i + 1]})[0] for i in range(3)])
    np.testing.assert_allclose(out, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)
    assert out.shape == (3, 128)
    assert out[0] @ out[1] > out[0] @ out[2]  # the same man is closer than another


def test_make_mobilefacenet_batchable_rejects_another_graph(mobilefacenet_path: Path) -> None:
    model = onnx.load(str(mobilefacenet_path))
    reshape = next(n for n in model.graph.node if n.op_type == "Reshape")
    model.graph.node.remove(reshape)
    with pytest.raises(ValueError, match="Reshape"):
        tfjs_onnx.make_mobilefacenet_batchable(model)


def test_every_tfjs_recipe_builds_its_descriptor(human_models: Path) -> None:
    for name, recipe in tfjs_onnx.RECIPES.items():
        if recipe.json_name is None:
            continue
        model = tfjs_onnx.build_tfjs_descriptor(human_models / recipe.json_name, recipe.output,
                                                recipe.normalisation)
        dims = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim[1:]]
        side = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
        assert (dims, side) == ([recipe.dims], recipe.chip_size), name
