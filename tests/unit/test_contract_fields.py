"""The endpoint tables decide parsing, presence and the OpenAPI document."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from frontend.contract.codes import Code, ContractError
from frontend.contract.fields import (
    IMAGE_VERIFICATION,
    LIVENESS_RESULT,
    PHOTO_ENDPOINTS,
    Endpoint,
    FieldKind,
    RequestField,
    parse_request,
    success_body,
)
from frontend.contract.openapi import build_openapi
from preprocessing.image import PhotoLimits
from preprocessing.video import VideoLimits

BOTH = {"first_encrypted_image": "fg1.AAAA", "second_encrypted_image": "fg1.BBBB"}


@pytest.mark.parametrize(
    "text,value",
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("False", False), ("0", False)],
)
def test_booleans_take_true_false_1_0_in_any_case(text, value):
    parsed = parse_request(IMAGE_VERIFICATION, {**BOTH, "auto_rotate": text})
    assert parsed["auto_rotate"] is value


def test_missing_booleans_default_to_false_and_unknown_fields_are_ignored():
    parsed = parse_request(IMAGE_VERIFICATION, {**BOTH, "biz_no": "42"})
    assert parsed["auto_rotate"] is False and parsed["check_quality"] is False
    assert "biz_no" not in parsed.values


@pytest.mark.parametrize(
    "raw",
    [
        {"first_encrypted_image": "fg1.AAAA"},
        {**BOTH, "second_encrypted_image": ""},
        {**BOTH, "auto_rotate": "yes"},
        {**BOTH, "check_quality": "2"},
        {**BOTH, "first_encrypted_image": b"\xff\xfe"},
    ],
)
def test_a_missing_field_or_a_bad_boolean_is_1200(raw):
    with pytest.raises(ContractError) as error:
        parse_request(IMAGE_VERIFICATION, raw)
    assert error.value.code is Code.INVALID_ARGUMENT


def test_a_file_field_sent_as_text_becomes_bytes():
    endpoint = Endpoint("/x", "x", "x", (RequestField("f", FieldKind.FILE, "", True),), (), ())
    assert parse_request(endpoint, {"f": "fg1.abc"})["f"] == b"fg1.abc"


def test_success_body_lets_through_exactly_the_fields_whose_rules_hold():
    endpoint = Endpoint("/x", "x", "x", (), LIVENESS_RESULT, ())
    results = {"passed": False, "liveness_score": 0.1, "liveness_status": "hack"}
    assert success_body(endpoint, results, {"passed": False}, "r1") == {
        "code": 1000,
        "passed": False,
        "liveness_score": 0.1,
        "request_id": "r1",
    }
    with_status = success_body(endpoint, results, {"return_status": True}, "r2")
    assert with_status["liveness_status"] == "hack"


def test_success_body_refuses_a_number_that_is_not_finite():
    with pytest.raises(ValueError):
        success_body(IMAGE_VERIFICATION, {"verification_score": float("nan")}, {}, "r")


def test_the_openapi_document_validates_and_states_the_limits():
    limits = PhotoLimits(max_bytes=5_000_000)
    document = build_openapi(PHOTO_ENDPOINTS, limits, VideoLimits(), 1 << 20)
    validate(document)
    assert "5000000 bytes" in document["info"]["description"]
    for endpoint in PHOTO_ENDPOINTS:
        success = document["paths"][endpoint.path]["post"]["responses"]["200"]
        schema = success["content"]["application/json"]["schema"]
        assert set(schema["properties"]) == {
            "code",
            "request_id",
            *(f.name for f in endpoint.response),
        }
        assert schema["additionalProperties"] is False
