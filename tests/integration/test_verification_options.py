"""The opt-in verification extensions (CONTRACT.md section 9) over real HTTP, and which faces
are compared: up to three references, return_thresholds, fail_when_multiple_faces, fragments
left out. Every answer is checked against the served OpenAPI document."""

from __future__ import annotations

import cv2

from frontend.contract.codes import Code
from frontend.contract.fields import (
    FACE_QUALITY,
    IMAGE_VERIFICATION,
    LIVENESS_IMAGE_VERIFICATION,
    MULTI_FACE_VERIFICATION,
    SCORE_THRESHOLDS,
    SILENT_IMAGE_VERIFICATION,
)
from frontend.contract.liveness_file import seal
from frontend.sdk.capture import capture_from_video
from tests.conftest import DATA
from tests.integration.http import assert_error

PEIRSOL = [DATA / f"faces/Aaron_Peirsol/Aaron_Peirsol_000{n}.jpg" for n in (1, 2, 3)]
POWELL = DATA / "faces/Colin_Powell/Colin_Powell_0001.jpg"
TWO_PEOPLE = DATA / "multi/facerec_two_people.jpg"
SMALL_FACES = DATA / "multi/dlib_2008_002079.jpg"  # 7 detections, 3 of them under 30 px wide
LIVE_VIDEO = DATA / "video/live/zubair_real.webm"


async def _verify(api, first, *references, **flags):
    fields = {"first_encrypted_image": api.seal(first.read_bytes())}
    for number, reference in enumerate(references, start=1):
        name = "second_encrypted_image" + ("" if number == 1 else f"_{number}")
        fields[name] = api.seal(reference.read_bytes())
    return await api.post(IMAGE_VERIFICATION.path, {**fields, **flags})


async def test_up_to_three_references_answer_each_score_in_order_and_the_best(api, data_dir):
    answer = await _verify(api, PEIRSOL[0], POWELL, PEIRSOL[1], PEIRSOL[2])
    assert answer.code == 1000
    other, same, also_same = answer.body["verification_scores"]
    assert other < 0.5 < 0.7 < min(same, also_same)
    assert answer.body["verification_score"] == max(other, same, also_same)
    single = await _verify(api, PEIRSOL[0], PEIRSOL[1])
    assert single.body["verification_score"] == same


async def test_one_reference_answers_as_before_without_the_extension_fields(api, data_dir):
    answer = await _verify(api, PEIRSOL[0], PEIRSOL[1])
    assert set(answer.body) == {"code", "verification_score", "request_id"}


async def test_return_thresholds_answers_the_score_of_each_false_accept_rate(api, data_dir):
    answer = await _verify(api, PEIRSOL[0], PEIRSOL[1], return_thresholds="true")
    assert answer.body["thresholds"] == {"1e-3": 0.6, "1e-4": 0.7, "1e-5": 0.8, "1e-6": 0.9}
    assert answer.body["thresholds"] == SCORE_THRESHOLDS
    multi = await api.post(
        MULTI_FACE_VERIFICATION.path,
        {
            "first_encrypted_image": api.seal(TWO_PEOPLE.read_bytes()),
            "second_encrypted_image": api.seal(PEIRSOL[0].read_bytes()),
            "return_thresholds": "1",
        },
    )
    assert multi.code == 1000 and multi.body["thresholds"] == SCORE_THRESHOLDS


async def test_fail_when_multiple_faces_refuses_a_group_photo_with_4010_naming_it(api, data_dir):
    plain = await _verify(api, PEIRSOL[0], TWO_PEOPLE)
    assert plain.code == 1000  # the face nearest the centre is compared, as the contract says
    refused = await _verify(api, PEIRSOL[0], TWO_PEOPLE, fail_when_multiple_faces="true")
    assert_error(refused, Code.MULTIPLE_FACES, "second_encrypted_image")
    single = await _verify(api, PEIRSOL[0], PEIRSOL[1], fail_when_multiple_faces="true")
    assert single.code == 1000


async def test_multi_face_leaves_out_faces_too_small_to_compare(api, data_dir):
    answer = await api.post(
        MULTI_FACE_VERIFICATION.path,
        {
            "first_encrypted_image": api.seal(SMALL_FACES.read_bytes()),
            "second_encrypted_image": api.seal(PEIRSOL[0].read_bytes()),
        },
    )
    rects = answer.body["face_rects"]["first_image"]
    assert len(rects) == len(answer.body["scores"]) == 4
    assert min(r["width"] for r in rects) >= 30


async def test_face_quality_says_which_faces_are_not_compared_and_why(api, data_dir):
    answer = await api.post(
        FACE_QUALITY.path, {"encrypted_image": api.seal(SMALL_FACES.read_bytes())}
    )
    faces = answer.body["faces"]
    assert len(faces) == 7
    unusable = [f for f in faces if not f["usable"]]
    assert len(unusable) == 3 and {f["unusable_reason"] for f in unusable} == {"too_small"}
    assert all("unusable_reason" not in f for f in faces if f["usable"])


async def test_a_photo_whose_only_face_is_too_small_is_4000_naming_it(api, data_dir):
    tiny = cv2.resize(cv2.imread(str(PEIRSOL[1])), (64, 64), interpolation=cv2.INTER_AREA)
    small = cv2.copyMakeBorder(tiny, 40, 40, 40, 40, cv2.BORDER_REPLICATE)
    fields = {
        "first_encrypted_image": api.seal(PEIRSOL[0].read_bytes()),
        "second_encrypted_image": api.seal(cv2.imencode(".png", small)[1].tobytes()),
    }
    assert_error(
        await api.post(IMAGE_VERIFICATION.path, fields), Code.DETECTION_FAILED,
        "second_encrypted_image",
    )


async def test_liveness_file_and_video_verification_take_extra_references(api, data_dir):
    capture = capture_from_video(LIVE_VIDEO, frames=8)
    still = capture.frames[-1].jpeg
    fields = {
        "encrypted_image": api.seal(POWELL.read_bytes()),
        "encrypted_image_2": api.seal(still),
        "return_thresholds": "true",
    }
    sealed = seal(capture, api.keyring)
    files = {"liveness_file": sealed}
    answer = await api.post(LIVENESS_IMAGE_VERIFICATION.path, fields, files=files)
    assert answer.code == 1000
    other, same = answer.body["verification_scores"]
    assert other < 0.5 < 0.7 < same == answer.body["verification_score"]
    assert answer.body["thresholds"] == SCORE_THRESHOLDS
    video = await api.post(
        SILENT_IMAGE_VERIFICATION.path,
        {"encrypted_video": api.seal(LIVE_VIDEO.read_bytes()), **fields},
    )
    assert video.code == 1000 and video.body["passed"] is True
    other, same = video.body["verification_scores"]
    assert other < 0.5 < 0.7 < same == video.body["verification_score"]
