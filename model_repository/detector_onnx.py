"""YuNet 2023mar made batchable, with OpenCV FaceDetectorYN's anchor decoding in the graph.

The published graph has a fixed batch of 1: its input says so and its twelve Reshape nodes carry
a literal 1 as the first target dimension. `make_batch_dynamic` turns the input's batch into a
symbolic dimension and each of those 1s into 0 ("copy the input's dimension"), which leaves the
per-image arithmetic untouched. `build_detector_onnx` then adds a uint8 NHWC input and the decode
of `modules/objdetect/src/face_detect.cpp` (priors, exp of the box size, sqrt(cls * obj)), so
Triton returns one [N, anchors, 15] tensor instead of twelve and the client keeps only NMS.
The same weights are built at two input sizes (`specs.DETECTORS`): only the anchor table differs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from model_repository.specs import FACE_DETECTOR, ModelSpec, candidates_kept

LOGGER = logging.getLogger(__name__)

STRIDES = (8, 16, 32)
RAW_OUTPUTS = tuple(f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in STRIDES)


def make_batch_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy of YuNet whose batch dimension is symbolic.

    Args:
        model: the original YuNet graph (input ``input`` [1, 3, 640, 640]).

    Returns:
        The same graph with input and outputs of shape [batch, ...].

    Raises:
        ValueError: the graph is not shaped like YuNet 2023mar.
    """
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    graph = edited.graph
    initializers = {init.name: init for init in graph.initializer}
    reshapes = [node for node in graph.node if node.op_type == "Reshape"]
    shape_names = {node.input[1] for node in reshapes}
    if len(reshapes) != len(RAW_OUTPUTS) or not shape_names <= initializers.keys():
        raise ValueError(
            "not a YuNet 2023mar graph: expected 12 Reshape nodes with constant shapes")
    for name in shape_names:
        shape = numpy_helper.to_array(initializers[name]).copy()
        if shape[0] != 1:
            raise ValueError(f"Reshape target {name} = {shape.tolist()} has no literal batch of 1")
        shape[0] = 0
        initializers[name].CopyFrom(numpy_helper.from_array(shape, name))
    for value in list(graph.input) + list(graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del graph.value_info[:]
    onnx.checker.check_model(edited)
    return edited


def _anchor_table(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per anchor, its grid cell (column, row) and its stride, in the order YuNet emits them."""
    cells, strides = [], []
    for stride in STRIDES:
        side = size // stride
        rows, cols = np.mgrid[0:side, 0:side]
        cells.append(np.stack([cols.ravel(), rows.ravel()], axis=1))
        strides.append(np.full((side * side, 1), stride))
    return (
        np.concatenate(cells).astype(np.float32),
        np.concatenate(strides).astype(np.float32),
    )


def _decode_nodes(size: int) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes that turn the twelve raw outputs into ``detections`` [N, anchors, 15]."""
    cells, strides = _anchor_table(size)
    consts = [
        numpy_helper.from_array(cells, "anchor_cells"),
        numpy_helper.from_array(strides, "anchor_strides"),
        numpy_helper.from_array(np.tile(cells, (1, 5)), "anchor_cells_x5"),
        numpy_helper.from_array(np.float32(0.0), "zero"),
        numpy_helper.from_array(np.float32(1.0), "one"),
        numpy_helper.from_array(np.float32(0.5), "half"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "index_0"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "index_2"),
        numpy_helper.from_array(np.array([4], dtype=np.int64), "index_4"),
    ]
    node = helper.make_node
    nodes = []
    for kind in ("cls", "obj", "bbox", "kps"):
        nodes.append(
            node("Concat", [f"{kind}_{s}" for s in STRIDES], [f"{kind}_all"], axis=1,
                 name=f"decode_concat_{kind}")
        )
    nodes += [
        node("Clip", ["cls_all", "zero", "one"], ["cls_clipped"], name="decode_clip_cls"),
        node("Clip", ["obj_all", "zero", "one"], ["obj_clipped"], name="decode_clip_obj"),
        node("Mul", ["cls_clipped", "obj_clipped"], ["cls_obj"], name="decode_cls_obj"),
        node("Sqrt", ["cls_obj"], ["score"], name="decode_score"),
        node("Slice", ["bbox_all", "index_0", "index_2", "index_2"], ["bbox_xy"],
             name="decode_bbox_xy"),
        node("Slice", ["bbox_all", "index_2", "index_4", "index_2"], ["bbox_wh"],
             name="decode_bbox_wh"),
        node("Add", ["bbox_xy", "anchor_cells"], ["center_cells"], name="decode_center_cells"),
        node("Mul", ["center_cells", "anchor_strides"], ["center"], name="decode_center"),
        node("Exp", ["bbox_wh"], ["size_cells"], name="decode_size_exp"),
        node("Mul", ["size_cells", "anchor_strides"], ["size"], name="decode_size"),
        node("Mul", ["size", "half"], ["half_size"], name="decode_half_size"),
        node("Sub", ["center", "half_size"], ["top_left"], name="decode_top_left"),
        node("Add", ["kps_all", "anchor_cells_x5"], ["kps_cells"], name="decode_kps_cells"),
        node("Mul", ["kps_cells", "anchor_strides"], ["landmarks"], name="decode_landmarks"),
        node("Concat", ["top_left", "size", "landmarks", "score"], ["anchors_decoded"], axis=2,
             name="decode_anchors"),
    ]
    top_nodes, top_consts = _top_k_nodes(candidates_kept(size))
    return nodes + top_nodes, consts + top_consts


def _top_k_nodes(k: int) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Keep the `k` best-scoring anchors, best first: what crosses the process boundary is
    [N, k, 15] instead of every anchor (8400 at 640 px, 504 KB per image)."""
    consts = [
        numpy_helper.from_array(np.array([k], dtype=np.int64), "top_k"),
        numpy_helper.from_array(np.array(14, dtype=np.int64), "score_column"),
        numpy_helper.from_array(np.array([1, 1, 15], dtype=np.int64), "row_repeats"),
    ]
    node = helper.make_node
    nodes = [
        node("Gather", ["anchors_decoded", "score_column"], ["anchor_scores"], axis=2,
             name="top_scores"),
        node("TopK", ["anchor_scores", "top_k"], ["top_values", "top_indices"], axis=1,
             largest=1, sorted=1, name="top_k"),
        node("Unsqueeze", ["top_indices"], ["top_indices_3d"], axes=[2], name="top_unsqueeze"),
        node("Tile", ["top_indices_3d", "row_repeats"], ["top_rows"], name="top_tile"),
        node("GatherElements", ["anchors_decoded", "top_rows"], ["detections"], axis=1,
             name="top_gather"),
    ]
    return nodes, consts


def build_detector_onnx(yunet_path: Path, spec: ModelSpec = FACE_DETECTOR) -> onnx.ModelProto:
    """Build a served detector: uint8 NHWC in, decoded anchors out.

    Args:
        yunet_path: the original YuNet 2023mar ONNX file.
        spec: which detector (its input size decides the anchor table).

    Returns:
        The graph described by `spec`.
    """
    original = onnx.load(str(yunet_path))
    model = make_batch_dynamic(original)
    graph = model.graph
    (image_in,) = spec.inputs
    (detections_out,) = spec.outputs

    old_input = graph.input[0].name
    prologue = [
        helper.make_node("Cast", [image_in.name], ["image_float"], to=onnx.TensorProto.FLOAT,
                         name="prologue_cast"),
        helper.make_node("Transpose", ["image_float"], [old_input], perm=[0, 3, 1, 2],
                         name="prologue_nhwc_to_nchw"),
    ]
    decode, consts = _decode_nodes(image_in.dims[0])
    nodes = prologue + list(graph.node) + decode

    new_graph = helper.make_graph(
        nodes,
        spec.name,
        inputs=[helper.make_tensor_value_info(
            image_in.name, onnx.TensorProto.UINT8, ["batch", *image_in.dims])],
        outputs=[helper.make_tensor_value_info(
            detections_out.name, onnx.TensorProto.FLOAT, ["batch", *detections_out.dims])],
        initializer=list(graph.initializer) + consts,
    )
    built = helper.make_model(
        new_graph,
        opset_imports=list(original.opset_import),
        producer_name="facegate-model-builder",
        doc_string=spec.description,
    )
    built.ir_version = original.ir_version
    onnx.checker.check_model(built)
    return built
