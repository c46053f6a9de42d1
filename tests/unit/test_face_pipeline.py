"""The whole face pipeline (detect, align, embed, score; liveness; best frame) on real photos,
through the in-process runtime: the server's steps with no Triton process."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import pytest

from frontend.inference.onnx import OnnxModels
from frontend.inference.runtime import InferenceError, ModelRuntime
from frontend.service.faces import FacePipeline, Sighting
from frontend.service.stages import Stages
from model_repository.specs import FACE_EMBEDDER, MODELS, ModelSpec, onnx_file
from preprocessing.alignment import face_chips
from tests.conftest import DATA

SAME = ("faces/Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "faces/Aaron_Peirsol/Aaron_Peirsol_0002.jpg")
OTHER = "faces/Colin_Powell/Colin_Powell_0001.jpg"


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    if not all(onnx_file(spec).is_file() for spec in MODELS):
        pytest.skip("models not built: run `make models`")
    return FacePipeline(OnnxModels(threads=2))


def _photo(name: str) -> np.ndarray:
    image = cv2.imread(str(DATA / name))
    if image is None:
        pytest.skip(f"{name} not in the shared data")
    return image


async def test_the_same_person_scores_above_0_7_and_another_below_0_5(pipeline):
    first, second, other = [await pipeline.main_face(_photo(n)) for n in (*SAME, OTHER)]
    assert pipeline.compare(first, second) > 0.7
    assert pipeline.compare(first, other) < 0.5
    assert first.descriptor.shape == (128,)


async def test_compare_all_scores_every_face_against_every_face_as_compare_does(pipeline):
    image = _photo("multi/facerec_two_people.jpg")
    faces = await pipeline.embed(image, await pipeline.detect(image))
    reference = await pipeline.main_face(_photo(SAME[0]))
    matrix = pipeline.compare_all(faces, [reference, *faces])
    assert matrix.shape == (len(faces), len(faces) + 1) == (2, 3)
    for row, face in enumerate(faces):
        assert matrix[row, 0] == pytest.approx(pipeline.compare(face, reference))
        assert matrix[row, row + 1] == pytest.approx(1.0)  # a face against itself


async def test_mirror_averaging_is_the_mean_of_the_chip_and_its_mirror(pipeline):
    image = _photo(SAME[0])
    faces = (await pipeline.detect(image))[:1]
    (averaged,) = await pipeline.embed(image, faces)
    (single,) = await FacePipeline(pipeline.models, mirror=False).embed(image, faces)
    mirrored = await pipeline.models.embed(face_chips(image, faces, mirror=False)[:, :, ::-1])
    expected = (single.descriptor + mirrored[0]) / 2
    np.testing.assert_allclose(averaged.descriptor, expected, atol=1e-6)


async def test_liveness_gives_one_p_real_per_sighting_in_one_call(pipeline):
    image = _photo(SAME[0])
    (face, *_) = await pipeline.detect(image)
    p_real = await pipeline.liveness([Sighting(image, face), Sighting(image[:, ::-1].copy(), face)])
    assert p_real.shape == (2,)
    assert np.all((0 <= p_real) & (p_real <= 1))


async def test_best_by_quality_prefers_the_sharp_frame_and_match_scores_it_against_each_reference(
        pipeline):
    image = _photo(SAME[0])
    (face, *_) = await pipeline.detect(image)
    blurred = cv2.GaussianBlur(image, (0, 0), 4)
    sightings = [
        Sighting(blurred, face, 0.0), Sighting(image, face, 0.2), Sighting(blurred, face, 0.4)
    ]
    best = await pipeline.best_by_quality(sightings)
    assert best.timestamp_s == 0.2
    reference, other = [await pipeline.main_face(_photo(n)) for n in (SAME[1], OTHER)]
    match = await pipeline.match(sightings, [other, reference])
    assert match.best is best
    (embedded,) = await pipeline.embed(image, [face])
    same = pipeline.compare(embedded, reference)
    assert match.verification.scores == (pipeline.compare(embedded, other), same)
    assert match.verification.best == same > 0.7


async def test_no_face_gives_no_main_face(pipeline):
    assert await pipeline.main_face(np.full((200, 200, 3), 127, np.uint8)) is None


async def test_stages_are_timed_in_one_place(pipeline):
    seen: list[str] = []
    timed = FacePipeline(pipeline.models, Stages(observe=lambda stage, s: seen.append(stage)))
    await timed.main_face(_photo(SAME[0]))
    assert seen == ["detect", "align", "embed"]


class _Recording(ModelRuntime):
    """A runtime that records what the typed calls send."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, tuple[int, ...]]]] = []

    async def infer(self, spec: ModelSpec, inputs: Mapping[str, np.ndarray]):
        self.calls.append((spec.name, {k: v.shape for k, v in inputs.items()}))
        size = len(next(iter(inputs.values())))
        return {t.name: np.zeros((size, *t.dims), t.dtype) for t in spec.outputs}


async def test_typed_calls_send_the_tensors_their_model_spec_names():
    runtime = _Recording()
    await runtime.detect(np.zeros((1, 320, 320, 3), np.uint8))
    await runtime.embed(np.zeros((2, 150, 150, 3), np.uint8))
    assert (await runtime.liveness(*(np.zeros((3, 80, 80, 3), np.uint8),) * 2)).shape == (3,)
    assert runtime.calls == [
        ("face_detector_320", {"image": (1, 320, 320, 3)}),
        (FACE_EMBEDDER.name, {"chip": (2, 150, 150, 3)}),
        ("face_liveness", {"crop_v2": (3, 80, 80, 3), "crop_v1se": (3, 80, 80, 3)}),
    ]


async def test_a_model_that_is_not_built_is_an_inference_error(tmp_path):
    with pytest.raises(InferenceError, match="not built"):
        await OnnxModels(tmp_path).embed(np.zeros((1, 150, 150, 3), np.uint8))
