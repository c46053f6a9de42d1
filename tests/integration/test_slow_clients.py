"""Slow senders are cut off and hold no capacity while they trickle (real server, real models)."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from frontend.contract.codes import Code
from frontend.contract.fields import IMAGE_VERIFICATION
from tests.conftest import DATA
from tests.integration.http import serving

PHOTO = DATA / "faces/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
SLOW_CLIENTS = 64


async def _connect(api):
    url = api.session._base_url  # noqa: SLF001 - the test client's own server
    return await asyncio.open_connection(url.host, url.port)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before closing the connection, within `seconds`."""
    return await asyncio.wait_for(reader.read(), seconds)


async def _trickle_body(api, stop: asyncio.Event) -> None:
    """Headers at once, then a form body one byte every 0.5 s."""
    reader, writer = await _connect(api)
    writer.write(
        f"POST {IMAGE_VERIFICATION.path} HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
        .encode()
    )
    try:
        while not stop.is_set():
            writer.write(b"a")
            await writer.drain()
            await asyncio.sleep(0.5)
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def test_64_slow_senders_do_not_stop_a_65th_client_being_served(
    server_settings, keyring, data_dir
):
    settings = dataclasses.replace(server_settings, max_in_flight=SLOW_CLIENTS)
    async with serving(settings, keyring) as api:
        stop = asyncio.Event()
        slow = [asyncio.create_task(_trickle_body(api, stop)) for _ in range(SLOW_CLIENTS)]
        await asyncio.sleep(1.5)  # every slow sender is mid-body
        photo = api.seal(PHOTO.read_bytes())
        started = time.monotonic()
        answer = await api.post(
            IMAGE_VERIFICATION.path,
            {"first_encrypted_image": photo, "second_encrypted_image": photo},
        )
        assert answer.code == 1000 and answer.body["verification_score"] > 0.9
        assert time.monotonic() - started < 10
        stop.set()
        await asyncio.gather(*slow)


async def test_a_body_that_does_not_arrive_in_time_is_408_and_the_connection_is_closed(
    server_settings, keyring
):
    settings = dataclasses.replace(server_settings, body_timeout_s=1.0)
    async with serving(settings, keyring) as api:
        reader, writer = await _connect(api)
        writer.write(
            f"POST {IMAGE_VERIFICATION.path} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nab"
            .encode()
        )
        answer = await _closed_within(reader, 5)
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408")
        assert b'"code": %d' % Code.REQUEST_TIMEOUT.info.code in body


async def test_headers_that_do_not_arrive_in_time_close_the_connection(server_settings, keyring):
    settings = dataclasses.replace(server_settings, header_timeout_s=1.0)
    async with serving(settings, keyring) as api:
        connections = [await _connect(api) for _ in range(20)]
        for _, writer in connections:
            writer.write(b"POST /identity/image_verification/stateless HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        for reader, writer in connections:
            assert await _closed_within(reader, 5) == b""
            writer.close()
        assert time.monotonic() - started < 5
