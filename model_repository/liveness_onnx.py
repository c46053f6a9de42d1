"""One ONNX graph for the silent-liveness pair of Silent-Face-Anti-Spoofing (minivision-ai).

Two MiniFASNet classifiers look at the same face at two zooms: MiniFASNetV2 at a crop of
2.7x the face box, MiniFASNetV1SE (the same network with squeeze-excitation in the last
block of each residual stage) at 4.0x. Each outputs 3 logits (class 1 = real face); like the
upstream predictor, the graph averages the two softmaxes.

Graph contract:

* inputs `crop_v2`, `crop_v1se`: uint8 [batch, 80, 80, 3], BGR, HWC as OpenCV gives it (the
  networks were trained on raw 0..255 values, so there is no scaling);
* output `p_real`: float32 [batch, 1] = (softmax(V2)[1] + softmax(V1SE)[1]) / 2;
* output `probs`: float32 [batch, 2, 3], the softmax of V2 (row 0) and of V1SE (row 1).

The architecture is rebuilt from the state dict (channel counts, residual block counts and
SE modules are read off the tensor names and shapes), with every BatchNorm folded into the
convolution or matrix product before it; dropout is the identity at inference.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model_repository.specs import FACE_LIVENESS, LIVENESS_CROP_SIZE
from model_repository.torch_weights import load_state_dict
from model_repository.weights import sha256_of

LOGGER = logging.getLogger(__name__)

CROP_V2, CROP_V1SE = (t.name for t in FACE_LIVENESS.inputs)
P_REAL, PROBS = (t.name for t in FACE_LIVENESS.outputs)
NUM_CLASSES = 3
REAL_CLASS = 1
OPSET = 17
IR_VERSION = 8
BN_EPS = 1e-5

_BATCH = "batch"
_IGNORED_SUFFIX = ".num_batches_tracked"
_TRAINING_ONLY_PREFIX = "FTGenerator."
_DOWNSAMPLING_BLOCKS = ("conv_23", "conv_34", "conv_45")
_RESIDUAL_STAGES = ("conv_3", "conv_4", "conv_5")


class _NetworkBuilder:
    """Adds one MiniFASNet, read from its state dict, to a shared list of nodes."""

    def __init__(self, scope: str, weights: dict[str, np.ndarray], source: str) -> None:
        self.scope = scope
        self.source = source
        self.weights = {k.removeprefix("module."): v for k, v in weights.items()}
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.channels: dict[str, int] = {}

    def take(self, key: str) -> np.ndarray:
        if key not in self.weights:
            raise ValueError(f"{self.source}: missing tensor {key!r} for MiniFASNet")
        self.used.add(key)
        return self.weights[key].astype(np.float64)

    def const(self, key: str, array: np.ndarray) -> str:
        name = f"{self.scope}/{key}"
        self.initializers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], key: str, **attrs: object) -> str:
        name = f"{self.scope}/{key}"
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        if inputs[0] in self.channels:
            self.channels[name] = self.channels[inputs[0]]
        return name

    def folded_bn(self, bn: str) -> tuple[np.ndarray, np.ndarray]:
        scale = self.take(f"{bn}.weight") / np.sqrt(self.take(f"{bn}.running_var") + BN_EPS)
        shift = self.take(f"{bn}.bias") - self.take(f"{bn}.running_mean") * scale
        return scale, shift

    def conv_bn(self, x: str, conv: str, bn: str, stride: int = 1, pad: int | None = None) -> str:
        weight = self.take(f"{conv}.weight")
        out_channels, group_width, kernel, _ = weight.shape
        groups, remainder = divmod(self.channels[x], group_width)
        if remainder:
            raise ValueError(f"{self.source}: {conv} expects {group_width}-channel groups")
        scale, shift = self.folded_bn(bn)
        pad = (kernel - 1) // 2 if pad is None else pad
        y = self.node(
            "Conv",
            [
                x,
                self.const(f"{conv}.weight", weight * scale[:, None, None, None]),
                self.const(f"{conv}.bias", shift),
            ],
            conv,
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[pad] * 4,
            group=groups,
        )
        self.channels[y] = out_channels
        return y

    def conv_block(self, x: str, module: str, stride: int = 1) -> str:
        y = self.conv_bn(x, f"{module}.conv", f"{module}.bn", stride)
        slope = self.const(
            f"{module}.prelu.weight", self.take(f"{module}.prelu.weight").reshape(-1, 1, 1)
        )
        return self.node("PRelu", [y, slope], f"{module}.prelu")

    def squeeze_excitation(self, x: str, module: str) -> str:
        pooled = self.node("GlobalAveragePool", [x], f"{module}.avg_pool")
        hidden = self.conv_bn(pooled, f"{module}.fc1", f"{module}.bn1")
        hidden = self.node("Relu", [hidden], f"{module}.relu")
        gate = self.node(
            "Sigmoid", [self.conv_bn(hidden, f"{module}.fc2", f"{module}.bn2")], f"{module}.sigmoid"
        )
        return self.node("Mul", [x, gate], f"{module}.scale")

    def depth_wise(self, x: str, module: str, stride: int, residual: bool) -> str:
        y = self.conv_block(x, f"{module}.conv")
        y = self.conv_block(y, f"{module}.conv_dw", stride)
        y = self.conv_bn(y, f"{module}.project.conv", f"{module}.project.bn")
        if f"{module}.se_module.fc1.weight" in self.weights:
            y = self.squeeze_excitation(y, f"{module}.se_module")
        if residual:
            y = self.node("Add", [x, y], f"{module}.residual")
        return y

    def residual_stage(self, x: str, stage: str) -> str:
        index = 0
        while f"{stage}.model.{index}.conv.conv.weight" in self.weights:
            x = self.depth_wise(x, f"{stage}.model.{index}", stride=1, residual=True)
            index += 1
        if index == 0:
            raise ValueError(f"{self.source}: residual stage {stage} has no blocks")
        return x

    def head(self, x: str) -> str:
        kernel = self.take("conv_6_dw.conv.weight").shape[-1]
        if kernel != LIVENESS_CROP_SIZE // 16:
            raise ValueError(f"{self.source}: conv_6_dw kernel {kernel} does not fit "
                             f"{LIVENESS_CROP_SIZE}px")
        x = self.conv_bn(x, "conv_6_dw.conv", "conv_6_dw.bn", pad=0)
        x = self.node("Flatten", [x], "conv_6_flatten", axis=1)
        scale, shift = self.folded_bn("bn")
        embedding = self.take("linear.weight") * scale[:, None]
        x = self.node(
            "Gemm",
            [x, self.const("linear.weight", embedding), self.const("linear.bias", shift)],
            "linear",
            transB=1,
        )
        prob = self.take("prob.weight")
        if prob.shape[0] != NUM_CLASSES:
            raise ValueError(f"{self.source}: {prob.shape[0]} classes, expected {NUM_CLASSES}")
        x = self.node("Gemm", [x, self.const("prob.weight", prob)], "prob", transB=1)
        return self.node("Softmax", [x], "softmax", axis=1)

    def build(self, crop: str) -> str:
        """Adds the nodes from a uint8 NHWC crop to the [batch, 3] softmax; returns its name."""
        x = self.node("Cast", [crop], "input.cast", to=TensorProto.FLOAT)
        x = self.node("Transpose", [x], "input.nchw", perm=[0, 3, 1, 2])
        self.channels[x] = 3
        x = self.conv_block(x, "conv1", stride=2)
        x = self.conv_block(x, "conv2_dw")
        for block, stage in zip(_DOWNSAMPLING_BLOCKS, _RESIDUAL_STAGES, strict=True):
            x = self.depth_wise(x, block, stride=2, residual=False)
            x = self.residual_stage(x, stage)
        x = self.conv_block(x, "conv_6_sep")
        probs = self.head(x)
        unused = sorted(
            k
            for k in self.weights.keys() - self.used
            if not k.endswith(_IGNORED_SUFFIX) and not k.startswith(_TRAINING_ONLY_PREFIX)
        )
        if unused:
            raise ValueError(f"{self.source}: tensors not used by MiniFASNet: {unused[:5]}")
        return probs



def _fusion(softmaxes: list[str]) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Stacks the [batch, 3] softmaxes into `probs` and averages their real class: `p_real`."""
    constants = [
        numpy_helper.from_array(np.array([1], np.int64), "axes_1"),
        numpy_helper.from_array(np.array(REAL_CLASS, np.int64), "real_class"),
    ]
    rows = [f"{s}.row" for s in softmaxes]
    nodes = [
        *(
            helper.make_node("Unsqueeze", [s, "axes_1"], [r], name=r)
            for s, r in zip(softmaxes, rows, strict=True)
        ),
        helper.make_node("Concat", rows, [PROBS], name=PROBS, axis=1),
        helper.make_node(
            "Gather", [PROBS, "real_class"], ["probs.real"], name="probs.real", axis=2
        ),
        helper.make_node(
            "ReduceMean", ["probs.real"], [P_REAL], name=P_REAL, axes=[1], keepdims=1
        ),
    ]
    return nodes, constants


def build_liveness_onnx(v2_path: Path, v1se_path: Path) -> onnx.ModelProto:
    """Builds the two-network liveness graph from the upstream `.pth` state dicts.

    Args:
        v2_path: `2.7_80x80_MiniFASNetV2.pth` (applied to the 2.7x crop).
        v1se_path: `4_0_0_80x80_MiniFASNetV1SE.pth` (applied to the 4.0x crop).

    Returns:
        A checked model (opset 17, IR version 8) with inputs `crop_v2` and `crop_v1se`
        (uint8 [batch, 80, 80, 3] BGR) and outputs `p_real` (float32 [batch, 1]) and `probs`
        (float32 [batch, 2, 3]). The same files always give the same serialized bytes.

    Raises:
        TorchWeightsError: a weight file cannot be read.
        ValueError: a state dict does not describe an 80x80, 3-class MiniFASNet.
    """
    v2_path, v1se_path = Path(v2_path), Path(v1se_path)
    networks = [
        _NetworkBuilder("v2", load_state_dict(v2_path), v2_path.name),
        _NetworkBuilder("v1se", load_state_dict(v1se_path), v1se_path.name),
    ]
    crops = [CROP_V2, CROP_V1SE]
    softmaxes = [net.build(crop) for net, crop in zip(networks, crops, strict=True)]
    fusion_nodes, fusion_constants = _fusion(softmaxes)
    crop_shape = [_BATCH, LIVENESS_CROP_SIZE, LIVENESS_CROP_SIZE, 3]
    graph = helper.make_graph(
        [node for net in networks for node in net.nodes] + fusion_nodes,
        "facegate_liveness_minifasnet",
        [helper.make_tensor_value_info(c, TensorProto.UINT8, crop_shape) for c in crops],
        [
            helper.make_tensor_value_info(P_REAL, TensorProto.FLOAT, [_BATCH, 1]),
            helper.make_tensor_value_info(
                PROBS, TensorProto.FLOAT, [_BATCH, len(networks), NUM_CLASSES]
            ),
        ],
        [init for net in networks for init in net.initializers] + fusion_constants,
        doc_string="Silent-Face-Anti-Spoofing MiniFASNetV2 (2.7x crop) + MiniFASNetV1SE "
        "(4.0x crop); p_real = mean of the two softmax probabilities of class 1 (real).",
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="facegate"
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(
        model,
        {
            "source_v2": f"{v2_path.name} sha256={sha256_of(v2_path)}",
            "source_v1se": f"{v1se_path.name} sha256={sha256_of(v1se_path)}",
            "upstream": "minivision-ai/Silent-Face-Anti-Spoofing (Apache-2.0)",
        },
    )
    onnx.checker.check_model(model, full_check=True)
    LOGGER.info("built liveness graph: %d nodes", len(graph.node))
    return model
