"""The SDK client and the `facegate` CLI against a fake server that records what arrives."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytest
from aiohttp import web

from frontend.contract.liveness_file import CapturedFrame, LivenessCapture, open_sealed, seal
from frontend.crypto import NONCE_FORM_PREFIX, KeyRing
from frontend.sdk import ApiResponse, FacegateClient, FacegateClientError
from frontend.sdk.cli import main
from tests.conftest import free_port

KEY = "dcbbad6765e14139a07d34b92292a672"
IV = "df25d188a061"
RING = KeyRing.from_strings([KEY], IV)
OK_BODY = {"code": 1000, "request_id": "req-1", "verification_score": 0.93}
FORM = "application/x-www-form-urlencoded"


@dataclass
class Received:
    """One request as the fake server saw it."""

    path: str
    content_type: str
    fields: dict[str, str]
    files: dict[str, tuple[str | None, bytes]]


@dataclass
class FakeServer:
    """Records each POST and answers with `reply` (status, body text, content type, headers)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    reply: tuple[int, str, str, dict[str, str]] = (200, "", "", {})
    delay_s: float = 0.0

    def answer(self, status: int, body: dict | str, *, request_id: str | None = "req-1") -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        kind = "text/plain" if isinstance(body, str) else "application/json"
        headers = {} if request_id is None else {"X-Request-Id": request_id}
        self.reply = (status, text, kind, headers)

    async def handle(self, request: web.Request) -> web.Response:
        fields: dict[str, str] = {}
        files: dict[str, tuple[str | None, bytes]] = {}
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                data = await part.read()
                if part.filename is None:
                    fields[part.name] = data.decode()
                else:
                    files[part.name] = (part.filename, bytes(data))
        else:
            fields = {name: str(value) for name, value in (await request.post()).items()}
        self.received.append(Received(request.path, request.content_type, fields, files))
        await asyncio.sleep(self.delay_s)
        status, text, kind, headers = self.reply
        return web.Response(status=status, text=text, content_type=kind, headers=headers)


@pytest.fixture(scope="module")
def running_server() -> Iterator[FakeServer]:
    server = FakeServer()
    app = web.Application(client_max_size=64 * 1024**2)
    app.router.add_post("/{tail:.*}", server.handle)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(app)
    port = free_port()
    asyncio.run_coroutine_threadsafe(runner.setup(), loop).result()
    site = web.TCPSite(runner, "127.0.0.1", port)
    asyncio.run_coroutine_threadsafe(site.start(), loop).result()
    server.url = f"http://127.0.0.1:{port}"
    yield server
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


@pytest.fixture
def fake(running_server: FakeServer) -> FakeServer:
    running_server.received.clear()
    running_server.answer(200, OK_BODY)
    running_server.delay_s = 0.0
    return running_server


@pytest.fixture
def client(fake: FakeServer) -> FacegateClient:
    return FacegateClient(fake.url, keyring=RING, timeout_s=10)


def _jpeg(seed: int) -> bytes:
    picture = np.random.default_rng(seed).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", picture)[1].tobytes()


PHOTO_A, PHOTO_B, VIDEO = _jpeg(1), _jpeg(2), b"\x00\x00\x00\x18ftypmp42 video bytes"


def test_image_verification_posts_the_java_samples_form_with_encrypted_photos(fake, client):
    answer = client.image_verification(PHOTO_A, PHOTO_B, auto_rotate=True)
    assert answer == ApiResponse(status=200, body=OK_BODY, request_id="req-1")
    [request] = fake.received
    assert (request.path, request.content_type) == (
        "/identity/image_verification/stateless", FORM
    )
    assert sorted(request.fields) == [
        "auto_rotate", "check_quality", "first_encrypted_image", "second_encrypted_image"
    ]
    assert request.fields["first_encrypted_image"].startswith(NONCE_FORM_PREFIX)
    assert RING.decrypt(request.fields["first_encrypted_image"]) == PHOTO_A
    assert RING.decrypt(request.fields["second_encrypted_image"]) == PHOTO_B
    assert (request.fields["auto_rotate"], request.fields["check_quality"]) == ("true", "false")


def test_image_verification_sends_the_opt_in_fields_only_when_used(fake, client):
    client.image_verification(
        PHOTO_A, PHOTO_B, more_references=[PHOTO_A, PHOTO_B], return_thresholds=True,
        fail_when_multiple_faces=True,
    )
    [request] = fake.received
    assert sorted(request.fields) == [
        "auto_rotate", "check_quality", "fail_when_multiple_faces", "first_encrypted_image",
        "return_thresholds", "second_encrypted_image", "second_encrypted_image_2",
        "second_encrypted_image_3",
    ]
    assert RING.decrypt(request.fields["second_encrypted_image_3"]) == PHOTO_B
    assert (request.fields["return_thresholds"], request.fields["fail_when_multiple_faces"]) == (
        "true", "true"
    )


def test_more_than_three_references_are_refused_before_sending(fake, client):
    with pytest.raises(ValueError, match="at most three"):
        client.image_verification(PHOTO_A, PHOTO_B, more_references=[PHOTO_A] * 3)
    assert fake.received == []


def test_legacy_client_sends_the_manuals_fixed_iv_form(fake):
    FacegateClient(fake.url, keyring=RING, legacy=True).face_quality(PHOTO_A)
    encrypted = fake.received[0].fields["encrypted_image"]
    assert not encrypted.startswith(NONCE_FORM_PREFIX)
    assert encrypted == RING.encrypt(PHOTO_A, legacy=True)
    assert RING.decrypt(encrypted) == PHOTO_A


@pytest.mark.parametrize(
    ("call", "path", "encrypted", "flags"),
    [
        (lambda c: c.multi_face_verification(PHOTO_A, PHOTO_B, auto_rotate=True),
         "/identity/multi_face_verification/stateless",
         {"first_encrypted_image": PHOTO_A, "second_encrypted_image": PHOTO_B},
         {"auto_rotate": "true"}),
        (lambda c: c.face_quality(PHOTO_A), "/quality/face_quality/stateless",
         {"encrypted_image": PHOTO_A}, {}),
        (lambda c: c.silent_detection(VIDEO, return_face_image=True),
         "/liveness/silent_detection/stateless", {"encrypted_video": VIDEO},
         {"return_image": "false", "return_face_image": "true", "return_status": "false"}),
        (lambda c: c.silent_image_verification(VIDEO, PHOTO_B, check_quality=True,
                                               return_image=True, return_status=True),
         "/identity/silent_image_verification/stateless",
         {"encrypted_video": VIDEO, "encrypted_image": PHOTO_B},
         {"auto_rotate": "false", "check_quality": "true", "return_image": "true",
          "return_face_image": "false", "return_status": "true"}),
        (lambda c: c.silent_detection(VIDEO, return_spoof_type=True, return_reason=True),
         "/liveness/silent_detection/stateless", {"encrypted_video": VIDEO},
         {"return_image": "false", "return_face_image": "false", "return_status": "false",
          "return_spoof_type": "true", "return_reason": "true"}),
    ],
    ids=["multi_face_verification", "face_quality", "silent_detection",
         "silent_image_verification", "silent_detection_spoof_type_and_reason"],
)
def test_each_form_endpoint_sends_its_fields(
    fake, client, call: Callable[[FacegateClient], ApiResponse], path, encrypted, flags
):
    assert call(client).status == 200
    [request] = fake.received
    assert (request.path, request.content_type) == (path, FORM)
    assert {name: RING.decrypt(request.fields[name]) for name in encrypted} == encrypted
    assert {name: value for name, value in request.fields.items() if name not in encrypted} == flags


def test_liveness_image_verification_sends_the_sealed_file_as_a_multipart_file_part(fake, client):
    capture = LivenessCapture(frames=(CapturedFrame(PHOTO_A, 0), CapturedFrame(PHOTO_B, 200)))
    sealed = seal(capture, RING)
    client.liveness_image_verification(sealed, PHOTO_B, auto_rotate=True)
    [request] = fake.received
    assert (request.path, request.content_type) == (
        "/identity/liveness_image_verification/stateless", "multipart/form-data"
    )
    assert request.files == {"liveness_file": ("liveness_file.bin", sealed)}
    assert open_sealed(request.files["liveness_file"][1], RING) == capture
    assert RING.decrypt(request.fields.pop("encrypted_image")) == PHOTO_B
    assert request.fields == {"auto_rotate": "true", "check_quality": "false"}


def test_error_answer_is_returned_not_raised(fake, client):
    error = {"code": 4000, "message": "detection failed", "request_id": "req-9"}
    fake.answer(400, error, request_id="req-9")
    assert client.face_quality(PHOTO_A) == ApiResponse(status=400, body=error, request_id="req-9")


def test_server_error_json_answer_is_returned_not_raised(fake, client):
    fake.answer(503, {"code": 1503, "message": "overloaded", "request_id": "req-5"})
    answer = client.face_quality(PHOTO_A)
    assert (answer.status, answer.code, answer.ok) == (503, 1503, False)


def test_request_id_falls_back_to_the_body_without_the_header(fake, client):
    fake.answer(200, {"code": 1000, "request_id": "from-body"}, request_id=None)
    assert client.face_quality(PHOTO_A).request_id == "from-body"


@pytest.mark.parametrize("body", ["<html>bad gateway</html>", "[1, 2]"], ids=["html", "list"])
def test_non_json_object_answer_raises_client_error(fake, client, body):
    fake.reply = (502, body, "text/html", {})
    with pytest.raises(FacegateClientError, match=r"^HTTP 502 from http://.* is not a JSON object"):
        client.face_quality(PHOTO_A)


def test_connection_refused_raises_client_error():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(FacegateClientError, match=f"^cannot reach {url}/quality/face_quality"):
        FacegateClient(url, keyring=RING).face_quality(PHOTO_A)


def test_an_answer_slower_than_the_timeout_raises_client_error(fake):
    fake.delay_s = 1.0
    with pytest.raises(FacegateClientError, match="within 0.2 s$"):
        FacegateClient(fake.url, keyring=RING, timeout_s=0.2).face_quality(PHOTO_A)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "127.0.0.1:3000"}, "base_url must be http(s)://host:port"),
        ({"timeout_s": 0}, "timeout_s must be positive"),
        ({"keyring": KeyRing.from_strings([KEY], None), "legacy": True},
         "the legacy form needs the key ring's legacy IV"),
    ],
)
def test_client_constructor_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        FacegateClient(**{"keyring": RING, **kwargs})


# The CLI, called in-process.


@pytest.fixture
def env(monkeypatch, fake):
    """A clean FACEGATE_* environment pointing at the fake server."""
    for name in ("FACEGATE_AES_KEY_FILE", "FACEGATE_ALLOW_LEGACY_IV", "FACEGATE_PLAINTEXT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FACEGATE_URL", fake.url)
    monkeypatch.setenv("FACEGATE_AES_KEY", KEY)
    monkeypatch.setenv("FACEGATE_AES_IV", IV)
    return monkeypatch


@pytest.fixture
def photos(tmp_path):
    (tmp_path / "a.jpg").write_bytes(PHOTO_A)
    (tmp_path / "b.jpg").write_bytes(PHOTO_B)
    return tmp_path / "a.jpg", tmp_path / "b.jpg"


def test_cli_verify_prints_the_indented_answer_and_exits_0_on_code_1000(env, fake, photos, capsys):
    assert main(["verify", str(photos[0]), str(photos[1]), "--check-quality"]) == 0
    assert capsys.readouterr().out == json.dumps(OK_BODY, indent=2) + "\n"
    [request] = fake.received
    assert RING.decrypt(request.fields["second_encrypted_image"]) == PHOTO_B
    assert (request.fields["auto_rotate"], request.fields["check_quality"]) == ("false", "true")


def test_cli_exits_1_and_prints_the_answer_for_an_api_error(env, fake, photos, capsys):
    error = {"code": 4000, "message": "detection failed", "request_id": "req-1"}
    fake.answer(400, error)
    assert main(["quality", str(photos[0])]) == 1
    assert json.loads(capsys.readouterr().out) == error


def test_cli_key_option_overrides_the_environment(env, fake, photos):
    other = "0123456789abcdef0123456789abcdef"
    assert main(["--key", other, "quality", str(photos[0])]) == 0
    encrypted = fake.received[0].fields["encrypted_image"]
    assert KeyRing.from_strings([other], None).decrypt(encrypted) == PHOTO_A


def test_cli_legacy_option_sends_the_fixed_iv_form(env, fake, photos):
    assert main(["--legacy", "silent-detect", str(photos[0]), "--return-status"]) == 0
    [request] = fake.received
    assert request.fields["encrypted_video"] == RING.encrypt(PHOTO_A, legacy=True)
    assert request.fields["return_status"] == "true"


def test_cli_exits_2_when_the_server_cannot_be_reached(env, photos, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["--url", url, "quality", str(photos[0])]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"facegate: cannot reach {url}/quality/face_quality")


def test_cli_exits_2_for_a_missing_file(env, fake, tmp_path, capsys):
    missing = tmp_path / "absent.jpg"
    assert main(["quality", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"facegate: [Errno 2] No such file or directory: '{missing}'\n"
    )
    assert fake.received == []


def test_cli_exits_2_without_a_key(env, fake, photos, capsys):
    env.delenv("FACEGATE_AES_KEY")
    assert main(["quality", str(photos[0])]) == 2
    assert capsys.readouterr().err == (
        "facegate: no AES key configured: set FACEGATE_AES_KEY or FACEGATE_AES_KEY_FILE "
        "(or FACEGATE_PLAINTEXT=true, for development only)\n"
    )


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        ([], "facegate: error: the following arguments are required: COMMAND"),
        (["verify", "only-one.jpg"],
         "facegate verify: error: the following arguments are required: B"),
        (["frobnicate"], "facegate: error: argument COMMAND: invalid choice: 'frobnicate'"),
    ],
    ids=["no command", "missing photo", "unknown command"],
)
def test_cli_exits_2_for_usage_errors(env, argv, error, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: facegate")
    assert err.splitlines()[-1].startswith(error)  # argparse's wording of the choices varies


def test_cli_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: facegate")


def test_cli_liveness_file_writes_a_sealed_file_the_ring_opens(env, photos, tmp_path, capsys):
    out = tmp_path / "capture.bin"
    argv = ["liveness-file", "--out", str(out), "--interval-ms", "100",
            "--frames", *map(str, photos)]
    assert main(argv) == 0
    capture = open_sealed(out.read_bytes(), RING)
    assert [(f.jpeg, f.timestamp_ms) for f in capture.frames] == [(PHOTO_A, 0), (PHOTO_B, 100)]
    assert json.loads(capsys.readouterr().out) == {
        "liveness_file": str(out), "bytes": out.stat().st_size, "format_version": 1,
        "source": "images", "timestamps_ms": [0, 100],
    }


def test_cli_liveness_verify_makes_and_sends_a_liveness_file_from_frames(env, fake, photos):
    argv = ["liveness-verify", str(photos[1]), "--frames", *map(str, photos), "--auto-rotate"]
    assert main(argv) == 0
    [request] = fake.received
    assert request.content_type == "multipart/form-data"
    capture = open_sealed(request.files["liveness_file"][1], RING)
    assert [frame.jpeg for frame in capture.frames] == [PHOTO_A, PHOTO_B]
    assert RING.decrypt(request.fields["encrypted_image"]) == PHOTO_B
    assert request.fields["auto_rotate"] == "true"


def test_cli_liveness_verify_sends_a_given_liveness_file_unchanged(env, fake, photos, tmp_path):
    sealed = seal(LivenessCapture(frames=(CapturedFrame(PHOTO_A, 0),)), RING)
    (tmp_path / "given.bin").write_bytes(sealed)
    assert main(["liveness-verify", "--liveness-file", str(tmp_path / "given.bin"),
                 str(photos[1])]) == 0
    assert fake.received[0].files["liveness_file"][1] == sealed


def test_cli_liveness_verify_exits_2_for_frames_that_are_not_images(env, fake, photos, tmp_path,
                                                                    capsys):
    (tmp_path / "notes.txt").write_text("not an image")
    argv = ["liveness-verify", str(photos[1]), "--frames", str(tmp_path / "notes.txt")]
    assert main(argv) == 2
    expected = f"facegate: {tmp_path / 'notes.txt'} is not a readable image\n"
    assert capsys.readouterr().err == expected
    assert fake.received == []


def test_cli_encrypt_prints_a_field_the_key_ring_opens(tmp_path, capsys):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff some photo bytes")
    key, iv = "k" * 32, "i" * 12
    assert main(["--key", key, "--iv", iv, "encrypt", str(photo)]) == 0
    sealed = capsys.readouterr().out.strip()
    assert sealed.startswith("fg1.")
    assert KeyRing.from_strings([key], iv).decrypt(sealed) == photo.read_bytes()
