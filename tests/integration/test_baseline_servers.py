"""The load benchmark's baseline servers answer the contract route like facegate does.

Each baseline (ONNX Runtime in-process, dlib) runs in-process on a real port with the real
models; one same-person and one different-person pair of real photos must both answer 1000,
the same-person pair scoring higher, and bad fields must answer their codes without stopping
the server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from benchmarks.baselines.common import VERIFY_PATH, create_app
from frontend.crypto import KeyRing
from tests.integration.conftest import SAMPLE_IV, SAMPLE_KEY

KEYRING = KeyRing.from_strings([SAMPLE_KEY], SAMPLE_IV)
SAME = ("Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Aaron_Peirsol/Aaron_Peirsol_0002.jpg")
DIFFERENT = ("Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Colin_Powell/Colin_Powell_0001.jpg")


def _load(name: str, model_repository: Path):
    if name == "ort":
        from benchmarks.baselines.ort_server import load_ort

        return lambda pool: load_ort(pool, model_repository)
    from benchmarks.baselines.dlib_server import load_dlib

    return load_dlib


@pytest.fixture(scope="module", params=["ort", "dlib"])
async def baseline(request, model_repository: Path) -> AsyncIterator[str]:
    """The base URL of a baseline server on a free port."""
    app = create_app(_load(request.param, model_repository), keyring=KEYRING, workers=2)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url(""))
    await server.close()


async def _verify(base: str, first: str, second: str) -> dict:
    fields = {"first_encrypted_image": first, "second_encrypted_image": second}
    async with aiohttp.ClientSession() as session:
        async with session.post(base + VERIFY_PATH, data=fields) as response:
            body = await response.json()
            assert (response.status == 200) == (body["code"] == 1000), body
            assert body["request_id"]
            return body


async def test_baseline_answers_codes_and_ranks_pairs(baseline: str, data_dir: Path) -> None:
    def sealed(name: str) -> str:
        return KEYRING.encrypt((data_dir / "faces" / name).read_bytes(), legacy=True)

    photo = sealed(SAME[0])
    assert (await _verify(baseline, "bm90IGVuY3J5cHRlZA==", photo))["code"] == 1200
    assert (await _verify(baseline, photo, KEYRING.encrypt(b"not a photo", legacy=True)))[
        "code"
    ] == 2005

    same = await _verify(baseline, photo, sealed(SAME[1]))
    different = await _verify(baseline, photo, sealed(DIFFERENT[1]))
    assert same["code"] == different["code"] == 1000, (same, different)
    assert 0 <= different["verification_score"] < same["verification_score"] <= 1

    async with aiohttp.ClientSession() as session:
        async with session.get(baseline + "/healthz") as response:
            assert response.status == 200
