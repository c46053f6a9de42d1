"""The detector served by Triton finds the faces a person would count, and none where there are
none."""

from __future__ import annotations

import asyncio
import re

import cv2
import numpy as np
import pytest

from frontend.service.faces import FacePipeline
from preprocessing.detection import (
    DETECTOR_SIZES,
    faces_from_detections,
    letterbox,
    nearest_to_centre,
)
from preprocessing.tracking import iou

# Ground truth: CompreFace's annotated counts (in the file name) and photos whose people are
# unambiguous (the MANIFEST's descriptions).
KNOWN_COUNTS = {
    "multi/facerec_two_people.jpg": 2,
    "multi/deepface_couple.jpg": 2,
    "multi/facerec_kit_with_rose.jpg": 2,
    "multi/opencv-dnn-demo_group.jpg": 3,
    "multi/dlib_Tom_Cruise_avp_2014_4.jpg": 1,
}
NO_FACE = ["noface/dlib_dog.jpg", "noface/dlib_eagle.jpg", "noface/dlib_horses.jpg",
           "noface/insightface_mask_white.jpg"]


def _read(data_dir, name: str) -> np.ndarray:
    return cv2.imread(str(data_dir / name))


def _compreface_counts(data_dir) -> dict[str, int]:
    counts = {}
    for path in sorted((data_dir / "multi").glob("compreface_*_*.jpg")):
        counts[f"multi/{path.name}"] = int(re.search(r"_(\d+)\.jpg$", path.name).group(1))
    return counts


async def test_detector_counts_the_faces_in_group_photos_with_known_counts(pipeline, data_dir):
    expected = {**_compreface_counts(data_dir), **KNOWN_COUNTS}
    found = await asyncio.gather(*(pipeline.detect(_read(data_dir, n)) for n in expected))
    assert {n: len(f) for n, f in zip(expected, found, strict=True)} == expected


async def test_detector_finds_no_face_in_photos_without_people(pipeline, data_dir):
    found = await asyncio.gather(*(pipeline.detect(_read(data_dir, n)) for n in NO_FACE))
    assert {n: len(f) for n, f in zip(NO_FACE, found, strict=True)} == dict.fromkeys(NO_FACE, 0)


async def test_detector_mistakes_one_dog_for_a_face_in_the_two_dogs_photo(pipeline, data_dir):
    """Documented false positive: YuNet scores one dog's head as a face (README, detector)."""
    faces = await pipeline.detect(_read(data_dir, "noface/dlib_dogs.jpg"))
    assert len(faces) == 1


async def test_detector_finds_the_face_at_the_centre_of_every_sampled_lfw_image(pipeline, data_dir):
    images = sorted((data_dir / "faces").glob("*/*_000[12].jpg"))[::4][:150]
    assert len(images) >= 100
    found = await asyncio.gather(*(pipeline.detect(cv2.imread(str(p))) for p in images))
    off_centre = []
    for path, faces in zip(images, found, strict=True):
        if not faces:
            off_centre.append((path.name, None))
            continue
        x, y, w, h = nearest_to_centre(faces, (250, 250)).box
        if not (x < 125 < x + w and y < 125 < y + h):
            off_centre.append((path.name, (x, y, w, h)))
    assert off_centre == []


@pytest.mark.parametrize("size", DETECTOR_SIZES)
async def test_batched_detector_call_equals_opencv_facedetectoryn_per_image(
    models, data_dir, weights_dir, size
):
    names = sorted(_compreface_counts(data_dir))[:4]
    boxed = [letterbox(_read(data_dir, n), size) for n in names]
    detections = await models.detect(np.stack([b.image for b in boxed]))
    reference = cv2.FaceDetectorYN.create(
        str(weights_dir / "yunet/face_detection_yunet_2023mar.onnx"), "", (size, size), 0.6, 0.3,
        5000,
    )
    for index, b in enumerate(boxed):
        ours = faces_from_detections(detections[index])
        theirs = reference.detect(b.image)[1]
        theirs = theirs[np.argsort(-theirs[:, 14])]
        assert len(ours) == len(theirs)
        np.testing.assert_allclose([f.box for f in ours], theirs[:, :4], atol=1e-3)
        assert [f.score for f in ours] == pytest.approx(theirs[:, 14].tolist(), abs=1e-5)


async def test_small_detector_finds_the_lfw_faces_the_640_detector_finds(models, data_dir):
    images = [cv2.imread(str(p)) for p in sorted((data_dir / "faces").glob("*/*_0001.jpg"))[:40]]
    both = FacePipeline(models, detector_sizes=DETECTOR_SIZES)
    large = FacePipeline(models)
    shifts = []
    for image in images:
        small_faces, large_faces = await both.detect(image), await large.detect(image)
        assert small_faces and large_faces
        a = nearest_to_centre(small_faces, image.shape)
        b = nearest_to_centre(large_faces, image.shape)
        assert iou(a.box, b.box) > 0.7
        shifts.append(np.abs(a.landmarks - b.landmarks).mean())
    # landmarks move a few px in a 250x250 photo: what costs the small detector some TAR
    assert max(shifts) < 8 and np.mean(shifts) < 3


async def test_a_detector_input_of_no_served_size_is_refused(models):
    with pytest.raises(ValueError, match="no detector"):
        await models.detect(np.zeros((1, 480, 480, 3), np.uint8))
