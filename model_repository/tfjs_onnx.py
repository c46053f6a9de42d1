"""TensorFlow.js graph models to ONNX, with numpy and onnx only (no TensorFlow).

A tfjs "graph-model" is two files: ``X.json`` holds the TensorFlow GraphDef as JSON
(``modelTopology.node``: name, op, inputs, attrs with base64 strings) and a ``weightsManifest``
naming, in order, the tensors stored back to back in ``X.bin`` (each ``Const`` node's value;
float32 or int32, or quantized: float16, or uint8/uint16 with ``scale`` and ``min``).
`load_tfjs` reads both; `convert_tfjs` walks the graph back from one output node and writes
the ops it reaches as ONNX:

* TensorFlow's NHWC activations are held as NCHW in the ONNX graph (a single transpose after
  the input), so every convolution is a plain ONNX ``Conv``. Constants that broadcast against
  them are laid out to match, pads and reduction axes are remapped, and a ``Reshape`` of a 4-D
  activation transposes back to NHWC first, so flattening keeps TensorFlow's element order.
* Convolutions: ``Conv2D``, ``DepthwiseConv2dNative`` and tfjs's fused forms
  (``_FusedConv2D``, ``FusedDepthwiseConv2dNative``: ``BiasAdd`` and optionally
  ``Relu``/``Relu6``/``Elu``/``LeakyRelu``/``Prelu``/``Sigmoid``/``Tanh``, or
  ``FusedBatchNorm`` folded into the weights); ``SAME`` padding becomes TensorFlow's explicit
  pads (the odd pixel at the bottom and right).
* ``MatMul``/``_FusedMatMul`` (with a constant right operand), ``Pad``, ``Reshape``,
  ``Squeeze``, ``Mean``/``Sum``/``Max``, elementwise ``Add``/``AddV2``/``Sub``/``Mul``/
  ``RealDiv``/``Maximum``/``Minimum``/``Abs``/``Neg``/``Square``/``Sqrt``/``Rsqrt``/``Exp``,
  activations ``Relu``/``Relu6``/``Sigmoid``/``Tanh``/``Softmax``, ``Identity``.
  Anything else raises `UnsupportedOpError` naming the op. A PReLU written as
  ``relu(x) + alpha * (x - |x|) * 0.5`` or ``max(0, x) + alpha * min(0, x)`` is converted op by
  op: the arithmetic is the same.

Graph contract of a built descriptor (`build_tfjs_descriptor`, and `build_mobilefacenet_onnx`
for the shared MobileFaceNet ONNX file):
    * input ``chip``: uint8 ``[batch, S, S, 3]`` RGB, HWC, S the network's input side. Colour
      order, mean and scale (`Normalisation`) are applied inside the graph.
    * output ``embedding``: float32 ``[batch, D]``, L2-normalised (compare by cosine = dot).
    * opset 17, IR version 8, deterministic: the same files give byte-identical graphs.

`RECIPES` records how each descriptor has to be fed (chip size, template, colour order,
normalisation), as measured on labelled pairs; none of it is stated in the files.

    python -m model_repository.tfjs_onnx ops X.json            # the ops a graph uses
    python -m model_repository.tfjs_onnx convert X.json OUT.onnx --output NODE \\
        [--colour RGB|BGR] [--mean M] [--scale S]
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT_NAME = "chip"
OUTPUT_NAME = "embedding"
BATCH_DIM = "batch"
OPSET_VERSION = 17
IR_VERSION = 8
L2_EPSILON = 1e-10

_NHWC_TO_NCHW = (0, 3, 1, 2)
_NCHW_TO_NHWC = (0, 2, 3, 1)
_TF_DTYPES = {
    "float32": np.float32, "int32": np.int32, "bool": np.bool_, "float16": np.float16,
}
_ACTIVATIONS = {"Relu", "Relu6", "Elu", "LeakyRelu", "Prelu", "Sigmoid", "Tanh"}


class UnsupportedOpError(NotImplementedError):
    """The graph uses an op (or an op form) this converter does not write."""


# --- reading the files -------------------------------------------------------------------------


@dataclass(frozen=True)
class TfjsNode:
    """One GraphDef node: its inputs without ``:0`` suffixes, control inputs dropped."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attr: dict


@dataclass(frozen=True)
class TfjsGraph:
    """A tfjs graph model: its nodes by name (in file order) and every constant's value."""

    nodes: dict[str, TfjsNode]
    weights: dict[str, np.ndarray]
    source: str
    metadata: dict = field(default_factory=dict)

    @property
    def placeholders(self) -> list[TfjsNode]:
        return [n for n in self.nodes.values() if n.op == "Placeholder"]

    def op_counts(self) -> dict[str, int]:
        return dict(collections.Counter(n.op for n in self.nodes.values()).most_common())


def _tensor_name(reference: str) -> str:
    name, _, index = reference.partition(":")
    if index not in ("", "0"):
        raise UnsupportedOpError(f"output {index} of node {name}: only single-output ops are read")
    return name


def read_weights(manifest: list[dict], folder: Path) -> dict[str, np.ndarray]:
    """Every tensor of a ``weightsManifest``, dequantised to its original dtype."""
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((folder / path).read_bytes() for path in group["paths"])
        offset = 0
        for entry in group["weights"]:
            shape = [int(d) for d in entry["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = entry.get("quantization")
            stored = np.dtype(quant["dtype"] if quant else entry["dtype"])
            if offset + count * stored.itemsize > len(data):
                raise ValueError(f"{folder}: weights end before {entry['name']}")
            array = np.frombuffer(data, stored, count, offset).reshape(shape)
            offset += count * stored.itemsize
            if quant and quant["dtype"] in ("uint8", "uint16"):
                array = array.astype(np.float32) * np.float32(quant["scale"]) + np.float32(
                    quant["min"])
            weights[entry["name"]] = array.astype(_TF_DTYPES[entry["dtype"]])
        if offset != len(data):
            raise ValueError(f"{folder}: {len(data) - offset} bytes left over after the manifest")
    return weights


def load_tfjs(json_path: Path) -> TfjsGraph:
    """Read ``X.json`` and the ``.bin`` files its manifest names (beside it)."""
    json_path = Path(json_path)
    model = json.loads(json_path.read_text())
    if model.get("format") not in (None, "graph-model"):
        raise ValueError(f"{json_path}: format {model.get('format')!r} is not a graph-model")
    nodes = {}
    for raw in model["modelTopology"]["node"]:
        inputs = tuple(_tensor_name(i) for i in raw.get("input", []) if not i.startswith("^"))
        nodes[raw["name"]] = TfjsNode(raw["name"], raw["op"], inputs, raw.get("attr", {}))
    weights = read_weights(model["weightsManifest"], json_path.parent)
    missing = [n.name for n in nodes.values() if n.op == "Const" and n.name not in weights]
    if missing:
        raise ValueError(f"{json_path}: constants without weights: {missing[:5]}")
    meta = {k: model[k] for k in ("generatedBy", "convertedBy", "signature",
                                   "userDefinedMetadata") if k in model}
    return TfjsGraph(nodes, weights, json_path.name, meta)


def _attr_string(node: TfjsNode, key: str, default: str = "") -> str:
    value = node.attr.get(key, {}).get("s")
    return base64.b64decode(value).decode() if value is not None else default


def _attr_ints(node: TfjsNode, key: str, default: tuple[int, ...] = ()) -> tuple[int, ...]:
    values = node.attr.get(key, {}).get("list", {}).get("i")
    return tuple(int(v) for v in values) if values else default


def _attr_strings(node: TfjsNode, key: str) -> list[str]:
    encoded = node.attr.get(key, {}).get("list", {}).get("s", [])
    return [base64.b64decode(s).decode() for s in encoded]


def _attr_float(node: TfjsNode, key: str, default: float) -> float:
    return float(node.attr.get(key, {}).get("f", default))


def _attr_bool(node: TfjsNode, key: str, default: bool = False) -> bool:
    return bool(node.attr.get(key, {}).get("b", default))


# --- PReLU written out in elementwise ops ------------------------------------------------------


def _consumers(nodes: dict[str, TfjsNode]) -> collections.Counter:
    return collections.Counter(i for n in nodes.values() for i in n.inputs)


def _scalar_zero(graph: TfjsGraph, name: str) -> bool:
    node = graph.nodes.get(name)
    if node is None or node.op != "Const":
        return False
    value = graph.weights[name]
    return value.size == 1 and float(value.ravel()[0]) == 0.0


def _match_prelu(graph: TfjsGraph, add: TfjsNode, uses: collections.Counter):
    """``(x, alpha, intermediates)`` when `add` computes PReLU(x, alpha), else None.

    Two forms: ``relu(x) + (x - |x|) * c`` (alpha = 2c) and ``max(0, x) + min(0, x) * c``
    (alpha = c), operands in either order, c a constant.
    """
    nodes = graph.nodes
    if add.op not in ("Add", "AddV2") or len(add.inputs) != 2:
        return None
    for positive_name, product_name in (add.inputs, add.inputs[::-1]):
        positive, product = nodes.get(positive_name), nodes.get(product_name)
        if positive is None or product is None or product.op != "Mul":
            continue
        if positive.op == "Relu":
            x = positive.inputs[0]
        elif positive.op == "Maximum" and _scalar_zero(graph, positive.inputs[0]):
            x = positive.inputs[1]
        elif positive.op == "Maximum" and _scalar_zero(graph, positive.inputs[1]):
            x = positive.inputs[0]
        else:
            continue
        for negative_name, factor_name in (product.inputs, product.inputs[::-1]):
            negative, factor = nodes.get(negative_name), nodes.get(factor_name)
            if negative is None or factor is None or factor.op != "Const":
                continue
            inner = [positive_name, product_name, negative_name]
            if (positive.op == "Relu" and negative.op == "Sub" and negative.inputs[0] == x
                    and nodes[negative.inputs[1]].op == "Abs"
                    and nodes[negative.inputs[1]].inputs[0] == x):
                inner.append(negative.inputs[1])
                alpha = 2.0 * graph.weights[factor_name].astype(np.float32)
            elif (positive.op == "Maximum" and negative.op == "Minimum" and x in negative.inputs
                  and all(_scalar_zero(graph, i) for i in negative.inputs if i != x)):
                alpha = graph.weights[factor_name].astype(np.float32)
            else:
                continue
            if all(uses[name] == 1 for name in inner):
                return x, alpha, inner
    return None


def fold_prelu(graph: TfjsGraph) -> TfjsGraph:
    """A copy of `graph` with each elementwise PReLU replaced by one ``_PRelu`` node.

    Same arithmetic (up to rounding) in one ONNX ``PRelu`` instead of four or five
    elementwise ops over the whole activation: the tfjs MobileFaceNet spends most of its time
    there. Intermediates used elsewhere are left alone.
    """
    uses = _consumers(graph.nodes)
    nodes, weights = dict(graph.nodes), dict(graph.weights)
    for node in graph.nodes.values():
        match = _match_prelu(graph, node, uses)
        if match is None:
            continue
        x, alpha, inner = match
        alpha_name = f"{node.name}/prelu_alpha"
        weights[alpha_name] = alpha
        nodes[alpha_name] = TfjsNode(alpha_name, "Const", (), {})
        nodes[node.name] = TfjsNode(node.name, "_PRelu", (x, alpha_name), {})
    while True:  # drop what only the folded PReLUs used, up to the first unused node
        used = _consumers(nodes)
        dead = [name for name, n in nodes.items() if uses[name] and not used[name]]
        if not dead:
            break
        for name in dead:
            del nodes[name]
    return TfjsGraph(nodes, weights, graph.source, graph.metadata)


# --- the converter -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Normalisation:
    """What the network's input wants, from a uint8 RGB chip: ``(pixel - mean) * scale``.

    Attributes:
        colour: ``"RGB"`` or ``"BGR"``: the channel order the network was trained on.
        mean: subtracted per channel (in the network's channel order) or from all.
        scale: multiplied after the subtraction.
    """

    colour: str = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.colour not in ("RGB", "BGR"):
            raise ValueError(f"colour must be RGB or BGR, not {self.colour!r}")

    def apply(self, chips_rgb: np.ndarray) -> np.ndarray:
        """The same arithmetic in numpy, for checks: uint8 NHWC RGB -> float32 NHWC."""
        x = chips_rgb.astype(np.float32)
        if self.colour == "BGR":
            x = x[..., ::-1]
        return (x - np.float32(self.mean)) * np.float32(self.scale)


@dataclass
class _Value:
    """A converted tensor: its ONNX name, TensorFlow (NHWC) shape, and whether it is held NCHW."""

    name: str
    shape: tuple  # TensorFlow's logical shape; None for the batch dimension
    nchw: bool = False

    @property
    def rank(self) -> int:
        return len(self.shape)


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _conv_out(size: int, kernel: int, stride: int, dilation: int, before: int, after: int) -> int:
    return (size + before + after - ((kernel - 1) * dilation + 1)) // stride + 1


def _broadcast(a: tuple, b: tuple) -> tuple:
    rank = max(len(a), len(b))
    a = (1,) * (rank - len(a)) + tuple(a)
    b = (1,) * (rank - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b, strict=True):
        if x is None or y is None:
            out.append(None if (x in (None, 1) and y in (None, 1)) else max(x or 1, y or 1))
        elif x == 1 or y == 1 or x == y:
            out.append(max(x, y))
        else:
            raise ValueError(f"shapes {a} and {b} do not broadcast")
    return tuple(out)


class _Converter:
    def __init__(self, graph: TfjsGraph, prefix: str = "") -> None:
        self.graph = graph
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.values: dict[str, _Value] = {}
        self._names: set[str] = set()

    # graph building helpers
    def _unique(self, name: str) -> str:
        name = self.prefix + name
        candidate, index = name, 1
        while candidate in self._names:
            candidate, index = f"{name}_{index}", index + 1
        self._names.add(candidate)
        return candidate

    def const(self, name: str, array: np.ndarray) -> str:
        unique = self._unique(name)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), unique))
        return unique

    def node(self, op_type: str, inputs: list[str], name: str, **attrs: object) -> str:
        output = self._unique(name)
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output

    # values
    def is_const(self, name: str) -> bool:
        return self.graph.nodes[name].op == "Const"

    def const_value(self, name: str) -> np.ndarray:
        if not self.is_const(name):
            raise UnsupportedOpError(f"{name} must be a constant here")
        return self.graph.weights[name]

    def float_const(self, name: str) -> np.ndarray:
        return self.const_value(name).astype(np.float32)

    def to_nhwc(self, value: _Value) -> _Value:
        if not value.nchw:
            return value
        name = self.node("Transpose", [value.name], value.name + "/to_nhwc",
                         perm=list(_NCHW_TO_NHWC))
        return _Value(name, value.shape, nchw=False)

    def layout_const(self, array: np.ndarray, like: _Value, name: str) -> str:
        """A constant operand laid out to broadcast against `like` as TensorFlow would."""
        array = array.astype(np.float32)
        if array.size == 1:
            return self.const(name, array.reshape(()))
        if like.nchw:
            if array.ndim > 4:
                raise UnsupportedOpError(f"{name}: a {array.ndim}-D constant against a 4-D tensor")
            array = array.reshape((1,) * (4 - array.ndim) + array.shape).transpose(_NHWC_TO_NCHW)
        return self.const(name, array)

    # walking the graph
    def convert(self, output: str) -> _Value:
        order: list[str] = []
        state: dict[str, int] = {}
        stack = [(output, False)]
        while stack:
            name, done = stack.pop()
            if name not in self.graph.nodes:
                raise ValueError(f"{self.graph.source}: no node named {name!r}")
            if done:
                state[name] = 2
                order.append(name)
                continue
            if state.get(name) == 2:
                continue
            if state.get(name) == 1:
                raise ValueError(f"{self.graph.source}: cycle through {name}")
            state[name] = 1
            stack.append((name, True))
            for parent in reversed(self.graph.nodes[name].inputs):
                if state.get(parent) != 2:
                    stack.append((parent, False))
        for name in order:
            node = self.graph.nodes[name]
            if node.op in ("Const", "Placeholder") and name in self.values:
                continue
            if node.op == "Const":
                continue
            if node.op == "Placeholder":
                raise ValueError(f"placeholder {name} was not bound to an input")
            handler = getattr(self, f"_op_{node.op.lstrip('_')}", None)
            if handler is None:
                raise UnsupportedOpError(f"{self.graph.source}: op {node.op} (node {name})")
            self.values[name] = handler(node)
        return self.values[output]

    def value(self, name: str) -> _Value:
        if name not in self.values:
            raise UnsupportedOpError(f"{name} ({self.graph.nodes[name].op}) used as a tensor")
        return self.values[name]

    # elementwise
    def _binary(self, node: TfjsNode, onnx_op: str) -> _Value:
        a_name, b_name = node.inputs
        a_const, b_const = self.is_const(a_name), self.is_const(b_name)
        if a_const and b_const:
            raise UnsupportedOpError(f"{node.name}: {node.op} of two constants")
        if a_const or b_const:
            tensor = self.value(b_name if a_const else a_name)
            array = self.float_const(a_name if a_const else b_name)
            shape = _broadcast(tensor.shape, array.shape)
            if len(shape) != tensor.rank:
                raise UnsupportedOpError(f"{node.name}: a constant raises the rank")
            constant = self.layout_const(array, tensor, node.name + "/const")
            inputs = [constant, tensor.name] if a_const else [tensor.name, constant]
            return _Value(self.node(onnx_op, inputs, node.name), shape, tensor.nchw)
        a, b = self.value(a_name), self.value(b_name)
        if a.nchw != b.nchw:
            a, b = self.to_nhwc(a), self.to_nhwc(b)
        shape = _broadcast(a.shape, b.shape)
        if a.nchw and a.rank != b.rank:
            raise UnsupportedOpError(f"{node.name}: ranks {a.rank} and {b.rank} mixed in NCHW")
        return _Value(self.node(onnx_op, [a.name, b.name], node.name), shape, a.nchw)

    def _op_Add(self, node):
        return self._binary(node, "Add")

    _op_AddV2 = _op_Add

    def _op_Sub(self, node):
        return self._binary(node, "Sub")

    def _op_Mul(self, node):
        return self._binary(node, "Mul")

    def _op_RealDiv(self, node):
        return self._binary(node, "Div")

    def _op_Maximum(self, node):
        return self._binary(node, "Max")

    def _op_Minimum(self, node):
        return self._binary(node, "Min")

    def _unary(self, node: TfjsNode, onnx_op: str, **attrs) -> _Value:
        x = self.value(node.inputs[0])
        return _Value(self.node(onnx_op, [x.name], node.name, **attrs), x.shape, x.nchw)

    def _op_Abs(self, node):
        return self._unary(node, "Abs")

    def _op_Neg(self, node):
        return self._unary(node, "Neg")

    def _op_Relu(self, node):
        return self._unary(node, "Relu")

    def _op_Sigmoid(self, node):
        return self._unary(node, "Sigmoid")

    def _op_Tanh(self, node):
        return self._unary(node, "Tanh")

    def _op_Exp(self, node):
        return self._unary(node, "Exp")

    def _op_Sqrt(self, node):
        return self._unary(node, "Sqrt")

    def _op_Identity(self, node):
        x = self.value(node.inputs[0])
        return _Value(x.name, x.shape, x.nchw)

    def _op_Elu(self, node):
        return self._unary(node, "Elu", alpha=1.0)

    def _op_LeakyRelu(self, node):
        return self._unary(node, "LeakyRelu", alpha=_attr_float(node, "alpha", 0.2))

    def _op_Relu6(self, node):
        x = self.value(node.inputs[0])
        low = self.const(node.name + "/min", np.array(0.0, np.float32))
        high = self.const(node.name + "/max", np.array(6.0, np.float32))
        return _Value(self.node("Clip", [x.name, low, high], node.name), x.shape, x.nchw)

    def _op_Square(self, node):
        x = self.value(node.inputs[0])
        return _Value(self.node("Mul", [x.name, x.name], node.name), x.shape, x.nchw)

    def _op_Rsqrt(self, node):
        x = self.value(node.inputs[0])
        root = self.node("Sqrt", [x.name], node.name + "/sqrt")
        return _Value(self.node("Reciprocal", [root], node.name), x.shape, x.nchw)

    def _op_Softmax(self, node):
        x = self.to_nhwc(self.value(node.inputs[0]))
        return _Value(self.node("Softmax", [x.name], node.name, axis=-1), x.shape)

    # shape ops
    def _axes(self, value: _Value, axes) -> list[int]:
        axes = [int(a) % value.rank for a in np.atleast_1d(axes)]
        if value.nchw:
            axes = [_NHWC_TO_NCHW.index(a) for a in axes]
        return sorted(axes)

    def _after_removing(self, value: _Value, name: str, stored_axes: list[int]) -> _Value:
        """The layout of what is left of `value` once `stored_axes` (ONNX positions) are gone."""
        removed_tf = {(_NHWC_TO_NCHW[a] if value.nchw else a) for a in stored_axes}
        shape = tuple(d for i, d in enumerate(value.shape) if i not in removed_tf)
        if not value.nchw:
            return _Value(name, shape)
        left = [tf_axis for tf_axis in _NHWC_TO_NCHW if tf_axis not in removed_tf]
        if left == sorted(left):
            return _Value(name, shape)
        perm = [left.index(a) for a in sorted(left)]
        return _Value(self.node("Transpose", [name], name + "/to_tf_order", perm=perm), shape)

    def _reduce(self, node: TfjsNode, onnx_op: str) -> _Value:
        x = self.value(node.inputs[0])
        axes = self._axes(x, self.const_value(node.inputs[1]))
        keep = _attr_bool(node, "keep_dims")
        if onnx_op == "ReduceSum":
            axes_name = self.const(node.name + "/axes", np.array(axes, np.int64))
            out = self.node(onnx_op, [x.name, axes_name], node.name, keepdims=int(keep))
        else:
            out = self.node(onnx_op, [x.name], node.name, axes=axes, keepdims=int(keep))
        if keep:
            tf_axes = {(_NHWC_TO_NCHW[a] if x.nchw else a) for a in axes}
            shape = tuple(1 if i in tf_axes else d for i, d in enumerate(x.shape))
            return _Value(out, shape, x.nchw)
        return self._after_removing(x, out, axes)

    def _op_Mean(self, node):
        return self._reduce(node, "ReduceMean")

    def _op_Sum(self, node):
        return self._reduce(node, "ReduceSum")

    def _op_Max(self, node):
        return self._reduce(node, "ReduceMax")

    def _op_Squeeze(self, node):
        x = self.value(node.inputs[0])
        dims = _attr_ints(node, "squeeze_dims") or tuple(
            i for i, d in enumerate(x.shape) if d == 1)
        axes = self._axes(x, dims)
        if any(x.shape[(_NHWC_TO_NCHW[a] if x.nchw else a)] != 1 for a in axes):
            raise ValueError(f"{node.name}: squeezing a dimension that is not 1")
        axes_name = self.const(node.name + "/axes", np.array(axes, np.int64))
        out = self.node("Squeeze", [x.name, axes_name], node.name)
        return self._after_removing(x, out, axes)

    def _op_Reshape(self, node):
        x = self.to_nhwc(self.value(node.inputs[0]))
        target = [int(d) for d in self.const_value(node.inputs[1]).ravel()]
        known = int(np.prod([d for d in x.shape[1:]]))
        if target[0] in (-1, 1) and x.shape[0] is None and int(np.prod(target[1:])) == known:
            target[0] = -1  # the batch stays free: the graph was traced with one image
        shape_name = self.const(node.name + "/shape", np.array(target, np.int64))
        out = self.node("Reshape", [x.name, shape_name], node.name)
        return _Value(out, tuple(None if d == -1 else d for d in target))

    def _op_Pad(self, node):
        x = self.value(node.inputs[0])
        pads = self.const_value(node.inputs[1]).astype(np.int64).reshape(x.rank, 2)
        shape = tuple(None if d is None else d + int(b + a) for d, (b, a) in zip(x.shape, pads,
                                                                                strict=True))
        if x.nchw:
            pads = pads[list(_NHWC_TO_NCHW)]
        pads_name = self.const(node.name + "/pads", np.concatenate([pads[:, 0], pads[:, 1]]))
        out = self.node("Pad", [x.name, pads_name], node.name, mode="constant")
        return _Value(out, shape, x.nchw)

    # convolutions and matrix products
    def _conv(self, node: TfjsNode, depthwise: bool, fused: list[str]) -> _Value:
        if _attr_string(node, "data_format", "NHWC") != "NHWC":
            raise UnsupportedOpError(f"{node.name}: data_format other than NHWC")
        x = self.value(node.inputs[0])
        if x.rank != 4 or not x.nchw:
            raise UnsupportedOpError(f"{node.name}: convolution of a tensor that is not 4-D NHWC")
        kernel = self.float_const(node.inputs[1])
        kh, kw, cin, cmul = kernel.shape
        if cin != x.shape[3]:
            raise ValueError(f"{node.name}: kernel for {cin} channels, input has {x.shape[3]}")
        strides = _attr_ints(node, "strides", (1, 1, 1, 1))
        dilations = _attr_ints(node, "dilations", (1, 1, 1, 1))
        if strides[0] != 1 or strides[3] != 1 or dilations[0] != 1 or dilations[3] != 1:
            raise UnsupportedOpError(f"{node.name}: stride or dilation over batch/channels")
        padding = _attr_string(node, "padding", "VALID")
        if padding == "SAME":
            ph = _same_pads(x.shape[1], kh, strides[1], dilations[1])
            pw = _same_pads(x.shape[2], kw, strides[2], dilations[2])
        elif padding == "VALID":
            ph = pw = (0, 0)
        elif padding == "EXPLICIT":
            explicit = _attr_ints(node, "explicit_paddings")
            ph, pw = explicit[2:4], explicit[4:6]
        else:
            raise UnsupportedOpError(f"{node.name}: padding {padding}")
        if depthwise:
            weight = kernel.transpose(2, 3, 0, 1).reshape(cin * cmul, 1, kh, kw)
            group, cout = cin, cin * cmul
        else:
            weight = kernel.transpose(3, 2, 0, 1)
            group, cout = 1, cmul
        bias = None
        args = list(node.inputs[2:])
        activations = list(fused)
        if activations and activations[0] == "FusedBatchNorm":
            scale, offset, mean, variance = (self.float_const(a) for a in args[:4])
            factor = scale / np.sqrt(variance + np.float32(_attr_float(node, "epsilon", 1e-4)))
            weight = weight * factor.reshape(-1, 1, 1, 1)
            bias = offset - mean * factor
            args, activations = args[4:], activations[1:]
        elif activations and activations[0] == "BiasAdd":
            bias = self.float_const(args[0])
            args, activations = args[1:], activations[1:]
        inputs = [x.name, self.const(node.name + "/weight", weight.astype(np.float32))]
        if bias is not None:
            inputs.append(self.const(node.name + "/bias", bias.astype(np.float32)))
        out_h = _conv_out(x.shape[1], kh, strides[1], dilations[1], *ph)
        out_w = _conv_out(x.shape[2], kw, strides[2], dilations[2], *pw)
        conv_name = node.name if not activations else node.name + "/conv"
        out = self.node(
            "Conv", inputs, conv_name, kernel_shape=[kh, kw], strides=list(strides[1:3]),
            dilations=list(dilations[1:3]), pads=[ph[0], pw[0], ph[1], pw[1]], group=group,
        )
        result = _Value(out, (None, out_h, out_w, cout), nchw=True)
        return self._fused_activation(node, result, activations, args)

    def _fused_activation(self, node: TfjsNode, x: _Value, activations: list[str],
                          args: list[str]) -> _Value:
        if len(activations) > 1 or (activations and activations[0] not in _ACTIVATIONS):
            raise UnsupportedOpError(f"{node.name}: fused ops {activations}")
        if not activations:
            return x
        kind = activations[0]
        if kind == "Relu6":
            low = self.const(node.name + "/min", np.array(0.0, np.float32))
            high = self.const(node.name + "/max", np.array(6.0, np.float32))
            return _Value(self.node("Clip", [x.name, low, high], node.name), x.shape, x.nchw)
        if kind == "Prelu":
            alpha = self.layout_const(self.float_const(args[0]), x, node.name + "/alpha")
            return _Value(self.node("PRelu", [x.name, alpha], node.name), x.shape, x.nchw)
        attrs = {"LeakyRelu": {"alpha": _attr_float(node, "leakyrelu_alpha", 0.2)},
                 "Elu": {"alpha": 1.0}}.get(kind, {})
        return _Value(self.node(kind, [x.name], node.name, **attrs), x.shape, x.nchw)

    def _op_Conv2D(self, node):
        return self._conv(node, depthwise=False, fused=[])

    def _op_DepthwiseConv2dNative(self, node):
        return self._conv(node, depthwise=True, fused=[])

    def _op_FusedConv2D(self, node):
        return self._conv(node, depthwise=False, fused=_attr_strings(node, "fused_ops"))

    def _op_FusedDepthwiseConv2dNative(self, node):
        return self._conv(node, depthwise=True, fused=_attr_strings(node, "fused_ops"))

    def _matmul(self, node: TfjsNode, fused: list[str]) -> _Value:
        x = self.to_nhwc(self.value(node.inputs[0]))
        if x.rank != 2:
            raise UnsupportedOpError(f"{node.name}: MatMul of a {x.rank}-D tensor")
        if _attr_bool(node, "transpose_a"):
            raise UnsupportedOpError(f"{node.name}: transpose_a")
        weight = self.float_const(node.inputs[1])
        if _attr_bool(node, "transpose_b"):
            weight = weight.T
        if weight.shape[0] != x.shape[1]:
            raise ValueError(f"{node.name}: {x.shape} @ {weight.shape}")
        args, activations = list(node.inputs[2:]), list(fused)
        product_name = node.name if not activations else node.name + "/matmul"
        out = self.node("MatMul", [x.name, self.const(node.name + "/weight", weight)],
                        product_name)
        result = _Value(out, (x.shape[0], weight.shape[1]))
        if activations and activations[0] == "BiasAdd":
            bias = self.const(node.name + "/bias", self.float_const(args[0]))
            args, activations = args[1:], activations[1:]
            name = node.name if not activations else node.name + "/bias_add"
            result = _Value(self.node("Add", [result.name, bias], name), result.shape)
        return self._fused_activation(node, result, activations, args)

    def _op_MatMul(self, node):
        return self._matmul(node, [])

    def _op_FusedMatMul(self, node):
        return self._matmul(node, _attr_strings(node, "fused_ops"))

    def _op_BiasAdd(self, node):
        return self._binary(node, "Add")

    def _op_PRelu(self, node):  # from fold_prelu
        x = self.value(node.inputs[0])
        alpha = self.layout_const(self.float_const(node.inputs[1]), x, node.name + "/alpha")
        return _Value(self.node("PRelu", [x.name, alpha], node.name), x.shape, x.nchw)


# --- building descriptors ----------------------------------------------------------------------


def _placeholder_shape(node: TfjsNode) -> tuple:
    dims = node.attr.get("shape", {}).get("shape", {}).get("dim", [])
    return tuple(None if int(d.get("size", -1)) == -1 else int(d["size"]) for d in dims)


def _prologue(builder: _Converter, size: int, normalisation: Normalisation) -> str:
    """uint8 NHWC RGB ``chip`` -> float32 NCHW, normalised for the network."""
    x = builder.node("Cast", [INPUT_NAME], "preprocess/to_float", to=TensorProto.FLOAT)
    if normalisation.colour == "BGR":
        order = builder.const("preprocess/bgr_order", np.array([2, 1, 0], np.int64))
        x = builder.node("Gather", [x, order], "preprocess/rgb_to_bgr", axis=3)
    mean = np.broadcast_to(np.asarray(normalisation.mean, np.float32), (3,))
    if np.any(mean != 0):
        x = builder.node("Sub", [x, builder.const("preprocess/mean", mean.copy())],
                         "preprocess/sub_mean")
    if normalisation.scale != 1.0:
        scale = builder.const("preprocess/scale", np.array(normalisation.scale, np.float32))
        x = builder.node("Mul", [x, scale], "preprocess/scale_mul")
    return builder.node("Transpose", [x], "preprocess/to_nchw", perm=list(_NHWC_TO_NCHW))


def _l2_normalise(builder: _Converter, x: str, output: str) -> None:
    squares = builder.node("ReduceSumSquare", [x], "l2norm/sum_squares", axes=[1], keepdims=1)
    floor = builder.const("l2norm/epsilon", np.array(L2_EPSILON, np.float32))
    clipped = builder.node("Max", [squares, floor], "l2norm/floor")
    norm = builder.node("Sqrt", [clipped], "l2norm/norm")
    builder.nodes.append(helper.make_node("Div", [x, norm], [output], name="l2norm/divide"))


def _finish(builder: _Converter, name: str, size: int, dims: int, doc: str,
            props: dict[str, str]) -> onnx.ModelProto:
    graph = helper.make_graph(
        builder.nodes, name,
        inputs=[helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8,
                                              [BATCH_DIM, size, size, 3])],
        outputs=[helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, dims])],
        initializer=builder.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET_VERSION)],
                              producer_name="facegate")
    model.ir_version = IR_VERSION
    model.doc_string = doc
    helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    return model


def convert_tfjs(graph: TfjsGraph, output: str, normalisation: Normalisation = Normalisation(),
                 l2_normalise: bool = True, name: str | None = None,
                 prelu: bool = True) -> onnx.ModelProto:
    """Convert the part of `graph` that computes node `output` into a chip -> embedding graph.

    Args:
        graph: from `load_tfjs`; it must have one placeholder, [-1, S, S, 3].
        output: the node whose value is the descriptor ([N, D], or [N, 1, 1, D]).
        normalisation: applied to the uint8 RGB chip before the network.
        l2_normalise: divide the descriptor by its L2 norm.
        name: the ONNX graph name (default: the source file's stem).
        prelu: fold elementwise PReLUs into ``PRelu`` nodes (`fold_prelu`).

    Raises:
        UnsupportedOpError: an op on the path to `output` is not covered.
    """
    if prelu:
        graph = fold_prelu(graph)
    (placeholder,) = graph.placeholders
    shape = _placeholder_shape(placeholder)
    if len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2] or shape[1] is None:
        raise UnsupportedOpError(f"placeholder shape {shape}: expected [-1, S, S, 3]")
    size = shape[1]
    builder = _Converter(graph)
    builder.values[placeholder.name] = _Value(_prologue(builder, size, normalisation),
                                              (None, size, size, 3), nchw=True)
    result = builder.convert(output)
    if result.rank == 4 and result.shape[1:3] == (1, 1):
        flat = builder.node("Flatten", [result.name], "descriptor/flatten", axis=1)
        result = _Value(flat, (None, result.shape[3]))
    if result.rank != 2:
        raise UnsupportedOpError(f"{output}: descriptor of shape {result.shape}, expected [N, D]")
    if l2_normalise:
        _l2_normalise(builder, result.name, OUTPUT_NAME)
    else:
        builder.nodes.append(helper.make_node("Identity", [result.name], [OUTPUT_NAME],
                                              name="descriptor/output"))
    stem = Path(graph.source).stem
    return _finish(
        builder, name or stem, size, result.shape[1],
        f"{graph.source} (tfjs graph model, node {output}) converted by facegate tfjs_onnx",
        {"source_file": graph.source, "source_output": output,
         "normalisation": json.dumps(normalisation.__dict__)},
    )


def build_tfjs_descriptor(json_path: Path, output: str,
                          normalisation: Normalisation = Normalisation(),
                          l2_normalise: bool = True) -> onnx.ModelProto:
    """`load_tfjs` then `convert_tfjs`."""
    return convert_tfjs(load_tfjs(json_path), output, normalisation, l2_normalise)


# --- measured recipes -------------------------------------------------------------------------

ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
     [70.7299, 92.2041]], dtype=np.float64)
"""The standard ArcFace 5-point template in 112x112 chip pixels (right eye, left eye, nose,
right and left mouth corner; "right" = the person's right), scaled by S/112 for an S chip."""


@dataclass(frozen=True)
class DescriptorRecipe:
    """How to feed one descriptor, as measured on labelled pairs (not stated in the files).

    Attributes:
        json_name: the tfjs ``X.json`` in ``human_models_3.0.4`` (None: the shared MobileFaceNet).
        output: the descriptor node.
        normalisation: applied in the graph to the uint8 RGB chip.
        chip_size: S; the chip is a least-squares similarity warp (bilinear, black border) of
            YuNet's 5 landmarks onto ``ARCFACE_TEMPLATE_112 * S / 112``.
        dims: descriptor length.
        note: what the measurement found.
    """

    json_name: str | None
    output: str
    normalisation: Normalisation
    chip_size: int
    dims: int
    note: str


RECIPES = {
    "mobilefacenet_128d": DescriptorRecipe(
        None, "output", Normalisation("RGB", (127.5, 127.5, 127.5), 1.0 / 128.0), 112, 128,
        "the MANIFEST's recipe confirmed: BGR costs 1.7 points of TAR@1e-3 on LFW and 3.5 on "
        "the other sources, the dlib-like template drops it to 40%; the mirror average adds "
        "0.1-0.5; a tighter or looser template (scale 1.1 / 0.9) is worse"),
    "faceres": DescriptorRecipe(
        "faceres.json", "global_pooling/Mean",
        Normalisation("BGR", (103.939, 116.779, 123.68), 1.0), 224, 1024,
        "Keras 'caffe' preprocessing (BGR, minus the ImageNet means, no scaling) is the only "
        "working one (raw RGB -16 points, [0,1] or [-1,1] collapse); ArcFace template at scale 1 "
        "beats 0.85/0.7/1.15 and the dlib-like one; subtracting the mean descriptor helps"),
    "mobileface": DescriptorRecipe(
        "mobileface.json", "batchnorm0/add_1", Normalisation("RGB"), 112, 256,
        "the graph normalises itself ((x - 127.5) / 128); RGB beats BGR; weak on every template"),
    "mobilefacenet": DescriptorRecipe(
        "mobilefacenet.json", "embeddings", Normalisation("RGB", (127.5,) * 3, 1.0 / 128.0),
        112, 192,
        "degenerate as shipped: different people have cosine > 0.99 for every input scaling "
        "and colour order tried, in TensorFlow as here; not usable"),
}


# --- the shared MobileFaceNet ONNX file --------------------------------------------------------

MOBILEFACENET_NORMALISATION = Normalisation("RGB", (127.5, 127.5, 127.5), 1.0 / 128.0)
"""The shared ``mobilefacenet_128d/mobilefacenet.onnx``: RGB, (x - 127.5) / 128 (its MANIFEST)."""


def make_mobilefacenet_batchable(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the shared MobileFaceNet whose batch dimension is symbolic.

    The file was exported with batch 1: its input and output say 1, and its one Reshape (the
    flatten before the embedding) targets the literal shape [1, -1]. That 1 becomes 0 ("copy the
    input's dimension"), which leaves the per-image arithmetic untouched.

    Raises:
        ValueError: the graph is not shaped like that file.
    """
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    graph = edited.graph
    initializers = {init.name: init for init in graph.initializer}
    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    reshapes = [n for n in graph.node if n.op_type == "Reshape"]
    if len(reshapes) != 1:
        raise ValueError(f"expected one Reshape node, found {len(reshapes)}")
    target_name = reshapes[0].input[1]
    if target_name in initializers:
        target = numpy_helper.to_array(initializers[target_name]).copy()
    elif target_name in constants:
        target = numpy_helper.to_array(constants[target_name].attribute[0].t).copy()
    else:
        raise ValueError("the Reshape target is not a constant")
    if target.tolist() != [1, -1]:
        raise ValueError(f"Reshape target {target.tolist()}, expected [1, -1]")
    target[0] = 0
    replacement = numpy_helper.from_array(target, target_name)
    if target_name in initializers:
        initializers[target_name].CopyFrom(replacement)
    else:
        constants[target_name].attribute[0].t.CopyFrom(replacement)
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if not dims or dims[0].dim_value not in (0, 1):
            raise ValueError(f"{value.name}: no batch of 1 to free")
        dims[0].Clear()
        dims[0].dim_param = BATCH_DIM
    del graph.value_info[:]
    onnx.checker.check_model(edited)
    return edited


def build_mobilefacenet_onnx(onnx_path: Path,
                             normalisation: Normalisation = MOBILEFACENET_NORMALISATION
                             ) -> onnx.ModelProto:
    """The shared MobileFaceNet as a served descriptor: uint8 NHWC RGB chip in, unit vector out."""
    onnx_path = Path(onnx_path)
    inner = make_mobilefacenet_batchable(onnx.load(str(onnx_path)))
    (old_input,) = [v for v in inner.graph.input
                    if v.name not in {i.name for i in inner.graph.initializer}]
    (old_output,) = inner.graph.output
    size = old_input.type.tensor_type.shape.dim[2].dim_value
    dims = old_output.type.tensor_type.shape.dim[1].dim_value
    builder = _Converter(TfjsGraph({}, {}, onnx_path.name), prefix="facegate/")
    builder._names.update(n for node in inner.graph.node for n in node.output)
    builder._names.update(i.name for i in inner.graph.initializer)
    prologue_out = _prologue(builder, size, normalisation)
    builder.nodes.append(helper.make_node("Identity", [prologue_out], [old_input.name],
                                          name="facegate/bind_input"))
    builder.nodes.extend(inner.graph.node)
    builder.initializers.extend(inner.graph.initializer)
    _l2_normalise(builder, old_output.name, OUTPUT_NAME)
    # The file is opset 11; the added nodes (Cast, Sub, Mul, Transpose, ReduceSumSquare with an
    # axes attribute, Max, Sqrt, Div) are valid there, so its opset is kept.
    graph = helper.make_graph(
        builder.nodes, "mobilefacenet_128d",
        inputs=[helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8,
                                              [BATCH_DIM, size, size, 3])],
        outputs=[helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, dims])],
        initializer=builder.initializers,
    )
    model = helper.make_model(graph, opset_imports=list(inner.opset_import),
                              producer_name="facegate")
    model.ir_version = IR_VERSION
    model.doc_string = f"{onnx_path.name} with a dynamic batch, uint8 NHWC input, L2 norm"
    helper.set_model_props(model, {"source_file": onnx_path.name,
                                   "normalisation": json.dumps(normalisation.__dict__)})
    onnx.checker.check_model(model, full_check=True)
    return model


# --- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ops = commands.add_parser("ops", help="list the ops of a tfjs graph model")
    ops.add_argument("json", type=Path, nargs="+")
    convert = commands.add_parser("convert", help="write an ONNX descriptor")
    convert.add_argument("json", type=Path)
    convert.add_argument("out", type=Path)
    convert.add_argument("--output", required=True, help="the descriptor node")
    convert.add_argument("--colour", default="RGB", choices=("RGB", "BGR"))
    convert.add_argument("--mean", type=float, nargs="+", default=[0.0])
    convert.add_argument("--scale", type=float, default=1.0)
    convert.add_argument("--no-l2", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "ops":
        for path in args.json:
            graph = load_tfjs(path)
            print(f"{path}: {len(graph.nodes)} nodes, {len(graph.weights)} weights")
            for op, count in graph.op_counts().items():
                print(f"  {op:32s} {count}")
        return 0
    mean = tuple(args.mean) if len(args.mean) == 3 else (args.mean[0],) * 3
    model = build_tfjs_descriptor(args.json, args.output,
                                  Normalisation(args.colour, mean, args.scale), not args.no_l2)
    args.out.write_bytes(model.SerializeToString())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
