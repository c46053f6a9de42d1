"""The liveness-session endpoints (README "Liveness sessions"), as data like `fields.py`'s.

open and result are the integrator's backend's (API key); guide and capture are the browser
page's, authenticated by the session token and sealed under the session's own key.
"""

from __future__ import annotations

from frontend.contract.codes import Code
from frontend.contract.fields import (
    AUTO_ROTATE,
    CHECK_QUALITY,
    FAIL_WHEN_MULTIPLE_FACES,
    PHOTO_CODES,
    PHOTO_HELP,
    RECT,
    RETURN_THRESHOLDS,
    SCORE,
    THRESHOLDS,
    VERIFICATION_SCORE,
    VERIFICATION_SCORES,
    Endpoint,
    FieldKind,
    RequestField,
    ResponseField,
    extra_references,
)
from preprocessing.challenge import MAX_ACTIONS, MIN_ACTIONS, Action

_ACTION = {"type": "string", "enum": [a.value for a in Action]}
_TOKEN = RequestField(
    "session_token", FieldKind.TEXT,
    "The session_token the session's open answered (the page has it from capture_url).",
    required=True,
)
_SESSION_CODES = (Code.INVALID_ARGUMENT, Code.SESSION_EXPIRED, Code.SESSION_INVALID)
_SEALED = "sealed under the session's session_key (the nonce form, README 'Encryption')"

SESSION_OPEN = Endpoint(
    "/liveness/session/open",
    "session_open",
    "Open a liveness session for a browser capture: a signed token, the session's own key and "
    "a challenge.",
    (
        RequestField(
            "actions", FieldKind.TEXT,
            f"Optional: the challenge, {MIN_ACTIONS} to {MAX_ACTIONS} comma-separated actions of "
            f"{', '.join(a.value for a in Action)}, no action twice in a row. Default: two "
            "drawn at random (a fixed challenge lets a recording be prepared: tests only).",
        ),
    ),
    (
        ResponseField("session_id", {"type": "string"},
                      "The session's id: the backend reads the result with it."),
        ResponseField("session_token", {"type": "string"},
                      "Signed session claims for the page (id, expiry, challenge)."),
        ResponseField(
            "session_key", {"type": "string", "contentEncoding": "base64"},
            "The session's AES-256-GCM key (32 bytes, base64): derived from the server secret "
            "and the id, good for this session only. Give it to the page, never log it.",
        ),
        ResponseField("expires_in_s", {"type": "integer", "minimum": 1},
                      "Seconds until the token expires (4101 after)."),
        ResponseField(
            "challenge",
            {"type": "array", "items": {
                "type": "object",
                "properties": {"action": _ACTION, "instruction": {"type": "string"}},
                "required": ["action", "instruction"], "additionalProperties": False,
            }},
            "The moves the user is asked for, in order, with the text shown for each.",
        ),
        ResponseField("record_s", {"type": "integer", "minimum": 3},
                      "The longest recording the page should send."),
        ResponseField(
            "capture_url", {"type": "string"},
            "The facegate capture page for this session, relative to the server: the token and "
            "key ride in the URL fragment, which browsers never send to a server.",
        ),
    ),
    (Code.INVALID_ARGUMENT,),
)

SESSION_GUIDE = Endpoint(
    "/liveness/session/guide",
    "session_guide",
    "Guidance for one camera frame of a session's page (no decision is made here).",
    (
        _TOKEN,
        RequestField("encrypted_image", FieldKind.ENCRYPTED,
                     f"One camera frame, JPEG or PNG, {_SEALED}.", required=True),
    ),
    (
        ResponseField(
            "hint",
            {"type": "string", "enum": ["ok", "no_face", "several_faces", "too_far",
                                        "too_close", "not_centred", "too_dark", "too_bright"]},
            "What the user should fix first; ok when the face is placed for the capture.",
        ),
        ResponseField("rect", RECT, "The guided face, pixels of the frame.", ("face",)),
        ResponseField(
            "pose",
            {"type": "object",
             "properties": {"yaw": {"type": "number"}, "pitch": {"type": "number"}},
             "required": ["yaw", "pitch"], "additionalProperties": False},
            "Head pose, degrees: yaw > 0 the person turned to their left (unmirrored frame), "
            "pitch > 0 looking up.",
            ("face",),
        ),
        ResponseField(
            "action", {"oneOf": [_ACTION, {"type": "null"}]},
            "The move this pose shows against a frontal start, or null (progress for the page; "
            "the decision is made on the recording).",
        ),
    ),
    (*_SESSION_CODES, *(c for c in PHOTO_CODES if c is not Code.DETECTION_FAILED)),
    public=True,
)

_DECISION = (
    ResponseField("passed", {"type": "boolean"},
                  "The challenge's moves were made in order and in time, and the silent "
                  "liveness passed on the same frames."),
    ResponseField(
        "failed_check", {"type": "string", "enum": ["challenge", "capture", "liveness"]},
        "The check that refused it: challenge (moves not made), capture (face not seen for "
        "2 s), liveness (the silent check: a spoof). Only when not passed.",
        ("failed",),
    ),
)

SESSION_CAPTURE = Endpoint(
    "/liveness/session/capture",
    "session_capture",
    "The page's recording: the challenge and the silent liveness are checked; once per session.",
    (
        _TOKEN,
        RequestField("encrypted_video", FieldKind.ENCRYPTED,
                     f"The recording (WebM from MediaRecorder, or MP4), {_SEALED}.",
                     required=True),
    ),
    (
        *_DECISION,
        ResponseField("retry_advice", {"type": "string"},
                      "What the user can do differently (only when not passed).", ("failed",)),
    ),
    (*_SESSION_CODES, Code.SESSION_USED, Code.INVALID_VIDEO, Code.LIVENESS_CHECK_FAILED),
    public=True,
)

SESSION_RESULT = Endpoint(
    "/liveness/session/result",
    "session_result",
    "A session's result for the backend, and its best frame against reference photos.",
    (
        RequestField("session_id", FieldKind.TEXT, "The session_id open answered.",
                     required=True),
        RequestField(
            "encrypted_image", FieldKind.ENCRYPTED,
            f"Optional reference photo. {PHOTO_HELP} The best frame of a passed capture is "
            "compared with it.",
        ),
        *extra_references("encrypted_image"),
        AUTO_ROTATE,
        CHECK_QUALITY,
        RETURN_THRESHOLDS,
        FAIL_WHEN_MULTIPLE_FACES,
    ),
    (
        *_DECISION,
        ResponseField(
            "challenge",
            {"type": "array", "items": {
                "type": "object",
                "properties": {"action": _ACTION, "done": {"type": "boolean"},
                               "at_s": {"type": "number", "minimum": 0}},
                "required": ["action", "done"], "additionalProperties": False,
            }},
            "Each move, whether it was made and when (seconds into the recording).",
        ),
        ResponseField("challenge_passed", {"type": "boolean"}, "Every move made, in order."),
        ResponseField("liveness_score", SCORE, "The silent liveness score of the recording."),
        ResponseField("liveness_status", {"type": "string",
                                          "enum": ["ok", "hack", "short_time"]},
                      "As silent_detection's."),
        ResponseField(
            "spoof_type", {"type": "string", "enum": ["screen", "print", "still_photo",
                                                      "unknown"]},
            "As silent_detection's, when liveness_status is hack.", ("hack",),
        ),
        ResponseField("captured_at", {"type": "number"}, "When the capture was decided, Unix "
                      "seconds."),
        ResponseField(**{**VERIFICATION_SCORE.__dict__, "present_when": ("passed", "compared")}),
        ResponseField(**{**VERIFICATION_SCORES.__dict__,
                         "present_when": ("passed", "compared", "several_references")}),
        THRESHOLDS,
    ),
    (Code.INVALID_ARGUMENT, Code.SESSION_NO_RESULT, *PHOTO_CODES[1:],
     Code.FACE_OCCLUSION, Code.MULTIPLE_FACES),
)

SESSION_ENDPOINTS = (SESSION_OPEN, SESSION_GUIDE, SESSION_CAPTURE, SESSION_RESULT)
