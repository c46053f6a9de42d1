"""Liveness sessions over real HTTP on the real models: open, guide, capture, result, and
every refusal (the browser itself drives them in test_capture_page.py)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses

import cv2
import pytest

from benchmarks.synth_attacks import still_photo_video
from frontend.contract.codes import Code
from frontend.contract.sessions import SESSION_CAPTURE, SESSION_GUIDE, SESSION_OPEN, SESSION_RESULT
from frontend.crypto import KeyRing
from preprocessing.video import VideoLimits, probe_and_decode
from tests.conftest import DATA
from tests.integration.http import assert_error, serving

TURNS = DATA / "video/live/liveportrait_driving_d12.mp4"  # left at 1.4-2.0 s, right at 3.2-3.6 s
REPLAY = DATA / "spoof/video/manikantha_fake_replay.mp4"


def _seal(session: dict, data: bytes) -> str:
    key = base64.b64decode(session["session_key"])
    return KeyRing(keys=(key,)).encrypt(data)


async def _open(api, actions: str = "turn_left,turn_right") -> dict:
    answer = await api.post(SESSION_OPEN.path, {"actions": actions}, form="json")
    assert answer.code == 1000, answer.body
    return answer.body


async def _capture(api, session: dict, video: bytes, *, sealed: str | None = None):
    return await api.post(SESSION_CAPTURE.path, {
        "session_token": session["session_token"],
        "encrypted_video": sealed or _seal(session, video),
    }, form="json")


def _frame_jpeg(path, at_s: float) -> bytes:
    video = probe_and_decode(path.read_bytes(), VideoLimits(), interval_s=0.2, window_s=10.0)
    frame = min(video.frames, key=lambda f: abs(f.timestamp_s - at_s))
    return cv2.imencode(".jpg", frame.image)[1].tobytes()


async def test_opening_a_session_gives_its_token_key_challenge_and_page(api):
    session = await _open(api, "look_up,turn_right")
    assert [c["action"] for c in session["challenge"]] == ["look_up", "turn_right"]
    assert session["challenge"][0]["instruction"] == "Look up"
    assert len(base64.b64decode(session["session_key"])) == 32
    assert session["capture_url"].startswith("/capture/#token=")
    assert 0 < session["expires_in_s"] <= 120


async def test_a_session_without_actions_draws_two(api):
    answer = await api.post(SESSION_OPEN.path, {})
    assert len(answer.body["challenge"]) == 2


async def test_a_challenge_that_is_not_one_is_1200_naming_actions(api):
    answer = await api.post(SESSION_OPEN.path, {"actions": "turn_left,wink"})
    assert_error(answer, Code.INVALID_ARGUMENT, "actions")


async def test_a_live_capture_that_makes_the_moves_passes_and_its_result_compares(api):
    session = await _open(api)
    answer = await _capture(api, session, TURNS.read_bytes())
    assert answer.code == 1000 and answer.body["passed"] is True, answer.body
    same = _frame_jpeg(TURNS, 5.0)
    other = (DATA / "faces/Tony_Blair/Tony_Blair_0001.jpg").read_bytes()
    result = await api.post(SESSION_RESULT.path, {
        "session_id": session["session_id"], "encrypted_image": api.seal(same),
        "encrypted_image_2": api.seal(other), "return_thresholds": "true",
    })
    body = result.body
    assert body["passed"] and body["challenge_passed"] and body["liveness_status"] == "ok"
    assert [(s["action"], s["done"]) for s in body["challenge"]] == [
        ("turn_left", True), ("turn_right", True)]
    assert body["challenge"][0]["at_s"] < body["challenge"][1]["at_s"]
    assert body["verification_scores"][0] >= 0.7 > body["verification_scores"][1]
    assert body["verification_score"] == body["verification_scores"][0]


async def test_a_capture_is_used_once(api):
    session = await _open(api)
    video = TURNS.read_bytes()
    assert (await _capture(api, session, video)).code == 1000
    assert_error(await _capture(api, session, video), Code.SESSION_USED, "session_token")


async def test_a_live_capture_that_does_not_make_the_moves_fails_the_challenge(api):
    session = await _open(api, "look_up,look_down")
    answer = await _capture(api, session, TURNS.read_bytes())
    assert answer.body["passed"] is False and answer.body["failed_check"] == "challenge"
    assert answer.body["retry_advice"]
    result = await api.post(SESSION_RESULT.path, {"session_id": session["session_id"],
                                                  "encrypted_image": api.seal(
                                                      _frame_jpeg(TURNS, 5.0))})
    assert result.body["challenge_passed"] is False
    assert [s["done"] for s in result.body["challenge"]] == [False, False]
    assert "verification_score" not in result.body  # no face is vouched for


@pytest.mark.parametrize("attack", ["replay", "still_photo"])
async def test_an_attack_fails(api, attack):
    if attack == "replay":
        video = REPLAY.read_bytes()
    else:
        video = still_photo_video(cv2.imread(str(DATA / "faces/Tony_Blair/Tony_Blair_0001.jpg")),
                                  seed=6)
    answer = await _capture(api, await _open(api), video)
    assert answer.code == 1000 and answer.body["passed"] is False


async def test_a_tampered_token_is_4102(api):
    session = await _open(api)
    forged = dict(session, session_token=session["session_token"][:-3] + "AAA")
    answer = await _capture(api, forged, b"", sealed=_seal(session, TURNS.read_bytes()))
    assert_error(answer, Code.SESSION_INVALID, "session_token")


async def test_a_capture_sealed_for_another_session_or_with_the_server_key_is_4102(api):
    session, other = await _open(api), await _open(api)
    video = TURNS.read_bytes()
    for sealed in (_seal(other, video), api.seal(video)):
        answer = await _capture(api, session, video, sealed=sealed)
        assert_error(answer, Code.SESSION_INVALID, "encrypted_video")
    assert (await _capture(api, session, video)).code == 1000  # still unused


async def test_a_recording_that_does_not_decode_leaves_the_session_open(api):
    session = await _open(api)
    assert_error(await _capture(api, session, b"\x1aE\xdf\xa3 not webm" * 100),
                 Code.INVALID_VIDEO, "encrypted_video")
    assert (await _capture(api, session, TURNS.read_bytes())).body["passed"] is True


async def test_an_expired_session_is_4101(server_settings, keyring):
    settings = dataclasses.replace(server_settings, session_ttl_s=1.0)
    async with serving(settings, keyring) as short:
        session = await _open(short)
        await asyncio.sleep(1.2)
        assert_error(await _capture(short, session, TURNS.read_bytes()), Code.SESSION_EXPIRED,
                     "session_token")


async def test_a_session_opened_before_the_store_restarted_is_4101(server_settings, keyring):
    """With an in-memory store, a restarted server no longer knows whether a session opened
    before it was used: a recording replayed to it is refused, not accepted a second time."""
    settings = dataclasses.replace(server_settings, session_secret="m" * 32)
    async with serving(settings, keyring) as before:
        session = await _open(before)
        assert (await _capture(before, session, TURNS.read_bytes())).body["passed"] is True
    async with serving(settings, keyring) as after:
        assert_error(await _capture(after, session, TURNS.read_bytes()), Code.SESSION_EXPIRED,
                     "session_token")
        assert (await _capture(after, await _open(after), TURNS.read_bytes())).code == 1000


async def test_a_result_before_any_capture_is_4104(api):
    session = await _open(api)
    answer = await api.post(SESSION_RESULT.path, {"session_id": session["session_id"]})
    assert_error(answer, Code.SESSION_NO_RESULT, "session_id")


async def test_guidance_finds_the_face_and_its_turn(api):
    session = await _open(api)

    async def guide(image: bytes):
        return await api.post(SESSION_GUIDE.path, {
            "session_token": session["session_token"], "encrypted_image": _seal(session, image),
        }, form="json")

    frontal = (await guide(_frame_jpeg(TURNS, 0.4))).body
    assert frontal["hint"] == "ok" and frontal["action"] is None, frontal
    turned = (await guide(_frame_jpeg(TURNS, 1.8))).body
    assert turned["action"] == "turn_left" and turned["pose"]["yaw"] > 18
    empty = (await guide((DATA / "noface/dlib_dog.jpg").read_bytes())).body
    assert empty["hint"] == "no_face" and "pose" not in empty


async def test_two_replicas_sharing_a_secret_and_redis_serve_one_session(
    server_settings, keyring, redis_url
):
    settings = dataclasses.replace(server_settings, session_secret="r" * 32,
                                   session_store=redis_url)
    async with serving(settings, keyring) as a, serving(settings, keyring) as b:
        session = await _open(a)
        video = TURNS.read_bytes()
        assert (await _capture(b, session, video)).body["passed"] is True
        assert_error(await _capture(a, session, video), Code.SESSION_USED, "session_token")
        result = await a.post(SESSION_RESULT.path, {"session_id": session["session_id"]})
        assert result.body["passed"] is True


async def test_the_capture_page_is_served_with_its_security_policy(api):
    async with api.session.get("/capture/") as page:
        assert page.status == 200 and "text/html" in page.headers["Content-Type"]
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    async with api.session.get("/capture/facegate-capture.js") as script:
        assert script.status == 200


async def test_listed_origins_may_make_the_pages_calls_and_only_those(server_settings, keyring):
    settings = dataclasses.replace(server_settings, session_origins="https://bank.example")
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    async with serving(settings, keyring) as api:

        async def allowed(path: str, origin: str) -> str | None:
            headers = {**preflight, "Origin": origin}
            async with api.session.options(path, headers=headers) as answer:
                return answer.headers.get("Access-Control-Allow-Origin")

        assert await allowed(SESSION_CAPTURE.path, "https://bank.example") == "https://bank.example"
        assert await allowed(SESSION_GUIDE.path, "https://bank.example") == "https://bank.example"
        assert await allowed(SESSION_GUIDE.path, "https://evil.example") is None
        assert await allowed(SESSION_OPEN.path, "https://bank.example") is None
        session = await _open(api)
        frame = _frame_jpeg(TURNS, 0.4)
        async with api.session.post(SESSION_GUIDE.path, json={
            "session_token": session["session_token"], "encrypted_image": _seal(session, frame),
        }, headers={"Origin": "https://bank.example"}) as answer:
            assert answer.status == 200
            assert answer.headers["Access-Control-Allow-Origin"] == "https://bank.example"
            assert "Access-Control-Allow-Credentials" not in answer.headers
