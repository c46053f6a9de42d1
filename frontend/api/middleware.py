"""The middleware every request passes, outermost first:

1. `request_ids`: a fresh ``request_id`` for each request, sent back as ``X-Request-Id`` on
   every answer, error or not.
2. `errors`: any failure becomes the contract's JSON error body (`frontend/api/errors.py`
   decides the code, `concerning` the field it names); an unexpected one is logged with its
   trace and answered 500.
3. `body_limits`: POST bodies need a Content-Length (411) within the limit (413), checked
   from the header before a byte is read. Capacity is checked before the body is read and
   held once it has arrived (`frontend.api.admission`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from frontend.api import logs
from frontend.api.errors import code_for
from frontend.api.metrics import CODE, METRICS
from frontend.contract.codes import Code, ContractError, field_of
from frontend.contract.fields import error_body

LOGGER = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID = web.RequestKey("request_id", str)
REQUEST_ID_HEADER = "X-Request-Id"


def request_id_of(request: web.Request) -> str:
    return request[REQUEST_ID]


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[REQUEST_ID] = uuid.uuid4().hex
    logs.REQUEST_ID.set(request[REQUEST_ID])
    response = await handler(request)
    response.headers[REQUEST_ID_HEADER] = request[REQUEST_ID]
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _error_response(request, code_for(error), error.headers)
    except ContractError as error:
        LOGGER.info("%s %s: %s", request_id_of(request), request.path, error)
        return _error_response(
            request, error.code, field=field_of(error), retry_after_s=error.retry_after_s,
            answer=error.answer,
        )
    except Exception as error:  # noqa: BLE001 - the one place every failure is answered
        code = code_for(error)
        if code not in (Code.INTERNAL_ERROR, Code.SERVICE_UNAVAILABLE) and METRICS in request.app:
            request.app[METRICS].input_failures.labels(type(error).__name__).inc()
        if code is Code.INTERNAL_ERROR:
            LOGGER.exception("%s %s: internal error", request_id_of(request), request.path)
        else:
            LOGGER.info(
                "%s %s: %s: %s", request_id_of(request), request.path, type(error).__name__, error
            )
        return _error_response(request, code, field=field_of(error))


_UNREAD_BODY = (Code.REQUEST_TIMEOUT, Code.LENGTH_REQUIRED, Code.PAYLOAD_TOO_LARGE)


def _error_response(
    request: web.Request, code: Code, headers=None, *, field: str | None = None,
    retry_after_s: int | None = None, answer: dict | None = None,
) -> web.Response:
    """The error answer; a client error (400) names the request field it concerns, if any,
    and carries the fields its request asked for (`Endpoint.error_fields`)."""
    request[CODE] = code.info.code
    client_error = code.info.http_status == 400
    response = web.json_response(
        error_body(code, request_id_of(request), field if client_error else None,
                   answer if client_error else None),
        status=code.info.http_status,
    )
    if code in (Code.SERVICE_UNAVAILABLE, Code.TOO_MANY_REQUESTS):
        response.headers[hdrs.RETRY_AFTER] = str(retry_after_s or 1)
    if code is Code.UNAUTHORIZED:
        response.headers[hdrs.WWW_AUTHENTICATE] = 'Bearer realm="facegate"'

    if code in _UNREAD_BODY:
        response.force_close()  # the rest of the body is not worth reading
    if headers and hdrs.ALLOW in headers:
        response.headers[hdrs.ALLOW] = headers[hdrs.ALLOW]
    return response


def body_limits(max_body_bytes: int):
    """A POST needs a Content-Length within the limit, decided from the headers before a byte
    of the body is read (411, 413). Capacity is held once the body has arrived
    (`frontend.api.admission`)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == hdrs.METH_POST:
            if request.content_length is None:
                raise ContractError(Code.LENGTH_REQUIRED, "a POST body needs Content-Length")
            if request.content_length > max_body_bytes:
                raise ContractError(
                    Code.PAYLOAD_TOO_LARGE,
                    f"{request.content_length} bytes, limit {max_body_bytes}",
                )
        return await handler(request)

    return middleware
