"""The four photo endpoints over real HTTP, with the real models: fields, presence, scores.

Every answer is also checked against the server's OpenAPI document (`tests/integration/http.py`).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from openapi_spec_validator import validate
from PIL import Image

from frontend.contract.fields import (
    FACE_QUALITY,
    IMAGE_VERIFICATION,
    LIVENESS_IMAGE_VERIFICATION,
    MULTI_FACE_VERIFICATION,
)
from frontend.contract.liveness_file import seal
from frontend.sdk.capture import capture_from_video
from tests.conftest import DATA

OBAMA = DATA / "faces/Barack_Obama/facerec_obama.jpg"
OBAMA_2 = DATA / "faces/Barack_Obama/facerec_obama2.jpg"
JOLIE = DATA / "faces/Angelina_Jolie/deepface_img1.jpg"
COUPLE = DATA / "multi/deepface_couple.jpg"
LIVE_VIDEO = DATA / "video/live/zubair_real.webm"
REPLAY_VIDEO = DATA / "spoof/video/zubair_fake_replay.webm"


def _read(path) -> bytes:
    return path.read_bytes()


def _success_fields(endpoint) -> set[str]:
    return {"code", "request_id", *(f.name for f in endpoint.response if not f.present_when)}


async def _verify(api, first: bytes, second: bytes, **flags):
    return await api.post(
        IMAGE_VERIFICATION.path,
        {
            "first_encrypted_image": api.seal(first),
            "second_encrypted_image": api.seal(second),
            **flags,
        },
    )


async def test_image_verification_scores_the_same_person_above_0_7_with_only_its_fields(
    api, data_dir
):
    answer = await _verify(api, _read(OBAMA), _read(OBAMA_2))
    assert answer.status == 200 and answer.code == 1000
    assert set(answer.body) == _success_fields(IMAGE_VERIFICATION)
    assert answer.body["verification_score"] > 0.7


async def test_image_verification_scores_different_people_below_0_6(api, data_dir):
    answer = await _verify(api, _read(OBAMA), _read(JOLIE), check_quality=True)
    assert answer.code == 1000 and answer.body["verification_score"] < 0.6


@pytest.mark.parametrize("form", ["urlencoded", "multipart", "json"])
async def test_every_body_form_gives_the_same_score(api, data_dir, form):
    fields = {
        "first_encrypted_image": api.seal(_read(OBAMA)),
        "second_encrypted_image": api.seal(_read(OBAMA_2)),
        "auto_rotate": "FALSE",
    }
    answer = await api.post(IMAGE_VERIFICATION.path, fields, form=form)
    reference = await _verify(api, _read(OBAMA), _read(OBAMA_2))
    assert answer.code == 1000
    assert answer.body["verification_score"] == pytest.approx(
        reference.body["verification_score"], abs=1e-6
    )


async def test_the_manuals_legacy_fixed_iv_form_is_accepted(api, data_dir):
    answer = await api.post(
        IMAGE_VERIFICATION.path,
        {
            "first_encrypted_image": api.seal(_read(OBAMA), legacy=True),
            "second_encrypted_image": api.seal(_read(OBAMA_2), legacy=True),
        },
    )
    assert answer.code == 1000 and answer.body["verification_score"] > 0.7


async def test_an_unescaped_plus_in_a_form_body_still_decrypts(api, data_dir):
    sealed = api.seal(_read(OBAMA))
    raw = (
        f"first_encrypted_image={sealed}&second_encrypted_image={api.seal(_read(OBAMA_2))}"
    ).encode()
    response = await api.session.post(
        IMAGE_VERIFICATION.path,
        data=raw,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    answer = await api.answer(response, IMAGE_VERIFICATION.path, "post")
    assert "+" in sealed and answer.code == 1000


@pytest.mark.parametrize(
    "turn",
    [cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_180, cv2.ROTATE_90_COUNTERCLOCKWISE],
    ids=["90", "180", "270"],
)
async def test_auto_rotate_finds_the_face_of_a_photo_stored_turned(api, data_dir, turn):
    image = cv2.imread(str(OBAMA))
    sideways = cv2.imencode(".jpg", cv2.rotate(image, turn))[1].tobytes()
    upright = await _verify(api, sideways, _read(OBAMA_2), auto_rotate=False)
    rotated = await _verify(api, sideways, _read(OBAMA_2), auto_rotate=True)
    assert upright.code in (4000, 1000)
    assert rotated.code == 1000 and rotated.body["verification_score"] > 0.7


async def test_auto_rotate_honours_the_exif_orientation(api, data_dir):
    image = Image.open(OBAMA)
    turned = image.transpose(Image.Transpose.ROTATE_90)  # stored turned left...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...with the tag saying "rotate 90 CW to display"
    buffer = io.BytesIO()
    turned.save(buffer, "JPEG", exif=exif)
    answer = await _verify(api, buffer.getvalue(), _read(OBAMA_2), auto_rotate=True)
    assert answer.code == 1000 and answer.body["verification_score"] > 0.7


async def test_multi_face_scores_every_pair_with_rects_in_the_same_order(api, data_dir):
    answer = await api.post(
        MULTI_FACE_VERIFICATION.path,
        {
            "first_encrypted_image": api.seal(_read(COUPLE)),
            "second_encrypted_image": api.seal(_read(OBAMA)),
        },
    )
    assert answer.code == 1000 and set(answer.body) == _success_fields(MULTI_FACE_VERIFICATION)
    rects = answer.body["face_rects"]
    assert len(rects["first_image"]) == 2 and len(rects["second_image"]) == 1
    assert np.asarray(answer.body["scores"]).shape == (2, 1)
    assert max(max(row) for row in answer.body["scores"]) < 0.6


async def test_multi_face_finds_the_same_person_across_photos(api, data_dir):
    answer = await api.post(
        MULTI_FACE_VERIFICATION.path,
        {
            "first_encrypted_image": api.seal(_read(DATA / "multi/facerec_obama_and_biden.jpg")),
            "second_encrypted_image": api.seal(_read(OBAMA_2)),
        },
    )
    scores = np.asarray(answer.body["scores"])
    assert scores.shape == (len(answer.body["face_rects"]["first_image"]), 1)
    assert scores.max() > 0.7 and np.sum(scores > 0.7) == 1


async def test_face_quality_reports_every_face_with_every_measure(api, data_dir):
    answer = await api.post(FACE_QUALITY.path, {"encrypted_image": api.seal(_read(COUPLE))})
    assert answer.code == 1000 and set(answer.body) == _success_fields(FACE_QUALITY)
    assert len(answer.body["faces"]) == 2
    for face in answer.body["faces"]:
        assert not any(v >= 0.5 for v in face["quality"]["occlusion"].values())


def _liveness_file(api, video) -> bytes:
    return seal(capture_from_video(video, frames=6), api.keyring)


async def test_liveness_file_of_a_live_person_matches_a_still_of_them(api, data_dir):
    capture = capture_from_video(LIVE_VIDEO, frames=7)
    still = capture.frames[-1].jpeg  # from another moment than the frames sent
    sent = type(capture)(frames=capture.frames[:-1], source=capture.source)
    answer = await api.post(
        LIVENESS_IMAGE_VERIFICATION.path,
        {"encrypted_image": api.seal(still)},
        files={"liveness_file": seal(sent, api.keyring)},
    )
    assert answer.code == 1000 and set(answer.body) == _success_fields(LIVENESS_IMAGE_VERIFICATION)
    assert answer.body["verification_score"] > 0.7


async def test_liveness_file_accepts_the_sealed_text_as_a_form_field(api, data_dir):
    sealed = _liveness_file(api, LIVE_VIDEO).decode()
    still = capture_from_video(LIVE_VIDEO, frames=1).frames[0].jpeg
    answer = await api.post(
        LIVENESS_IMAGE_VERIFICATION.path,
        {"liveness_file": sealed, "encrypted_image": api.seal(still)},
    )
    assert answer.code == 1000


async def test_liveness_file_of_a_screen_replay_is_refused_with_4007(api, data_dir):
    still = capture_from_video(LIVE_VIDEO, frames=1).frames[0].jpeg
    answer = await api.post(
        LIVENESS_IMAGE_VERIFICATION.path,
        {"encrypted_image": api.seal(still)},
        files={"liveness_file": _liveness_file(api, REPLAY_VIDEO)},
    )
    assert (answer.status, answer.code) == (400, 4007)
    assert "spoof_type" not in answer.body  # only when asked for


async def test_liveness_file_of_a_screen_replay_answers_its_spoof_type_when_asked(api, data_dir):
    still = capture_from_video(LIVE_VIDEO, frames=1).frames[0].jpeg
    answer = await api.post(
        LIVENESS_IMAGE_VERIFICATION.path,
        {"encrypted_image": api.seal(still), "return_spoof_type": "true"},
        files={"liveness_file": _liveness_file(api, REPLAY_VIDEO)},
    )
    assert (answer.status, answer.code, answer.body["field"]) == (400, 4007, "liveness_file")
    assert answer.body["spoof_type"] in ("screen", "unknown")


async def test_openapi_document_is_valid_and_documents_every_endpoint(api):
    validate(api.openapi)
    for endpoint in (
        IMAGE_VERIFICATION,
        MULTI_FACE_VERIFICATION,
        LIVENESS_IMAGE_VERIFICATION,
        FACE_QUALITY,
    ):
        operation = api.openapi["paths"][endpoint.path]["post"]
        for code in endpoint.codes:
            assert str(code.info.code) in operation["responses"]["400"]["description"]
