"""Every response code of CONTRACT.md section 4, each from the real bad input, over real HTTP.

Each test checks the code, message, HTTP status and request_id (and, through `Api`, the
OpenAPI schema), then that a good request still succeeds.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import zlib
from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image

from frontend.api.services import SERVICES
from frontend.contract.codes import Code
from frontend.contract.fields import (
    FACE_QUALITY,
    IMAGE_VERIFICATION,
    LIVENESS_IMAGE_VERIFICATION,
)
from frontend.contract.liveness_file import CapturedFrame, LivenessCapture, pack, seal
from frontend.crypto import KeyRing
from frontend.sdk.capture import capture_from_images
from tests.conftest import DATA, free_port
from tests.integration.conftest import TEST_MAX_BODY_BYTES
from tests.integration.http import Api, assert_error, serving

FACE = DATA / "faces/Barack_Obama/facerec_obama.jpg"
EDGE = DATA / "edge"


async def _still_serving(api: Api) -> None:
    answer = await api.post(FACE_QUALITY.path, {"encrypted_image": api.seal(FACE.read_bytes())})
    assert answer.code == 1000


async def _quality(api: Api, photo: bytes):
    return await api.post(FACE_QUALITY.path, {"encrypted_image": api.seal(photo)})


def _encode(image: np.ndarray, ext: str) -> bytes:
    return cv2.imencode(ext, image)[1].tobytes()


def _png_bomb(side: int = 30_000) -> bytes:
    """A real PNG of side x side black pixels: a few hundred KB that would decode to GBs."""
    row = b"\x00" + b"\x00" * side
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def _photo_cases() -> list[tuple[str, object, Code]]:
    face = cv2.imread(str(FACE))
    einstein_png = (EDGE / "compreface_einstein.png").read_bytes() if EDGE.is_dir() else b""
    gif = io.BytesIO()
    Image.open(FACE).save(gif, "GIF")
    return [
        (
            "5-byte file",
            lambda: (EDGE / "compreface_empty.png").read_bytes(),
            Code.INVALID_CONTENT_LENGTH,
        ),
        (
            "450-byte blank png",
            lambda: (EDGE / "faceapi_white_blank.png").read_bytes(),
            Code.INVALID_CONTENT_LENGTH,
        ),
        (
            "bmp over 10 MiB",
            lambda: _encode(cv2.resize(face, (2000, 1900)), ".bmp"),
            Code.INVALID_CONTENT_LENGTH,
        ),
        ("20x20 bmp", lambda: _encode(cv2.resize(face, (20, 20)), ".bmp"), Code.INVALID_IMAGE_SIZE),
        ("decompression bomb png", _png_bomb, Code.INVALID_IMAGE_SIZE),
        (
            "corrupted png",
            lambda: (EDGE / "compreface_corrupted.png").read_bytes(),
            Code.INVALID_IMAGE_TYPE,
        ),
        ("gif", lambda: gif.getvalue(), Code.INVALID_IMAGE_TYPE),
        ("text", lambda: b"this is not an image, " * 100, Code.INVALID_IMAGE_TYPE),
        (
            "truncated jpeg",
            lambda: (EDGE / "compreface_truncated.jpg").read_bytes(),
            Code.CORRUPTED_IMAGE,
        ),
        ("truncated png", lambda: einstein_png[: len(einstein_png) * 2 // 3], Code.CORRUPTED_IMAGE),
        (
            "eagle, no face",
            lambda: (DATA / "noface/dlib_eagle.jpg").read_bytes(),
            Code.DETECTION_FAILED,
        ),
        (
            "painting, no face",
            lambda: (EDGE / "dlib_scream_painting.jpg").read_bytes(),
            Code.DETECTION_FAILED,
        ),
    ]


@pytest.mark.parametrize("name,make,code", _photo_cases(), ids=[c[0] for c in _photo_cases()])
async def test_a_bad_photo_gets_its_code_naming_the_field(api, data_dir, name, make, code):
    assert_error(await _quality(api, make()), code, "encrypted_image")
    await _still_serving(api)


async def test_image_verification_reports_a_bad_second_photo_too(api, data_dir):
    answer = await api.post(
        IMAGE_VERIFICATION.path,
        {
            "first_encrypted_image": api.seal(FACE.read_bytes()),
            "second_encrypted_image": api.seal((DATA / "noface/dlib_eagle.jpg").read_bytes()),
        },
    )
    assert_error(answer, Code.DETECTION_FAILED, "second_encrypted_image")


def _sealed_face(api: Api) -> str:
    return api.seal(FACE.read_bytes())


def _tamper(text: str) -> str:
    middle = len(text) // 2
    return text[:middle] + ("A" if text[middle] != "A" else "B") + text[middle + 1 :]


def _argument_cases():
    other = KeyRing.from_strings(["0123456789abcdef0123456789abcdef"], "000000000000")
    return [
        (
            "missing field",
            lambda api: {"first_encrypted_image": _sealed_face(api)},
            "second_encrypted_image",
        ),
        (
            "empty field",
            lambda api: {"first_encrypted_image": _sealed_face(api), "second_encrypted_image": ""},
            "second_encrypted_image",
        ),
        (
            "bad boolean",
            lambda api: {
                "first_encrypted_image": _sealed_face(api),
                "second_encrypted_image": _sealed_face(api),
                "auto_rotate": "yes please",
            },
            "auto_rotate",
        ),
        (
            "bad base64",
            lambda api: {
                "first_encrypted_image": "@@not base64@@",
                "second_encrypted_image": _sealed_face(api),
            },
            "first_encrypted_image",
        ),
        (
            "wrong key",
            lambda api: {
                "first_encrypted_image": other.encrypt(FACE.read_bytes()),
                "second_encrypted_image": _sealed_face(api),
            },
            "first_encrypted_image",
        ),
        (
            "tampered ciphertext",
            lambda api: {
                "first_encrypted_image": _tamper(_sealed_face(api)),
                "second_encrypted_image": _sealed_face(api),
            },
            "first_encrypted_image",
        ),
        (
            "truncated tag",
            lambda api: {
                "first_encrypted_image": api.seal(FACE.read_bytes(), legacy=True)[:-8],
                "second_encrypted_image": _sealed_face(api),
            },
            "first_encrypted_image",
        ),
    ]


@pytest.mark.parametrize(
    "name,make,field", _argument_cases(), ids=[c[0] for c in _argument_cases()]
)
async def test_an_invalid_argument_is_1200_naming_the_field(api, data_dir, name, make, field):
    assert_error(await api.post(IMAGE_VERIFICATION.path, make(api)), Code.INVALID_ARGUMENT, field)
    await _still_serving(api)


async def test_a_body_of_an_unsupported_type_is_1200(api, data_dir):
    response = await api.session.post(
        IMAGE_VERIFICATION.path, data=b"<xml/>", headers={"Content-Type": "text/xml"}
    )
    assert_error(
        await api.answer(response, IMAGE_VERIFICATION.path, "post"), Code.INVALID_ARGUMENT
    )


async def test_a_json_body_that_is_not_an_object_is_1200(api, data_dir):
    response = await api.session.post(IMAGE_VERIFICATION.path, json=["a", "b"])
    assert_error(
        await api.answer(response, IMAGE_VERIFICATION.path, "post"), Code.INVALID_ARGUMENT
    )


async def test_check_quality_refuses_a_face_behind_sunglasses_with_4004(api, data_dir):
    image = cv2.imread(str(FACE))
    faces = await api.app[SERVICES].photos.pipeline.detect(image)
    (right_eye, left_eye) = faces[0].landmarks[:2]
    eye_gap = float(np.linalg.norm(left_eye - right_eye))
    covered = image.copy()
    for eye in (right_eye, left_eye):
        cv2.ellipse(
            covered,
            (int(eye[0]), int(eye[1])),
            (int(eye_gap * 0.42), int(eye_gap * 0.3)),
            0,
            0,
            360,
            (20, 20, 20),
            -1,
        )
    cv2.line(
        covered,
        tuple(int(v) for v in right_eye),
        tuple(int(v) for v in left_eye),
        (20, 20, 20),
        max(2, int(eye_gap * 0.08)),
    )
    photo = _encode(covered, ".jpg")
    fields = {
        "first_encrypted_image": api.seal(photo),
        "second_encrypted_image": api.seal(FACE.read_bytes()),
    }
    without = await api.post(IMAGE_VERIFICATION.path, fields)
    refused = await api.post(IMAGE_VERIFICATION.path, {**fields, "check_quality": "true"})
    assert without.code == 1000
    assert_error(refused, Code.FACE_OCCLUSION, "first_encrypted_image")
    await _still_serving(api)


def _liveness_fields(api: Api) -> dict[str, str]:
    return {"encrypted_image": api.seal(FACE.read_bytes())}


async def _liveness(api: Api, liveness_file: bytes):
    return await api.post(
        LIVENESS_IMAGE_VERIFICATION.path,
        _liveness_fields(api),
        files={"liveness_file": liveness_file},
    )


async def test_a_corrupted_liveness_file_is_2007(api, data_dir):
    good = capture_from_images([FACE.read_bytes()] * 3)
    sealed = seal(good, api.keyring).decode()
    other = KeyRing.from_strings(["0123456789abcdef0123456789abcdef"], None)
    cases = {
        "tampered": _tamper(sealed).encode(),
        "wrong key": seal(good, other),
        "not a protobuf": api.seal(b"\xff\x00 definitely not protobuf \x12\x99").encode(),
        "not sealed": pack(good),
        "a frame that is not an image": seal(
            LivenessCapture(
                frames=(CapturedFrame(b"garbage" * 300, 0), CapturedFrame(b"x" * 2000, 200))
            ),
            api.keyring,
        ),
    }
    for name, liveness_file in cases.items():
        answer = await _liveness(api, liveness_file)
        assert answer.body["code"] == 2007, name
        assert_error(answer, Code.CORRUPTED_LIVENESS_DATA, "liveness_file")
    await _still_serving(api)


async def test_a_liveness_file_without_a_face_in_any_frame_is_4007(api, data_dir):
    eagle = (DATA / "noface/dlib_eagle.jpg").read_bytes()
    answer = await _liveness(api, seal(capture_from_images([eagle] * 3), api.keyring))
    assert_error(answer, Code.LIVENESS_CHECK_FAILED, "liveness_file")
    await _still_serving(api)


async def test_unknown_path_is_404_and_wrong_method_is_405(api):
    for method, path, code in (
        ("GET", "/nope", Code.NOT_FOUND),
        ("POST", "/identity/nope/stateless", Code.NOT_FOUND),
        ("GET", IMAGE_VERIFICATION.path, Code.METHOD_NOT_ALLOWED),
    ):
        response = await api.session.request(method, path, data=b"" if method == "POST" else None)
        answer = await api.answer(response, path, method.lower())
        assert_error(answer, code)
    await _still_serving(api)


async def _raw_http(api: Api, head: str) -> tuple[int, dict]:
    """Send a hand-written request head (no body) and read the answer."""
    url = api.session._base_url  # noqa: SLF001 - the test client's own server
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(head.encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=30)
    writer.close()
    head_part, _, body = raw.partition(b"\r\n\r\n")
    status = int(head_part.split()[1])
    if b"chunked" in head_part.lower():
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    return status, json.loads(body)


async def test_a_post_without_content_length_is_411(api):
    status, body = await _raw_http(
        api,
        (
            f"POST {IMAGE_VERIFICATION.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\na=b&c\r\n0\r\n\r\n"
        ),
    )
    assert (status, body["code"], body["message"]) == (411, 411, "LENGTH_REQUIRED")
    assert body["request_id"]
    await _still_serving(api)


async def test_a_body_over_the_limit_is_413_before_it_is_read(api):
    status, body = await _raw_http(
        api,
        (
            f"POST {IMAGE_VERIFICATION.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {TEST_MAX_BODY_BYTES + 1}\r\n\r\n"
        ),
    )
    assert (status, body["code"], body["message"]) == (413, 413, "PAYLOAD_TOO_LARGE")
    await _still_serving(api)


async def test_an_internal_fault_is_500_with_a_request_id_and_the_server_keeps_serving(
    api, data_dir, monkeypatch, caplog
):
    async def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    with monkeypatch.context() as patch:
        patch.setattr(api.app[SERVICES].photos, "quality", broken)
        answer = await _quality(api, FACE.read_bytes())
    assert_error(answer, Code.INTERNAL_ERROR)
    assert answer.body["request_id"] in caplog.text
    await _still_serving(api)


async def test_overload_is_refused_at_once_with_503_and_retry_after(
    server_settings, keyring, data_dir
):
    async with serving(replace(server_settings, max_in_flight=1), keyring) as api:
        answers = await asyncio.gather(*(_quality(api, FACE.read_bytes()) for _ in range(8)))
        refused = [a for a in answers if a.status == 503]
        assert refused and any(a.code == 1000 for a in answers)
        for answer in refused:
            assert_error(answer, Code.SERVICE_UNAVAILABLE)
            assert answer.headers["Retry-After"] == "1"
        await _still_serving(api)


async def test_unreachable_models_are_503_not_a_hang(server_settings, keyring, data_dir):
    unreachable = replace(
        server_settings, triton_url=f"127.0.0.1:{free_port()}", triton_timeout_s=2
    )
    async with serving(unreachable, keyring) as api:
        assert_error(await _quality(api, FACE.read_bytes()), Code.SERVICE_UNAVAILABLE)
