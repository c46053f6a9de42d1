"""Response codes of CONTRACT.md section 4, as data.

Handlers raise `ContractError(Code.X)`; one middleware turns it into
``{"code", "message", "request_id"}`` (plus ``field`` when the failure concerns one request
field) with the code's HTTP status. The OpenAPI document and the tests read the same table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class CodeInfo:
    """One contract code: its number, the message clients see, its HTTP status, and when it
    applies."""

    code: int
    message: str
    http_status: int
    when: str


class Code(Enum):
    """Every code the server answers with (CONTRACT.md section 4)."""

    OK = CodeInfo(1000, "ok", 200, "success")
    INVALID_ARGUMENT = CodeInfo(
        1200, "invalid argument", 400,
        "missing or unknown-typed field, bad base64, bad boolean, decryption or authentication "
        "failure",
    )
    TOO_MANY_FIELDS = CodeInfo(1201, "too many fields", 400,
                               "the body has more fields or parts than FACEGATE_MAX_FIELDS")
    INVALID_IMAGE_SIZE = CodeInfo(2003, "invalid image size", 400,
                                  "width or height outside the pixel limits")
    INVALID_CONTENT_LENGTH = CodeInfo(2004, "invalid content length", 400,
                                      "photo file size outside the byte limits")
    INVALID_IMAGE_TYPE = CodeInfo(2005, "invalid image type or corrupted", 400,
                                  "not a supported image type, or undecodable")
    CORRUPTED_IMAGE = CodeInfo(2006, "corrupted image error", 400,
                               "image decodes partially / truncated")
    CORRUPTED_LIVENESS_DATA = CodeInfo(2007, "corrupted liveness data error", 400,
                                       "liveness_file fails authentication or parsing")
    INVALID_VIDEO = CodeInfo(2008, "invalid video error", 400,
                             "undecodable video, unsupported codec, or shorter than 2 s")
    DETECTION_FAILED = CodeInfo(4000, "detection failed", 400,
                                "no usable face found (none, or only fragments: README "
                                "'Which faces are compared')")
    FACE_OCCLUSION = CodeInfo(4004, "face occlusion", 400,
                              "check_quality and eyes, nose or mouth occluded")
    LIVENESS_CHECK_FAILED = CodeInfo(4007, "liveness silent check failed", 400,
                                     "liveness could not be run (e.g. no face in any frame), "
                                     "or the frames of a liveness_file are not of a live person")
    MULTIPLE_FACES = CodeInfo(4010, "multiple faces", 400,
                              "fail_when_multiple_faces and a photo shows more than one usable "
                              "face")
    SESSION_EXPIRED = CodeInfo(4101, "session expired", 400,
                               "the liveness session's token is past its expiry, or the session "
                               "store restarted since it was opened (open a new session)")
    SESSION_INVALID = CodeInfo(4102, "invalid session", 400,
                               "the session token is malformed, altered or signed by another "
                               "server, or the payload is not sealed under that session's key")
    SESSION_USED = CodeInfo(4103, "session already used", 400,
                            "the liveness session already has a capture (each is used once)")
    SESSION_NO_RESULT = CodeInfo(4104, "no session result", 400,
                                 "no result for this session id: unknown, not captured yet, or "
                                 "older than 10 minutes")

    # HTTP-level answers: the code is the HTTP status, the message the seeds' status name.
    UNAUTHORIZED = CodeInfo(401, "UNAUTHORIZED", 401,
                            "API keys are configured and the request has no valid one "
                            "(X-Api-Key or Authorization: Bearer)")
    NOT_FOUND = CodeInfo(404, "NOT_FOUND", 404, "unknown path")
    METHOD_NOT_ALLOWED = CodeInfo(405, "METHOD_NOT_ALLOWED", 405, "wrong HTTP method for the path")
    REQUEST_TIMEOUT = CodeInfo(408, "REQUEST_TIMEOUT", 408,
                               "the body did not arrive within FACEGATE_BODY_TIMEOUT_S; the "
                               "connection is closed")
    LENGTH_REQUIRED = CodeInfo(411, "LENGTH_REQUIRED", 411,
                               "a POST body without Content-Length (e.g. chunked)")
    PAYLOAD_TOO_LARGE = CodeInfo(413, "PAYLOAD_TOO_LARGE", 413,
                                 "body larger than FACEGATE_MAX_BODY_BYTES")
    TOO_MANY_REQUESTS = CodeInfo(429, "TOO_MANY_REQUESTS", 429,
                                 "the API key's client is over its rate or concurrency limit; "
                                 "Retry-After says when to try again")
    INTERNAL_ERROR = CodeInfo(500, "INTERNAL_ERROR", 500,
                              "a fault in the server; the request_id finds it in the log")
    SERVICE_UNAVAILABLE = CodeInfo(503, "SERVICE_UNAVAILABLE", 503,
                                   "overloaded (more than FACEGATE_MAX_IN_FLIGHT requests in "
                                   "progress; Retry-After: 1) or the models are unreachable")

    @property
    def info(self) -> CodeInfo:
        return self.value

    @property
    def is_http_level(self) -> bool:
        """An answer of the HTTP layer (404, 405, ...) rather than one of the contract table."""
        return self.info.code == self.info.http_status


CONTRACT_ERRORS = tuple(c for c in Code if c is not Code.OK and not c.is_http_level)
"""The error codes of CONTRACT.md section 4's table, in table order."""

HTTP_ERRORS = tuple(c for c in Code if c.is_http_level)
"""The HTTP-level error answers, each with the same JSON body."""


class ContractError(Exception):
    """A client-visible failure carrying its contract code; knows nothing about HTTP objects.

    Attributes:
        code: the contract code.
        detail: what went wrong, for the log.
        field: the request field it concerns, named in the error answer (or None).
        retry_after_s: for 429 and 503, the ``Retry-After`` to send (None: 1 s).
        answer: fields the error answer carries beside code and message (an endpoint's
            `Endpoint.error_fields`, e.g. spoof_type), asked for by the request.
    """

    def __init__(
        self, code: Code, detail: str = "", *, field: str | None = None,
        retry_after_s: int | None = None, answer: dict | None = None,
    ) -> None:
        suffix = f": {detail}" if detail else ""
        super().__init__(f"{code.info.code} {code.info.message}{suffix}")
        self.code = code
        self.detail = detail
        self.field = field
        self.retry_after_s = retry_after_s
        self.answer = answer or {}


def field_of(error: BaseException) -> str | None:
    """The request field an error concerns, when `concerning` or its raiser named one."""
    return getattr(error, "field", None)


@contextmanager
def concerning(field: str) -> Iterator[None]:
    """Errors raised in the block concern this request field (unless they name another), so
    that the error answer says which field: ``"field": "second_encrypted_image"``."""
    try:
        yield
    except Exception as error:
        if field_of(error) is None:
            error.field = field  # type: ignore[attr-defined]
        raise
