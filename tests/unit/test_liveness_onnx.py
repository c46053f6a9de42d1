"""The liveness ONNX graph and the torch-free weight reader, checked against torch's outputs.

The reference (tests/fixtures/liveness_reference.npz) comes from an independent torch
implementation, tests/tools/make_liveness_reference.py. The weights are looked up under
FACEGATE_WEIGHTS (default: ../shared/models next to the repository), the photos under
../shared/data (tests/conftest.py).
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from model_repository.liveness_onnx import build_liveness_onnx
from model_repository.torch_weights import TorchWeightsError, load_state_dict
from tests.conftest import DATA, WEIGHTS

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
V2_PATH = WEIGHTS / "minifasnet_silent_face" / "2.7_80x80_MiniFASNetV2.pth"
V1SE_PATH = WEIGHTS / "minifasnet_silent_face" / "4_0_0_80x80_MiniFASNetV1SE.pth"
with np.load(REPO / "tests" / "fixtures" / "liveness_reference.npz") as _fixture:
    REFERENCE = dict(_fixture)
CROP_SIZE = 80
PROBS_TOLERANCE = 1e-4

needs_weights = pytest.mark.skipif(
    not (V2_PATH.is_file() and V1SE_PATH.is_file()),
    reason=f"MiniFASNet .pth weights not found under {WEIGHTS} (set FACEGATE_WEIGHTS)",
)


@pytest.fixture(scope="module")
def model() -> onnx.ModelProto:
    return build_liveness_onnx(V2_PATH, V1SE_PATH)


@pytest.fixture(scope="module")
def session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _centre_crop(image: np.ndarray, fraction: float) -> np.ndarray:
    """The crop rule stored in the fixture (`crop_rule`)."""
    h, w = image.shape[:2]
    side = round(min(h, w) * fraction)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top : top + side, left : left + side]
    return cv2.resize(square, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)


def _photo_crops() -> tuple[np.ndarray, np.ndarray]:
    paths = [DATA / str(p) for p in REFERENCE["photos"]]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"reference photo {missing[0]} not found in the shared data")
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
    v2_fraction, v1se_fraction = REFERENCE["crop_fractions"]
    return (
        np.stack([_centre_crop(image, v2_fraction) for image in images]),
        np.stack([_centre_crop(image, v1se_fraction) for image in images]),
    )


def _random_crops() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(int(REFERENCE["random_seed"]))
    shape = (int(REFERENCE["random_crops"]), CROP_SIZE, CROP_SIZE, 3)
    crop_v2 = rng.integers(0, 256, shape, dtype=np.uint8)
    return crop_v2, rng.integers(0, 256, shape, dtype=np.uint8)


def _run(session: ort.InferenceSession, crop_v2: np.ndarray, crop_v1se: np.ndarray):
    return session.run(["p_real", "probs"], {"crop_v2": crop_v2, "crop_v1se": crop_v1se})


def _pixel_sums(crop_v2: np.ndarray, crop_v1se: np.ndarray) -> np.ndarray:
    return np.stack([crop_v2, crop_v1se], 1).reshape(len(crop_v2), 2, -1).sum(-1, dtype=np.int64)


def _assert_matches_reference(session, crop_v2: np.ndarray, crop_v1se: np.ndarray,
                              rows: slice) -> None:
    np.testing.assert_array_equal(
        _pixel_sums(crop_v2, crop_v1se),
        REFERENCE["crop_pixel_sums"][rows],
        err_msg="recomputed crops differ from the reference's (photo or JPEG decoder changed)",
    )
    p_real, probs = _run(session, crop_v2, crop_v1se)
    diff = np.abs(probs - REFERENCE["probs"][rows]).max()
    assert diff < PROBS_TOLERANCE, f"max |probs - torch| = {diff:.2e}"
    np.testing.assert_allclose(p_real, REFERENCE["p_real"][rows], atol=PROBS_TOLERANCE)


@needs_weights
def test_liveness_onnx_matches_torch_reference_on_real_crops(session) -> None:
    crop_v2, crop_v1se = _photo_crops()
    _assert_matches_reference(session, crop_v2, crop_v1se, slice(0, len(crop_v2)))


@needs_weights
def test_liveness_onnx_matches_torch_reference_on_random_crops(session) -> None:
    crop_v2, crop_v1se = _random_crops()
    _assert_matches_reference(session, crop_v2, crop_v1se, slice(len(REFERENCE["photos"]), None))


@needs_weights
def test_liveness_onnx_batch_gives_the_results_of_single_crops(session) -> None:
    rng = np.random.default_rng(7)
    crop_v2, crop_v1se = rng.integers(0, 256, (2, 9, CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    p_real, probs = _run(session, crop_v2, crop_v1se)
    assert p_real.shape == (9, 1) and probs.shape == (9, 2, 3)
    for i in range(len(crop_v2)):
        p_one, probs_one = _run(session, crop_v2[i : i + 1], crop_v1se[i : i + 1])
        np.testing.assert_allclose(probs_one[0], probs[i], atol=1e-6)
        np.testing.assert_allclose(p_one[0], p_real[i], atol=1e-6)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(p_real[:, 0], probs[:, :, 1].mean(1), atol=1e-6)


@needs_weights
def test_liveness_onnx_follows_graph_contract_with_deterministic_bytes(model) -> None:
    assert (model.ir_version, model.opset_import[0].version) == (8, 17)
    onnx.checker.check_model(model, full_check=True)

    def dims(value: onnx.ValueInfoProto) -> list:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    inputs = {v.name: (v.type.tensor_type.elem_type, dims(v)) for v in model.graph.input}
    outputs = {v.name: (v.type.tensor_type.elem_type, dims(v)) for v in model.graph.output}
    crop = (onnx.TensorProto.UINT8, ["batch", 80, 80, 3])
    assert inputs == {"crop_v2": crop, "crop_v1se": crop}
    assert outputs == {
        "p_real": (onnx.TensorProto.FLOAT, ["batch", 1]),
        "probs": (onnx.TensorProto.FLOAT, ["batch", 2, 3]),
    }
    assert all(node.name for node in model.graph.node)
    assert not any(node.op_type == "BatchNormalization" for node in model.graph.node)
    rebuilt = build_liveness_onnx(V2_PATH, V1SE_PATH)
    assert rebuilt.SerializeToString() == model.SerializeToString()


@needs_weights
def test_torch_weights_reads_legacy_pth_like_torch() -> None:
    state = load_state_dict(V2_PATH)
    assert len(state) == int(REFERENCE["v2_tensor_count"])
    for name, total, shape in zip(
        REFERENCE["v2_tensor_names"],
        REFERENCE["v2_tensor_sums"],
        REFERENCE["v2_tensor_shapes"],
        strict=True,
    ):
        assert str(state[str(name)].shape) == str(shape), name
        assert state[str(name)].sum(dtype=np.float64) == pytest.approx(total, rel=1e-9), name
    assert state["module.bn.num_batches_tracked"].dtype == np.int64
    assert all(name.startswith("module.") for name in state)


@pytest.mark.parametrize("container", ["tiny_zip", "tiny_legacy"])
def test_torch_weights_reads_views_and_dtypes_like_torch(container: str, tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    path.write_bytes(REFERENCE[container].tobytes())
    state = load_state_dict(path)
    expected = {k.removeprefix("tiny/"): REFERENCE[k] for k in REFERENCE if k.startswith("tiny/")}
    assert list(state) == list(expected)
    for name, array in expected.items():
        assert state[name].dtype == array.dtype, name
        np.testing.assert_array_equal(state[name], array, err_msg=name)


class _WritesFileWhenUnpickled:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def _legacy_file(state: object) -> bytes:
    header = [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}]
    return b"".join(pickle.dumps(obj, protocol=2) for obj in [*header, state, []])


def _zip_file(state: object) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(state, protocol=2))
    return buffer.getvalue()


@pytest.mark.parametrize("make_file", [_legacy_file, _zip_file], ids=["legacy", "zip"])
def test_torch_weights_refuses_unexpected_pickle_global(make_file, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(make_file(collections.OrderedDict(weight=_WritesFileWhenUnpickled(marker))))
    with pytest.raises(TorchWeightsError, match=r"refusing pickle global io\.open"):
        load_state_dict(path)
    assert not marker.exists()


@needs_weights
@pytest.mark.parametrize("keep", [10, 200, 30_000, 66_675, 1_000_000, -1])
def test_torch_weights_reports_truncated_file(keep: int, tmp_path: Path) -> None:
    path = tmp_path / "truncated.pth"
    path.write_bytes(V2_PATH.read_bytes()[:keep])
    with pytest.raises(TorchWeightsError, match=r"truncated\.pth: .*truncated"):
        load_state_dict(path)


def test_torch_weights_reports_file_that_is_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    path.write_bytes(_legacy_file([1, 2, 3]))
    with pytest.raises(TorchWeightsError, match="not a dict"):
        load_state_dict(path)
