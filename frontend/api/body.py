"""A request body -> its raw fields, whatever the content type the contract allows.

- ``application/x-www-form-urlencoded`` (the SenseID samples): values are text. A ``+`` that
  a careless client left unescaped arrives as a space; base64 never has spaces, so
  `frontend.crypto` reads them back as ``+``.
- ``multipart/form-data``: text parts are text, file parts are bytes. Parts are read into
  memory (the body is already bounded by ``max_body_bytes``), never into temporary files.
- ``application/json``: an object whose values are strings or booleans.

Anything else, or a body that does not parse, is 1200.
"""

from __future__ import annotations

import json

from aiohttp import BodyPartReader, web

from frontend.contract.codes import Code, ContractError

RawFields = dict[str, "str | bytes | bool"]


async def read_fields(request: web.Request) -> RawFields:
    """The body's fields; the first value wins when a name repeats."""
    content_type = request.content_type
    if content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        return {name: form.getone(name) for name in form.keys()}  # type: ignore[misc]
    if content_type == "multipart/form-data":
        return await _multipart(request)
    if content_type == "application/json":
        return await _json(request)
    raise ContractError(
        Code.INVALID_ARGUMENT,
        f"unsupported Content-Type {content_type!r}: use application/x-www-form-urlencoded, "
        "multipart/form-data or application/json",
    )


async def _multipart(request: web.Request) -> RawFields:
    fields: RawFields = {}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or not part.name:
                raise ContractError(Code.INVALID_ARGUMENT, "a multipart part without a name")
            data = await part.read(decode=True)
            value: str | bytes = data
            if part.filename is None:
                try:
                    value = data.decode(part.get_charset(default="utf-8"))
                except (UnicodeDecodeError, LookupError):
                    value = data
            fields.setdefault(part.name, value)
    except (ValueError, AssertionError) as error:
        raise ContractError(Code.INVALID_ARGUMENT, f"malformed multipart body: {error}") from error
    return fields


async def _json(request: web.Request) -> RawFields:
    try:
        body = json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ContractError(Code.INVALID_ARGUMENT, "the body is not JSON") from error
    if not isinstance(body, dict):
        raise ContractError(Code.INVALID_ARGUMENT, "the JSON body must be an object")
    for name, value in body.items():
        if not isinstance(value, str | bool):
            raise ContractError(Code.INVALID_ARGUMENT, f"{name} must be a string or a boolean")
    return body
