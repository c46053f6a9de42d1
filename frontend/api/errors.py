"""The one place where a failure becomes a contract code.

Lower layers raise their own typed errors (`DecryptionError`, `PhotoError`, ...) and know
nothing of codes; the error middleware asks `code_for` which answer each one gets. An
exception that is not listed is a server fault: 500 with the request_id, logged with its trace.
"""

from __future__ import annotations

from aiohttp import web

from frontend.contract.codes import Code, ContractError
from frontend.contract.liveness_file import LivenessFileError
from frontend.crypto import DecryptionError
from frontend.inference.runtime import InferenceError
from preprocessing.image import (
    PhotoBytesError,
    PhotoError,
    PhotoSizeError,
    PhotoTruncatedError,
    PhotoTypeError,
)
from preprocessing.video import VideoError

_BY_TYPE: tuple[tuple[type[BaseException], Code], ...] = (
    (DecryptionError, Code.INVALID_ARGUMENT),
    (PhotoBytesError, Code.INVALID_CONTENT_LENGTH),
    (PhotoSizeError, Code.INVALID_IMAGE_SIZE),
    (PhotoTypeError, Code.INVALID_IMAGE_TYPE),
    (PhotoTruncatedError, Code.CORRUPTED_IMAGE),
    (PhotoError, Code.INVALID_IMAGE_TYPE),
    (LivenessFileError, Code.CORRUPTED_LIVENESS_DATA),
    (VideoError, Code.INVALID_VIDEO),
    (InferenceError, Code.SERVICE_UNAVAILABLE),
)

_BY_HTTP_STATUS = {
    400: Code.INVALID_ARGUMENT,
    404: Code.NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED,
    411: Code.LENGTH_REQUIRED,
    413: Code.PAYLOAD_TOO_LARGE,
    503: Code.SERVICE_UNAVAILABLE,
}


def code_for(error: BaseException) -> Code:
    """The answer a failure gets; `Code.INTERNAL_ERROR` for anything unexpected."""
    if isinstance(error, ContractError):
        return error.code
    if isinstance(error, web.HTTPException):
        return _BY_HTTP_STATUS.get(error.status, Code.INTERNAL_ERROR)
    for kind, code in _BY_TYPE:
        if isinstance(error, kind):
            return code
    return Code.INTERNAL_ERROR
