"""Converts dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1.dat``) to ONNX.

The network is the one defined in dlib's ``examples/dnn_face_recognition_ex.cpp``:
a 7x7/2 convolution stem with 3x3/2 max pooling, 14 residual units (3 of width 32,
then a downsampling unit and 3 more of width 64, a downsampling unit and 2 more of
widths 128 and 256, and a last downsampling unit of width 256), global average
pooling and a 128-output fully connected layer without bias.

Graph contract:
    * input ``chip``: uint8 ``[batch, 150, 150, 3]``, RGB, HWC (as OpenCV/numpy hold
      images). Mean subtraction, scaling by 1/256 and the transpose to NCHW happen
      inside the graph.
    * output ``embedding``: float32 ``[batch, 128]``, the raw (unnormalised) dlib
      descriptor.
    * opset 17, IR version 8, byte-identical across builds from the same file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model_repository import dlib_dat
from model_repository.dlib_dat import AddPrev, Affine, Conv, FullyConnected, Pool, Relu, TagOrSkip
from model_repository.specs import FACE_EMBEDDER
from model_repository.weights import sha256_of

LOGGER = logging.getLogger(__name__)

INPUT_NAME = FACE_EMBEDDER.inputs[0].name
OUTPUT_NAME = FACE_EMBEDDER.outputs[0].name
BATCH_DIM = "batch"
OPSET_VERSION = 17
IR_VERSION = 8

_STEM = (Conv, Affine, Relu, Pool)
_BLOCK = (Conv, Affine, Relu, Conv, Affine)
_RESIDUAL = (TagOrSkip, *_BLOCK, AddPrev, Relu)
_RESIDUAL_DOWN = (TagOrSkip, *_BLOCK, TagOrSkip, TagOrSkip, Pool, AddPrev, Relu)
_HEAD = (Pool, FullyConnected)


class UnsupportedNetworkError(ValueError):
    """The ``.dat`` file parses but is not dlib's ResNet face descriptor network."""


class _Value(NamedTuple):
    """A graph tensor and its static ``(channels, rows, cols)`` shape."""

    name: str
    shape: tuple[int, int, int]


class _GraphBuilder:
    """Accumulates nodes and initialisers; a node's output is named after it by default."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(
        self, op_type: str, inputs: Sequence[str], name: str, output: str = "", **attributes: object
    ) -> str:
        output = output or name
        self.nodes.append(
            helper.make_node(op_type, list(inputs), [output], name=name, **attributes)
        )
        return output


def build_embedder_onnx(dat_path: Path) -> onnx.ModelProto:
    """Builds the ONNX face embedder from dlib's descriptor weights.

    Args:
        dat_path: ``dlib_face_recognition_resnet_model_v1.dat``.

    Returns:
        A checked ONNX model following the contract in this module's docstring.

    Raises:
        dlib_dat.DlibDatError: The file is truncated or malformed.
        UnsupportedNetworkError: The file holds a different network.
    """
    dat_path = Path(dat_path)
    started = time.perf_counter()
    network = dlib_dat.load_dlib_dat(dat_path)
    stem, units, head = _split_network(network.layers, dat_path)

    builder = _GraphBuilder()
    x = _preprocess(builder, network.input)
    x = _conv_affine(builder, "stem", x, stem[0], stem[1])
    x = _relu(builder, "stem/relu", x)
    x = _pool(builder, "stem/max_pool", x, stem[3])
    for index, unit in enumerate(units, start=1):
        x = _residual_unit(builder, f"res{index:02d}", x, unit)
    x = _pool(builder, "head/global_avg_pool", x, head[0])
    _fully_connected(builder, x, head[1])

    chip_shape = [BATCH_DIM, network.input.rows, network.input.cols, 3]
    embedding_shape = [BATCH_DIM, head[1].weight.shape[1]]
    graph = helper.make_graph(
        builder.nodes,
        "dlib_face_descriptor",
        inputs=[helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, chip_shape)],
        outputs=[helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, embedding_shape)],
        initializer=builder.initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET_VERSION)], producer_name="facegate"
    )
    model.ir_version = IR_VERSION
    model.doc_string = f"dlib ResNet face descriptor converted from {dat_path.name}"
    helper.set_model_props(
        model, {"source_file": dat_path.name, "source_sha256": sha256_of(dat_path)}
    )
    onnx.checker.check_model(model)
    LOGGER.info(
        "Built ONNX face embedder from %s in %.3f s", dat_path, time.perf_counter() - started
    )
    return model



def _kinds(layers: Sequence[dlib_dat.Layer]) -> tuple[type, ...]:
    return tuple(type(layer) for layer in layers)


def _split_network(
    layers: Sequence[dlib_dat.Layer], dat_path: Path
) -> tuple[Sequence[dlib_dat.Layer], list[Sequence[dlib_dat.Layer]], Sequence[dlib_dat.Layer]]:
    """Splits the flat layer list into stem, residual units and head.

    Tags and skips are anonymous in the file, so the residual wiring comes from the
    unit templates of ``dnn_face_recognition_ex.cpp``: a unit tags its input, and a
    downsampling unit also tags its block output and skips back to the input to pool it.
    """
    stem, head = layers[: len(_STEM)], layers[len(layers) - len(_HEAD) :]
    if _kinds(stem) != _STEM or _kinds(head) != _HEAD:
        raise UnsupportedNetworkError(f"{dat_path}: stem or head is not dlib's face ResNet")
    units = []
    position, end = len(_STEM), len(layers) - len(_HEAD)
    while position < end:
        for template in (_RESIDUAL, _RESIDUAL_DOWN):
            candidate = layers[position : position + len(template)]
            if _kinds(candidate) == template:
                units.append(candidate)
                position += len(template)
                break
        else:
            raise UnsupportedNetworkError(
                f"{dat_path}: layer {position} does not start a residual unit"
            )
    return stem, units, head


def _preprocess(builder: _GraphBuilder, input_layer: dlib_dat.InputRGBImage) -> _Value:
    """uint8 NHWC RGB -> float32 NCHW ``(pixel - mean) / 256``, as dlib's input layer."""
    mean = builder.constant("preprocess/mean_rgb", np.array(input_layer.mean_rgb, dtype=np.float32))
    scale = builder.constant("preprocess/divisor", np.array(256.0, dtype=np.float32))
    x = builder.node("Cast", [INPUT_NAME], "preprocess/to_float", to=TensorProto.FLOAT)
    x = builder.node("Sub", [x, mean], "preprocess/sub_mean")
    x = builder.node("Div", [x, scale], "preprocess/scale")
    x = builder.node("Transpose", [x], "preprocess/to_nchw", perm=[0, 3, 1, 2])
    return _Value(x, (3, input_layer.rows, input_layer.cols))


def _output_size(size: int, window: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - window) // stride + 1


def _conv_affine(
    builder: _GraphBuilder, prefix: str, x: _Value, conv: Conv, affine: Affine
) -> _Value:
    """Convolution followed by dlib's per-channel affine (its inference-time batch norm)."""
    out_channels, _, rows, cols = conv.weight.shape
    if affine.gamma.shape != (out_channels,):
        raise UnsupportedNetworkError(
            f"{prefix}: affine {affine.gamma.shape} after {out_channels} filters"
        )
    weight = builder.constant(f"{prefix}/conv/weight", conv.weight)
    bias = builder.constant(f"{prefix}/conv/bias", conv.bias)
    y = builder.node(
        "Conv",
        [x.name, weight, bias],
        f"{prefix}/conv",
        kernel_shape=[rows, cols],
        strides=list(conv.stride),
        pads=list(conv.padding) * 2,
    )
    gamma = builder.constant(f"{prefix}/affine/gamma", affine.gamma.reshape(1, -1, 1, 1))
    beta = builder.constant(f"{prefix}/affine/beta", affine.beta.reshape(1, -1, 1, 1))
    y = builder.node("Mul", [y, gamma], f"{prefix}/affine/scale")
    y = builder.node("Add", [y, beta], f"{prefix}/affine/shift")
    shape = (
        out_channels,
        _output_size(x.shape[1], rows, conv.stride[0], conv.padding[0]),
        _output_size(x.shape[2], cols, conv.stride[1], conv.padding[1]),
    )
    return _Value(y, shape)


def _relu(builder: _GraphBuilder, name: str, x: _Value) -> _Value:
    return _Value(builder.node("Relu", [x.name], name), x.shape)


def _pool(builder: _GraphBuilder, name: str, x: _Value, pool: Pool) -> _Value:
    if pool.padding != (0, 0):
        raise UnsupportedNetworkError(f"{name}: padded {pool.kind} pooling is not supported")
    if pool.is_global:
        op_type = {"max": "GlobalMaxPool", "avg": "GlobalAveragePool"}[pool.kind]
        return _Value(builder.node(op_type, [x.name], name), (x.shape[0], 1, 1))
    op_type = {"max": "MaxPool", "avg": "AveragePool"}[pool.kind]
    y = builder.node(
        op_type, [x.name], name, kernel_shape=list(pool.window), strides=list(pool.stride)
    )
    rows = _output_size(x.shape[1], pool.window[0], pool.stride[0], 0)
    cols = _output_size(x.shape[2], pool.window[1], pool.stride[1], 0)
    return _Value(y, (x.shape[0], rows, cols))


def _zero_pad(builder: _GraphBuilder, name: str, x: _Value, shape: tuple[int, int, int]) -> _Value:
    """Zero-pads channels, rows and columns at the end, as dlib's ``add_prev`` does."""
    if x.shape == shape:
        return x
    extra = [target - current for target, current in zip(shape, x.shape, strict=True)]
    pads = builder.constant(f"{name}/pads", np.array([0, 0, 0, 0, 0, *extra], dtype=np.int64))
    return _Value(builder.node("Pad", [x.name, pads], name, mode="constant"), shape)


def _residual_unit(
    builder: _GraphBuilder, prefix: str, x: _Value, unit: Sequence[dlib_dat.Layer]
) -> _Value:
    """One ``ares`` or ``ares_down`` unit: ``relu(block(x) + shortcut(x))``."""
    y = _conv_affine(builder, f"{prefix}/block1", x, unit[1], unit[2])
    y = _relu(builder, f"{prefix}/block1/relu", y)
    y = _conv_affine(builder, f"{prefix}/block2", y, unit[4], unit[5])
    shortcut = x
    if _kinds(unit) == _RESIDUAL_DOWN:
        shortcut = _pool(builder, f"{prefix}/shortcut/avg_pool", x, unit[8])
    shape = tuple(max(dims) for dims in zip(y.shape, shortcut.shape, strict=True))
    y = _zero_pad(builder, f"{prefix}/block2/zero_pad", y, shape)
    shortcut = _zero_pad(builder, f"{prefix}/shortcut/zero_pad", shortcut, shape)
    total = _Value(builder.node("Add", [y.name, shortcut.name], f"{prefix}/add"), shape)
    return _relu(builder, f"{prefix}/relu", total)


def _fully_connected(builder: _GraphBuilder, x: _Value, fc: FullyConnected) -> None:
    """Flattens and multiplies by the ``(inputs, outputs)`` weight into ``OUTPUT_NAME``."""
    if x.shape[0] * x.shape[1] * x.shape[2] != fc.weight.shape[0]:
        raise UnsupportedNetworkError(
            f"fc expects {fc.weight.shape[0]} inputs, got shape {x.shape}"
        )
    flat = builder.node("Flatten", [x.name], "head/flatten", axis=1)
    weight = builder.constant("head/fc/weight", fc.weight)
    if fc.bias is None:
        builder.node("MatMul", [flat, weight], "head/fc", output=OUTPUT_NAME)
        return
    product = builder.node("MatMul", [flat, weight], "head/fc")
    bias = builder.constant("head/fc/bias", fc.bias)
    builder.node("Add", [product, bias], "head/fc/bias_add", output=OUTPUT_NAME)
