"""The batchable YuNet graph computes what the published one does, image by image."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from model_repository.detector_onnx import build_detector_onnx, make_batch_dynamic
from model_repository.specs import FACE_DETECTOR
from preprocessing.detection import faces_from_detections, letterbox

PHOTOS = ["multi/compreface_000_5.jpg", "multi/facerec_two_people.jpg",
          "faces/Eric_Daze/Eric_Daze_0001.jpg", "noface/dlib_eagle.jpg"]


@pytest.fixture(scope="module")
def yunet_path(weights_dir: Path) -> Path:
    return weights_dir / FACE_DETECTOR.weights[0].name


@pytest.fixture(scope="module")
def batch(data_dir: Path) -> list:
    return [letterbox(cv2.imread(str(data_dir / name))) for name in PHOTOS]


def test_batch_dynamic_yunet_equals_original_batch_1_image_by_image(yunet_path, batch):
    original = ort.InferenceSession(str(yunet_path))
    batched = ort.InferenceSession(
        make_batch_dynamic(onnx.load(str(yunet_path))).SerializeToString())
    nchw = np.stack([b.image for b in batch]).transpose(0, 3, 1, 2).astype(np.float32)
    batched_out = batched.run(None, {"input": nchw})
    for index in range(len(batch)):
        single_out = original.run(None, {"input": nchw[index:index + 1]})
        for single, together in zip(single_out, batched_out, strict=True):
            np.testing.assert_array_equal(single, together[index:index + 1])


def test_detector_graph_finds_the_faces_opencv_facedetectoryn_finds(yunet_path, batch):
    session = ort.InferenceSession(build_detector_onnx(yunet_path).SerializeToString())
    detections = session.run(None, {"image": np.stack([b.image for b in batch])})[0]
    reference = cv2.FaceDetectorYN.create(str(yunet_path), "", (640, 640), 0.6, 0.3, 5000)
    for index, boxed in enumerate(batch):
        ours = faces_from_detections(detections[index])
        _, theirs = reference.detect(boxed.image)
        theirs = np.zeros((0, 15)) if theirs is None else theirs[np.argsort(-theirs[:, 14])]
        assert len(ours) == len(theirs), PHOTOS[index]
        for face, row in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(face.box, row[:4], atol=1e-3)
            np.testing.assert_allclose(face.landmarks.ravel(), row[4:14], atol=1e-3)
            assert face.score == pytest.approx(row[14], abs=1e-5)


def test_make_batch_dynamic_rejects_a_graph_that_is_not_yunet(yunet_path):
    model = onnx.load(str(yunet_path))
    reshape = next(n for n in model.graph.node if n.op_type == "Reshape")
    model.graph.node.remove(reshape)
    with pytest.raises(ValueError, match="not a YuNet 2023mar graph"):
        make_batch_dynamic(model)


def test_letterbox_maps_detections_back_to_photo_coordinates(data_dir):
    photo = cv2.imread(str(data_dir / "multi/deepface_couple.jpg"))
    boxed = letterbox(photo)
    assert boxed.image.shape == (640, 640, 3)
    assert boxed.scale == pytest.approx(640 / max(photo.shape[:2]))
    fake = np.zeros((1, 15), dtype=np.float32)
    fake[0, :4] = [64, 32, 128, 128]
    fake[0, 14] = 0.9
    (face,) = faces_from_detections(fake, boxed.scale)
    assert face.box == pytest.approx(tuple(v / boxed.scale for v in (64, 32, 128, 128)), rel=1e-5)


@pytest.mark.parametrize("shape", [(250, 250), (180, 250), (2000, 1500), (700, 640), (31, 900)])
def test_letterbox_scales_into_the_top_left_and_pads_black(shape):
    """The photo scaled to fit (shrunk by area, grown linearly) at the top left, zeros
    elsewhere, whatever the photo's orientation (the scaled rows are a strided view)."""
    rng = np.random.default_rng(0)
    photo = rng.integers(1, 256, (*shape, 3), dtype=np.uint8)
    boxed = letterbox(photo)
    scale = 640 / max(shape)
    new_w, new_h = min(640, round(shape[1] * scale)), min(640, round(shape[0] * scale))
    expected = cv2.resize(photo, (new_w, new_h),
                          interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    assert np.array_equal(boxed.image[:new_h, :new_w], expected)
    assert not boxed.image[new_h:].any() and not boxed.image[:, new_w:].any()
