"""Response codes of CONTRACT.md section 4, as data.

Handlers raise `ContractError(Code.X)`; one middleware turns it into
``{"code", "message", "request_id"}`` with the code's HTTP status. The OpenAPI document and the
tests read the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class CodeInfo:
    """One contract code: its number, the message clients see, its HTTP status, and when it applies."""

    code: int
    message: str
    http_status: int
    when: str


class Code(Enum):
    """Every code the server answers with (CONTRACT.md section 4)."""

    OK = CodeInfo(1000, "ok", 200, "success")
    INVALID_ARGUMENT = CodeInfo(
        1200, "invalid argument", 400,
        "missing or unknown-typed field, bad base64, bad boolean, decryption or authentication failure",
    )
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
    DETECTION_FAILED = CodeInfo(4000, "detection failed", 400, "no face found")
    FACE_OCCLUSION = CodeInfo(4004, "face occlusion", 400,
                              "check_quality and eyes, nose or mouth occluded")
    LIVENESS_CHECK_FAILED = CodeInfo(4007, "liveness silent check failed", 400,
                                     "liveness could not be run (e.g. no face in any frame)")

    @property
    def info(self) -> CodeInfo:
        return self.value


class ContractError(Exception):
    """A client-visible failure carrying its contract code; knows nothing about HTTP objects."""

    def __init__(self, code: Code, detail: str = "") -> None:
        super().__init__(f"{code.info.code} {code.info.message}" + (f": {detail}" if detail else ""))
        self.code = code
        self.detail = detail
