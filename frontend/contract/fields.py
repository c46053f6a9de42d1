"""The endpoints of CONTRACT.md section 1 as data: request fields, response fields and their
presence rules, and the codes each endpoint can answer.

The handlers parse requests and shape responses from these tables, the OpenAPI document is
generated from them, and the tests check answers against them: nothing about a field is
written twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from frontend.contract.codes import Code, ContractError, concerning
from preprocessing.usability import REASONS as USABILITY_REASONS


class FieldKind(Enum):
    """How a request field arrives and what it becomes after parsing."""

    ENCRYPTED = "encrypted"  # base64 text of AES-256-GCM ciphertext (CONTRACT.md section 6)
    BOOLEAN = "boolean"  # true/false/1/0, any case
    FILE = "file"  # a multipart file part (or the same text in a form or JSON field)
    TEXT = "text"  # plain text: a session token or id, a list of actions


@dataclass(frozen=True)
class RequestField:
    name: str
    kind: FieldKind
    description: str
    required: bool = False


@dataclass(frozen=True)
class ResponseField:
    """A success field, present only when every flag in `present_when` is true.

    `present_when` names request booleans (``return_image``) or result booleans (``passed``).
    """

    name: str
    schema: Mapping[str, Any]
    description: str
    present_when: tuple[str, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    path: str
    operation_id: str
    summary: str
    request: tuple[RequestField, ...]
    response: tuple[ResponseField, ...]
    codes: tuple[Code, ...]
    public: bool = False
    """Authenticated by the session token in its body, not by an API key: the browser page
    calls it (`frontend.contract.sessions`)."""
    error_fields: tuple[ResponseField, ...] = ()
    """Fields its 400 answer may carry beside code, message and field."""

    def __post_init__(self) -> None:
        # Every endpoint reads a body, so each can answer "too many fields".
        if Code.TOO_MANY_FIELDS not in self.codes:
            object.__setattr__(self, "codes", (*self.codes, Code.TOO_MANY_FIELDS))


PHOTO_HELP = "Encrypted photo (AES-256-GCM, base64; README 'Encryption' and 'Photo standards')."
_VIDEO_HELP = "Encrypted video (AES-256-GCM, base64; README 'Video standards')."

AUTO_ROTATE = RequestField(
    "auto_rotate",
    FieldKind.BOOLEAN,
    "Default false: the photo is used as stored. True: apply the EXIF orientation and search "
    "the photo turned by 0, 90, 180 and 270 degrees; the turn with the best face wins.",
)
CHECK_QUALITY = RequestField(
    "check_quality",
    FieldKind.BOOLEAN,
    "Default false. True: a face whose eyes, nose or mouth are occluded is refused with 4004.",
)
RETURN_IMAGE = RequestField(
    "return_image",
    FieldKind.BOOLEAN,
    "Return the selected frame and its timestamp (only when passed).",
)
RETURN_FACE_IMAGE = RequestField(
    "return_face_image",
    FieldKind.BOOLEAN,
    "Return the selected frame's face crop (only when passed).",
)
RETURN_STATUS = RequestField("return_status", FieldKind.BOOLEAN, "Return liveness_status.")
RETURN_SPOOF_TYPE = RequestField(
    "return_spoof_type",
    FieldKind.BOOLEAN,
    "Default false. True: a video refused as a spoof (liveness_status hack) also answers "
    "spoof_type.",
)
RETURN_REASON = RequestField(
    "return_reason",
    FieldKind.BOOLEAN,
    "Default false. True: a video that did not pass answers liveness_reason when the capture, "
    "not an attack, can explain it (the user can retry).",
)
RETURN_THRESHOLDS = RequestField(
    "return_thresholds",
    FieldKind.BOOLEAN,
    "Default false. True: the answer carries `thresholds`, the verification_score meaning each "
    "false-accept rate from 1e-3 to 1e-6.",
)
FAIL_WHEN_MULTIPLE_FACES = RequestField(
    "fail_when_multiple_faces",
    FieldKind.BOOLEAN,
    "Default false: of several faces in a photo, the one nearest the centre is compared. True: "
    "a photo with more than one usable face is refused with 4010.",
)


def extra_references(name: str) -> tuple[RequestField, ...]:
    """The optional second and third reference photos beside the reference field `name`."""
    return tuple(
        RequestField(
            f"{name}_{n}",
            FieldKind.ENCRYPTED,
            f"Optional reference photo {n} (encrypted as {name}): the face is compared with "
            f"up to three references; verification_score is the best, verification_scores "
            "each.",
        )
        for n in (2, 3)
    )

SCORE = {"type": "number", "minimum": 0, "maximum": 1}
VERIFICATION_SCORE = ResponseField(
    "verification_score",
    SCORE,
    "Calibrated similarity in [0, 1]: a threshold of 0.4/0.5/0.6/0.7/0.8/0.9 accepts impostors "
    "at a rate of 1e-1/1e-2/1e-3/1e-4/1e-5/1e-6. Recommended threshold: 0.7.",
)
RECT = {
    "type": "object",
    "properties": {k: {"type": "integer"} for k in ("left", "top", "width", "height")},
    "required": ["left", "top", "width", "height"],
    "additionalProperties": False,
}
_POINT = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
_UNIT = {"type": "number", "minimum": 0, "maximum": 1}
_QUALITY = {
    "type": "object",
    "properties": {
        "occlusion": {
            "type": "object",
            "description": "Per region, 0 (clear) to 1 (fully covered); a region at or above "
            "0.5 is occluded and gives 4004 under check_quality.",
            "properties": {"eyes": _UNIT, "nose": _UNIT, "mouth": _UNIT},
            "required": ["eyes", "nose", "mouth"],
            "additionalProperties": False,
        },
        "blur": {
            **_UNIT,
            "description": "Crete-Roffet blur measure on the aligned face, 0 sharp .. 1 very "
            "blurry (clear LFW faces about 0.39; a 2 px Gaussian blur about 0.53).",
        },
        "brightness": {**_UNIT, "description": "Mean luminance of the face, 0 black .. 1 white."},
        "pose": {
            "type": "object",
            "description": "Head pose estimated from the five landmarks, degrees: yaw > 0 "
            "when the nose points to the image's right, pitch > 0 looking up, roll > 0 "
            "counter-clockwise.",
            "properties": {k: {"type": "number"} for k in ("yaw", "pitch", "roll")},
            "required": ["yaw", "pitch", "roll"],
            "additionalProperties": False,
        },
        "face_size": {
            "type": "number",
            "minimum": 0,
            "description": "Distance between the eye centres, pixels of the photo.",
        },
        "score": {
            **_UNIT,
            "description": "Overall usability for verification, 0 .. 1: the product of "
            "(1 - worst occlusion) and factors for blur, brightness, pose and size.",
        },
    },
    "required": ["occlusion", "blur", "brightness", "pose", "face_size", "score"],
    "additionalProperties": False,
}
FACE_REPORT = {
    "type": "object",
    "properties": {
        "rect": RECT,
        "landmarks": {
            "type": "array",
            "items": _POINT,
            "minItems": 5,
            "maxItems": 5,
            "description": "x, y of the right eye, left eye, nose tip, right and left mouth "
            "corner (right = the person's right).",
        },
        "quality": _QUALITY,
        "usable": {
            "type": "boolean",
            "description": "The face can be compared; false for a fragment (README 'Which faces "
            "are compared'), which verification leaves out.",
        },
        "unusable_reason": {
            "type": "string",
            "enum": list(USABILITY_REASONS),
            "description": "Why the face is not compared (only when usable is false).",
        },
    },
    "required": ["rect", "landmarks", "quality", "usable"],
    "additionalProperties": False,
}

SCORE_THRESHOLDS = {"1e-3": 0.6, "1e-4": 0.7, "1e-5": 0.8, "1e-6": 0.9}
"""verification_score = (3 - log10 FAR) / 10 (CONTRACT.md section 2), so each FAR's threshold
is the same for every call (Megvii's vary per comparison; ours are calibrated once)."""

VERIFICATION_SCORES = ResponseField(
    "verification_scores",
    {"type": "array", "items": SCORE, "minItems": 2, "maxItems": 3},
    "Each reference photo's score, in field order (the reference field, then _2, _3); only "
    "when more than one reference was sent.",
    ("several_references",),
)
THRESHOLDS = ResponseField(
    "thresholds",
    {
        "type": "object",
        "properties": {k: {"type": "number", "const": v} for k, v in SCORE_THRESHOLDS.items()},
        "required": list(SCORE_THRESHOLDS),
        "additionalProperties": False,
    },
    "The verification_score at which impostors are accepted at each rate (with "
    "return_thresholds).",
    ("return_thresholds",),
)

SPOOF_TYPE_SCHEMA = {"type": "string", "enum": ["screen", "print", "still_photo", "unknown"]}

LIVENESS_RESULT = (
    ResponseField(
        "passed",
        {"type": "boolean"},
        "Liveness passed: the score reaches the threshold and a face is seen for 2 s.",
    ),
    ResponseField("liveness_score", SCORE, "Silent liveness score, 0 .. 1 (for reference)."),
    ResponseField(
        "liveness_status",
        {"type": "string", "enum": ["ok", "hack", "short_time"]},
        "ok, hack (spoof) or short_time (face visible under 2 s).",
        ("return_status",),
    ),
    ResponseField(
        "spoof_type",
        SPOOF_TYPE_SCHEMA,
        "What the spoof was taken for, from the cue that refused it: screen (the colour moire "
        "of a screen's pixel grid), still_photo (a picture moving as one plane), or unknown "
        "(MiniFASNet's recapture cue, which does not tell print from screen). Only for hack.",
        ("return_spoof_type", "hack"),
    ),
    ResponseField(
        "liveness_reason",
        {"type": "string",
         "enum": ["face_lost", "face_too_small", "too_dark", "too_bright", "too_blurred"]},
        "Why a video that did not pass may be the capture's fault: the face seen under 2 s, "
        "under 48 px wide, too dark, burned out or too soft (medians over the scored frames). "
        "Absent when nothing in the capture explains it.",
        ("return_reason", "capture_problem"),
    ),
)
IMAGE_RESULT = (
    ResponseField(
        "image_timestamp",
        {"type": "number", "minimum": 0},
        "Timestamp of the selected frame, seconds.",
        ("passed", "return_image"),
    ),
    ResponseField(
        "base64_image",
        {"type": "string", "contentEncoding": "base64"},
        "The selected frame, JPEG.",
        ("passed", "return_image"),
    ),
    ResponseField(
        "base64_face_image",
        {"type": "string", "contentEncoding": "base64"},
        "The selected frame's face crop, JPEG.",
        ("passed", "return_face_image"),
    ),
)

PHOTO_CODES = (
    Code.INVALID_ARGUMENT,
    Code.INVALID_IMAGE_SIZE,
    Code.INVALID_CONTENT_LENGTH,
    Code.INVALID_IMAGE_TYPE,
    Code.CORRUPTED_IMAGE,
    Code.DETECTION_FAILED,
)

IMAGE_VERIFICATION = Endpoint(
    "/identity/image_verification/stateless",
    "image_verification",
    "Compare the faces of two photos (one face each; the face nearest the centre is used).",
    (
        RequestField("first_encrypted_image", FieldKind.ENCRYPTED, PHOTO_HELP, required=True),
        RequestField("second_encrypted_image", FieldKind.ENCRYPTED, PHOTO_HELP, required=True),
        *extra_references("second_encrypted_image"),
        AUTO_ROTATE,
        CHECK_QUALITY,
        RETURN_THRESHOLDS,
        FAIL_WHEN_MULTIPLE_FACES,
    ),
    (VERIFICATION_SCORE, VERIFICATION_SCORES, THRESHOLDS),
    (*PHOTO_CODES, Code.FACE_OCCLUSION, Code.MULTIPLE_FACES),
)
MULTI_FACE_VERIFICATION = Endpoint(
    "/identity/multi_face_verification/stateless",
    "multi_face_verification",
    "Score every face of the first photo against every face of the second.",
    (
        RequestField("first_encrypted_image", FieldKind.ENCRYPTED, PHOTO_HELP, required=True),
        RequestField("second_encrypted_image", FieldKind.ENCRYPTED, PHOTO_HELP, required=True),
        AUTO_ROTATE,
        RETURN_THRESHOLDS,
    ),
    (
        ResponseField(
            "scores",
            {"type": "array", "items": {"type": "array", "items": SCORE}},
            "scores[i][j]: face i of the first photo against face j of the second, calibrated "
            "as verification_score. Faces are ordered by detector confidence; fragments (cut "
            "off, covered, too small or too blurred) are left out.",
        ),
        ResponseField(
            "face_rects",
            {
                "type": "object",
                "properties": {
                    "first_image": {"type": "array", "items": RECT},
                    "second_image": {"type": "array", "items": RECT},
                },
                "required": ["first_image", "second_image"],
                "additionalProperties": False,
            },
            "Each photo's face rectangles, pixels of the (rotated) photo, in the order of scores.",
        ),
        THRESHOLDS,
    ),
    PHOTO_CODES,
)
LIVENESS_IMAGE_VERIFICATION = Endpoint(
    "/identity/liveness_image_verification/stateless",
    "liveness_image_verification",
    "Check the frames of a liveness_file for a live person and compare the best one with a photo.",
    (
        RequestField(
            "liveness_file",
            FieldKind.FILE,
            "Sealed liveness_file (frontend/contract/liveness_file.proto, AES-256-GCM), as the "
            "facegate SDK writes it; a file part, or the same text as a field.",
            required=True,
        ),
        RequestField("encrypted_image", FieldKind.ENCRYPTED, PHOTO_HELP, required=True),
        *extra_references("encrypted_image"),
        AUTO_ROTATE,
        CHECK_QUALITY,
        RETURN_THRESHOLDS,
        FAIL_WHEN_MULTIPLE_FACES,
        RequestField(
            "return_spoof_type",
            FieldKind.BOOLEAN,
            "Default false. True: frames refused as a spoof (4007) answer spoof_type beside "
            "the code.",
        ),
    ),
    (VERIFICATION_SCORE, VERIFICATION_SCORES, THRESHOLDS),
    (
        Code.INVALID_ARGUMENT,
        Code.INVALID_IMAGE_SIZE,
        Code.INVALID_CONTENT_LENGTH,
        Code.INVALID_IMAGE_TYPE,
        Code.CORRUPTED_IMAGE,
        Code.CORRUPTED_LIVENESS_DATA,
        Code.DETECTION_FAILED,
        Code.FACE_OCCLUSION,
        Code.LIVENESS_CHECK_FAILED,
        Code.MULTIPLE_FACES,
    ),
    error_fields=(
        ResponseField(
            "spoof_type",
            SPOOF_TYPE_SCHEMA,
            "With 4007 when the frames were refused as a spoof: screen (the colour moire of a "
            "screen's pixel grid) or unknown (MiniFASNet's recapture cue). A liveness_file has "
            "no motion between its frames to call a still photo by.",
            ("return_spoof_type",),
        ),
    ),
)
FACE_QUALITY = Endpoint(
    "/quality/face_quality/stateless",
    "face_quality",
    "Quality measures of every face in a photo.",
    (RequestField("encrypted_image", FieldKind.ENCRYPTED, PHOTO_HELP, required=True),),
    (
        ResponseField(
            "faces",
            {"type": "array", "items": FACE_REPORT},
            "One entry per face, ordered by detector confidence.",
        ),
    ),
    PHOTO_CODES,
)

_VIDEO_FLAGS = (RETURN_IMAGE, RETURN_FACE_IMAGE, RETURN_STATUS, RETURN_SPOOF_TYPE, RETURN_REASON)

SILENT_DETECTION = Endpoint(
    "/liveness/silent_detection/stateless",
    "silent_detection",
    "Silent liveness: is the person in this video real?",
    (
        RequestField("encrypted_video", FieldKind.ENCRYPTED, _VIDEO_HELP, required=True),
        *_VIDEO_FLAGS,
    ),
    (*LIVENESS_RESULT, *IMAGE_RESULT),
    (Code.INVALID_ARGUMENT, Code.INVALID_VIDEO, Code.LIVENESS_CHECK_FAILED),
)
SILENT_IMAGE_VERIFICATION = Endpoint(
    "/identity/silent_image_verification/stateless",
    "silent_image_verification",
    "Silent liveness of a video, and its best face against a photo.",
    (
        RequestField("encrypted_video", FieldKind.ENCRYPTED, _VIDEO_HELP, required=True),
        RequestField("encrypted_image", FieldKind.ENCRYPTED, PHOTO_HELP, required=True),
        *extra_references("encrypted_image"),
        AUTO_ROTATE,
        CHECK_QUALITY,
        *_VIDEO_FLAGS,
        RETURN_THRESHOLDS,
        FAIL_WHEN_MULTIPLE_FACES,
    ),
    (
        *LIVENESS_RESULT,
        ResponseField(**{**VERIFICATION_SCORE.__dict__, "present_when": ("passed",)}),
        ResponseField(
            **{**VERIFICATION_SCORES.__dict__, "present_when": ("passed", "several_references")}
        ),
        THRESHOLDS,
        *IMAGE_RESULT,
    ),
    (
        *PHOTO_CODES, Code.FACE_OCCLUSION, Code.MULTIPLE_FACES, Code.INVALID_VIDEO,
        Code.LIVENESS_CHECK_FAILED,
    ),
)

PHOTO_ENDPOINTS = (
    IMAGE_VERIFICATION,
    MULTI_FACE_VERIFICATION,
    LIVENESS_IMAGE_VERIFICATION,
    FACE_QUALITY,
)
VIDEO_ENDPOINTS = (SILENT_DETECTION, SILENT_IMAGE_VERIFICATION)
ENDPOINTS = (*PHOTO_ENDPOINTS, *VIDEO_ENDPOINTS)
"""Every endpoint of CONTRACT.md section 1."""

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


@dataclass
class ParsedRequest:
    """A request's fields after the contract's rules: booleans parsed, defaults filled.

    Attributes:
        values: ENCRYPTED fields as text, FILE fields as bytes, BOOLEAN fields as bool.
    """

    endpoint: Endpoint
    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


def parse_request(endpoint: Endpoint, raw: Mapping[str, str | bytes | bool]) -> ParsedRequest:
    """Apply the endpoint's field rules to the raw body fields.

    Fields the endpoint does not know are ignored, as a SenseID server does.

    Raises:
        ContractError(1200): a required field is missing or empty, or a boolean is not one.
    """
    parsed = ParsedRequest(endpoint)
    for spec in endpoint.request:
        value = raw.get(spec.name)
        if value is None or value == "" or value == b"":
            if spec.required:
                raise ContractError(
                    Code.INVALID_ARGUMENT, f"{spec.name} is required", field=spec.name
                )
            if spec.kind is FieldKind.BOOLEAN:
                parsed.values[spec.name] = False
            continue
        with concerning(spec.name):
            if spec.kind is FieldKind.BOOLEAN:
                parsed.values[spec.name] = _boolean(spec.name, value)
            elif spec.kind is FieldKind.FILE:
                parsed.values[spec.name] = value.encode() if isinstance(value, str) else value
            else:
                parsed.values[spec.name] = (
                    value if isinstance(value, str) else _text(spec.name, value)
                )
    return parsed


def _boolean(name: str, value: str | bytes | bool) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(name, value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ContractError(Code.INVALID_ARGUMENT, f"{name} must be true, false, 1 or 0")


def _text(name: str, value: str | bytes | Any) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError as error:
            raise ContractError(Code.INVALID_ARGUMENT, f"{name} is not text") from error
    if isinstance(value, str):
        return value
    raise ContractError(Code.INVALID_ARGUMENT, f"{name} must be a string")


def success_body(
    endpoint: Endpoint, results: Mapping[str, Any], flags: Mapping[str, bool], request_id: str
) -> dict[str, Any]:
    """The 200 body: ``code``, each field whose presence rule holds, and ``request_id``.

    Args:
        results: every value the endpoint computed (more than the rules may let through).
        flags: the booleans the presence rules name (request flags and ``passed``).

    Raises:
        KeyError: a field whose rule holds was not computed (a server bug, hence 500).
    """
    body: dict[str, Any] = {"code": Code.OK.info.code}
    for spec in endpoint.response:
        if all(flags.get(flag, False) for flag in spec.present_when):
            body[spec.name] = _json_safe(results[spec.name])
    body["request_id"] = request_id
    return body


def error_body(code: Code, request_id: str, field: str | None = None,
               answer: dict[str, Any] | None = None) -> dict[str, Any]:
    """The error answer: code, message, request_id, the request field it concerns, and any
    fields the endpoint's error answer may carry (`Endpoint.error_fields`)."""
    body = {"code": code.info.code, "message": code.info.message, "request_id": request_id}
    if field is not None:
        body["field"] = field
    return body | (answer or {})


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("a response number is not finite")
    return value
