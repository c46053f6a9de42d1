"""The server's health and readiness endpoints over real HTTP, with an external Triton."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from frontend.api.app import create_app
from frontend.config import Settings
from tests.conftest import free_port


async def _client(triton_url: str) -> TestClient:
    app = create_app(Settings(triton_url=triton_url, triton_timeout_s=2, plaintext=True))
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_readyz_is_200_when_triton_and_every_model_are_ready(triton):
    client = await _client(triton.grpc_url)
    try:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        assert (health.status, await health.json()) == (200, {"status": "ok"})
        assert (ready.status, await ready.json()) == (200, {"ready": True})
    finally:
        await client.close()


async def test_readyz_is_503_while_healthz_stays_200_when_triton_is_unreachable():
    client = await _client(f"127.0.0.1:{free_port()}")
    try:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        assert health.status == 200
        assert (ready.status, await ready.json()) == (503, {"ready": False})
    finally:
        await client.close()
