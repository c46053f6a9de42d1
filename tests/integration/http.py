"""A client for the integration tests: encrypts like the SenseID SDK, sends the three body
forms, and checks every answer against the server's own OpenAPI document and the
request-id rule, so each test that sends a request also checks the contract's shape.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jsonschema
from aiohttp import web
from aiohttp.test_utils import TestServer

from frontend.api.app import create_app
from frontend.config import Settings
from frontend.contract.codes import Code
from frontend.crypto import KeyRing
from tests.conftest import free_port


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def code(self) -> int:
        return self.body["code"]


@dataclass
class Api:
    session: aiohttp.ClientSession
    keyring: KeyRing
    app: web.Application
    openapi: dict[str, Any] = field(default_factory=dict)

    def seal(self, data: bytes, *, legacy: bool = False) -> str:
        return self.keyring.encrypt(data, legacy=legacy)

    async def post(
        self,
        path: str,
        fields: dict[str, Any],
        *,
        form: str = "urlencoded",
        files: dict[str, bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """POST fields as ``urlencoded``, ``multipart`` or ``json``; files force multipart."""
        # Large bodies go as file objects: aiohttp warns that big raw bytes block the loop.
        if files or form == "multipart":
            data = aiohttp.FormData()
            for name, value in fields.items():
                data.add_field(name, str(value).lower() if isinstance(value, bool) else value)
            for name, content in (files or {}).items():
                data.add_field(
                    name,
                    io.BytesIO(content),
                    filename=f"{name}.bin",
                    content_type="application/octet-stream",
                )
            response = await self.session.post(path, data=data, headers=headers)
        elif form == "json":
            response = await self.session.post(
                path,
                data=io.BytesIO(json.dumps(fields).encode()),
                headers={"Content-Type": "application/json", **(headers or {})},
            )
        else:
            encoded = {k: str(v).lower() if isinstance(v, bool) else v for k, v in fields.items()}
            response = await self.session.post(
                path,
                data=io.BytesIO(urlencode(encoded).encode()),
                headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
            )
        return await self.answer(response, path, "post")

    async def answer(self, response: aiohttp.ClientResponse, path: str, method: str) -> Answer:
        async with response:
            body = json.loads(await response.read())
        answer = Answer(response.status, body, dict(response.headers))
        assert body["request_id"] and response.headers["X-Request-Id"] == body["request_id"]
        jsonschema.validate(body, self.response_schema(path, method, response.status))
        return answer

    def response_schema(self, path: str, method: str, status: int) -> dict[str, Any]:
        """The schema the OpenAPI document gives this answer."""
        components = self.openapi["components"]["responses"]
        operation = self.openapi["paths"].get(path, {}).get(method)
        if operation is None:
            key = "http404" if path not in self.openapi["paths"] else "http405"
            return components[key]["content"]["application/json"]["schema"]
        response = operation["responses"][str(status)]
        if "$ref" in response:
            response = components[response["$ref"].rsplit("/", 1)[-1]]
        return response["content"]["application/json"]["schema"]


def assert_error(answer: Answer, code: Code, field: str | None = None) -> None:
    """The whole error body: code, message, request_id, and `field` exactly when one is named."""
    assert (answer.status, answer.body["code"], answer.body["message"]) == (
        code.info.http_status,
        code.info.code,
        code.info.message,
    )
    assert answer.body.get("field") == field
    assert set(answer.body) == {"code", "message", "request_id"} | ({"field"} if field else set())


@contextlib.asynccontextmanager
async def serving(settings: Settings, keyring: KeyRing) -> AsyncIterator[Api]:
    """The facegate app under these settings on a free port, and an `Api` talking to it."""
    app = create_app(settings)
    server = TestServer(app, port=free_port())
    await server.start_server(**settings.server_options)
    try:
        async with aiohttp.ClientSession(str(server.make_url("/"))) as session:
            api = Api(session, keyring, app)
            api.openapi = await (await session.get("/openapi.json")).json()
            yield api
    finally:
        await server.close()
