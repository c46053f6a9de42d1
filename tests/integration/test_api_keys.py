"""Who may call: one test per rule of FACEGATE_API_KEYS_FILE, over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import pytest

from frontend.api.auth import key_hash
from frontend.config import Settings, SettingsError
from frontend.contract.codes import Code
from frontend.contract.fields import FACE_QUALITY, SILENT_DETECTION
from frontend.contract.sessions import SESSION_CAPTURE, SESSION_OPEN, SESSION_RESULT
from tests.conftest import DATA
from tests.integration.http import assert_error, serving

PHOTO = DATA / "faces/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
VIDEO = DATA / "video/live/liveportrait_driving_d0.mp4"
KEY, OTHER_KEY, METRICS_KEY = "client-key-1", "client-key-2", "metrics-key"


def _write(path, clients, metrics=(METRICS_KEY,)) -> None:
    path.write_text(json.dumps({
        "clients": [{**c, "keys": [key_hash(k) for k in c["keys"]]} for c in clients],
        "metrics_keys": [key_hash(k) for k in metrics],
    }))


@pytest.fixture
def keys_file(tmp_path):
    path = tmp_path / "keys.json"
    _write(path, [{"name": "app", "keys": [KEY]}])
    return path


def _settings(server_settings: Settings, path) -> Settings:
    return dataclasses.replace(server_settings, api_keys_file=str(path))


async def _quality(api, headers):
    return await api.post(
        FACE_QUALITY.path, {"encrypted_image": api.seal(PHOTO.read_bytes())}, headers=headers
    )


async def test_a_request_without_a_valid_key_is_401(server_settings, keyring, keys_file):
    async with serving(_settings(server_settings, keys_file), keyring) as api:
        for headers in ({}, {"X-Api-Key": "wrong"}, {"Authorization": "Bearer wrong"},
                        {"Authorization": f"Basic {KEY}"}):
            answer = await _quality(api, headers)
            assert_error(answer, Code.UNAUTHORIZED)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_key_is_taken_as_x_api_key_or_as_a_bearer_token(
    server_settings, keyring, keys_file
):
    async with serving(_settings(server_settings, keys_file), keyring) as api:
        assert (await _quality(api, {"X-Api-Key": KEY})).code == 1000
        assert (await _quality(api, {"Authorization": f"Bearer {KEY}"})).code == 1000


async def test_the_probes_stay_open_and_metrics_take_their_own_key(
    server_settings, keyring, keys_file
):
    async with serving(_settings(server_settings, keys_file), keyring) as api:
        for path in ("/healthz", "/readyz"):
            async with api.session.get(path) as response:
                assert response.status == 200
        for headers, status in (({}, 401), ({"X-Api-Key": KEY}, 401),
                                ({"X-Api-Key": METRICS_KEY}, 200)):
            async with api.session.get("/metrics", headers=headers) as response:
                assert response.status == status


async def test_a_session_is_opened_with_a_key_and_completed_by_a_page_without_one(
    server_settings, keyring, keys_file
):
    async with serving(_settings(server_settings, keys_file), keyring) as api:
        assert_error(await api.post(SESSION_OPEN.path, {}), Code.UNAUTHORIZED)
        opened = await api.post(SESSION_OPEN.path, {}, headers={"X-Api-Key": KEY})
        assert opened.code == 1000
        async with api.session.get("/capture/") as page:
            assert page.status == 200
        tampered = {"session_token": opened.body["session_token"] + "x",
                    "encrypted_video": "fg1.AAAA"}
        assert_error(await api.post(SESSION_CAPTURE.path, tampered), Code.SESSION_INVALID,
                     "session_token")  # the token, not a key, decides
        result = await api.post(SESSION_RESULT.path, {"session_id": "x"})
        assert_error(result, Code.UNAUTHORIZED)


async def test_keys_are_rotated_by_editing_the_file_without_a_restart(
    server_settings, keyring, keys_file
):
    async with serving(_settings(server_settings, keys_file), keyring) as api:
        assert (await _quality(api, {"X-Api-Key": KEY})).code == 1000
        _write(keys_file, [{"name": "app", "keys": [KEY, OTHER_KEY]}])
        await asyncio.sleep(1.1)
        assert (await _quality(api, {"X-Api-Key": OTHER_KEY})).code == 1000
        _write(keys_file, [{"name": "app", "keys": [OTHER_KEY]}])
        await asyncio.sleep(1.1)
        assert_error(await _quality(api, {"X-Api-Key": KEY}), Code.UNAUTHORIZED)
        keys_file.write_text("{ broken")  # a bad edit keeps the last good keys
        await asyncio.sleep(1.1)
        assert (await _quality(api, {"X-Api-Key": OTHER_KEY})).code == 1000


async def test_a_client_over_its_rate_is_429_with_retry_after(server_settings, keyring, tmp_path):
    path = tmp_path / "keys.json"
    _write(path, [{"name": "slow", "keys": [KEY], "rate_per_s": 0.5, "burst": 2}])
    async with serving(_settings(server_settings, path), keyring) as api:
        codes = [(await _quality(api, {"X-Api-Key": KEY})) for _ in range(3)]
        assert [a.code for a in codes[:2]] == [1000, 1000]
        assert_error(codes[2], Code.TOO_MANY_REQUESTS)
        assert int(codes[2].headers["Retry-After"]) >= 1


async def test_a_client_over_its_concurrency_is_429(server_settings, keyring, tmp_path):
    path = tmp_path / "keys.json"
    _write(path, [{"name": "one-at-a-time", "keys": [KEY], "max_in_flight": 1},
                  {"name": "other", "keys": [OTHER_KEY]}])
    async with serving(_settings(server_settings, path), keyring) as api:
        video = api.seal(VIDEO.read_bytes())
        slow = asyncio.create_task(api.post(
            SILENT_DETECTION.path, {"encrypted_video": video}, headers={"X-Api-Key": KEY}
        ))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        assert_error(await _quality(api, {"X-Api-Key": KEY}), Code.TOO_MANY_REQUESTS)
        assert time.monotonic() - started < 1
        assert (await _quality(api, {"X-Api-Key": OTHER_KEY})).code == 1000
        assert (await slow).code == 1000


def test_an_unusable_keys_file_or_a_missing_required_one_stops_the_start(tmp_path):
    from frontend.api.app import create_app

    bad = tmp_path / "keys.json"
    bad.write_text(json.dumps({"clients": [{"name": "x", "keys": ["plain-text-key"]}]}))
    with pytest.raises(SettingsError, match="sha256"):
        create_app(Settings(plaintext=True, api_keys_file=str(bad)))
    with pytest.raises(SettingsError, match="FACEGATE_REQUIRE_API_KEYS"):
        create_app(Settings(plaintext=True, require_api_keys=True))
