"""liveness_file: protobuf layout, sealing, each refusal as LivenessFileError."""

from __future__ import annotations

import base64
import importlib.util
import subprocess
import sys

import cv2
import numpy as np
import pytest

from frontend.contract import liveness_file_pb2
from frontend.contract.liveness_file import (
    FORMAT_VERSION,
    CapturedFrame,
    LivenessCapture,
    LivenessFileError,
    LivenessFileLimits,
    open_sealed,
    pack,
    seal,
    unpack,
)
from frontend.crypto import NONCE_FORM_PREFIX, KeyRing
from tests.conftest import REPO_ROOT

KEY = b"dcbbad6765e14139a07d34b92292a672"
IV = b"df25d188a061"
OTHER_KEY = b"0123456789abcdef0123456789abcdef"


def _jpeg(seed: int, size: tuple[int, int] = (48, 64)) -> bytes:
    picture = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", picture)[1].tobytes()


def _capture(count: int = 3, **overrides) -> LivenessCapture:
    frames = tuple(CapturedFrame(_jpeg(i), 40 * i) for i in range(count))
    fields = {"frames": frames, "sdk": "facegate-python/0.1.0", "device": "test rig",
              "started_at_unix_ms": 1_715_000_000_000, "source": "camera"}
    return LivenessCapture(**{**fields, **overrides})


def _ring(**overrides) -> KeyRing:
    return KeyRing(**{"keys": (KEY,), "legacy_iv": IV, **overrides})


def test_pack_then_unpack_gives_the_same_capture():
    capture = _capture()
    assert unpack(pack(capture)) == capture


def test_pack_writes_the_documented_protobuf_fields():
    message = liveness_file_pb2.LivenessFile.FromString(pack(_capture(count=1)))
    assert message.format_version == FORMAT_VERSION == 1
    assert message.frames[0].timestamp_ms == 0
    assert message.frames[0].jpeg.startswith(b"\xff\xd8\xff")
    assert (message.capture.sdk, message.capture.device, message.capture.source) == (
        "facegate-python/0.1.0", "test rig", "camera"
    )
    assert message.capture.started_at_unix_ms == 1_715_000_000_000


@pytest.mark.parametrize("legacy", [False, True], ids=["nonce form", "legacy form"])
def test_seal_then_open_sealed_round_trips_in_both_forms(legacy):
    capture = _capture()
    sealed = seal(capture, _ring(), legacy=legacy)
    assert sealed.isascii()
    assert sealed.startswith(NONCE_FORM_PREFIX.encode()) is not legacy
    assert open_sealed(b"\r\n " + sealed + b"\n", _ring()) == capture


def test_open_sealed_accepts_the_file_as_text_from_a_text_field():
    assert open_sealed(seal(_capture(), _ring()).decode() + "\n", _ring()) == _capture()


def test_open_sealed_accepts_a_file_sealed_under_an_older_active_key():
    sealed = seal(_capture(), KeyRing(keys=(OTHER_KEY,)))
    assert open_sealed(sealed, _ring(keys=(KEY, OTHER_KEY))) == _capture()


def test_open_sealed_raises_when_a_byte_is_tampered():
    sealed = seal(_capture(), _ring())
    raw = bytearray(base64.b64decode(sealed[len(NONCE_FORM_PREFIX):]))
    raw[40] ^= 0x01  # one bit of the ciphertext
    tampered = NONCE_FORM_PREFIX.encode() + base64.b64encode(bytes(raw))
    with pytest.raises(LivenessFileError, match="does not authenticate under any active key"):
        open_sealed(tampered, _ring())


def test_open_sealed_raises_under_the_wrong_key():
    with pytest.raises(LivenessFileError, match="does not authenticate under any active key"):
        open_sealed(seal(_capture(), KeyRing(keys=(OTHER_KEY,))), _ring())


def test_open_sealed_raises_for_bytes_that_are_not_a_sealed_file():
    with pytest.raises(LivenessFileError, match="does not open: payload is not valid base64"):
        open_sealed(b"\xff\xd8\xff\xe0 a raw JPEG", _ring())


def test_unpack_raises_for_bytes_that_are_not_a_protobuf():
    with pytest.raises(LivenessFileError, match="not a facegate.v1.LivenessFile protobuf"):
        unpack(b"\xff\xff\xff\xff\xff")


def test_open_sealed_raises_for_a_sealed_payload_that_is_not_a_protobuf():
    sealed = _ring().encrypt(b"\xff\xff\xff\xff\xff").encode()
    with pytest.raises(LivenessFileError, match="not a facegate.v1.LivenessFile protobuf"):
        open_sealed(sealed, _ring())


@pytest.mark.parametrize("version", [0, 2])
def test_unpack_raises_for_an_unknown_format_version(version):
    with pytest.raises(LivenessFileError) as caught:
        unpack(pack(_capture(format_version=version)))
    assert str(caught.value) == (
        f"unsupported liveness file format_version {version} (this version reads 1)"
    )


def test_unpack_raises_for_an_empty_message_as_an_unknown_version():
    with pytest.raises(LivenessFileError, match="format_version 0"):
        unpack(b"")


def test_unpack_raises_for_zero_frames():
    with pytest.raises(LivenessFileError) as caught:
        unpack(pack(_capture(count=0)))
    assert str(caught.value) == "liveness file has no frames"


def test_unpack_raises_for_more_frames_than_the_limit():
    data = pack(_capture(count=4))
    assert len(unpack(data, LivenessFileLimits(max_frames=4)).frames) == 4
    with pytest.raises(LivenessFileError) as caught:
        unpack(data, LivenessFileLimits(max_frames=3))
    assert str(caught.value) == "liveness file has 4 frames, at most 3"


def test_unpack_raises_for_a_frame_over_the_byte_limit():
    capture = _capture(count=2)
    limit = max(len(frame.jpeg) for frame in capture.frames) - 1
    with pytest.raises(LivenessFileError, match=f"bytes, at most {limit}$"):
        unpack(pack(capture), LivenessFileLimits(max_frame_bytes=limit))


@pytest.mark.parametrize(
    ("jpeg", "message"),
    [(b"", "frame 1 is empty"), (b"\x89PNG\r\n\x1a\n", "frame 1 is not a JPEG file")],
    ids=["empty", "png"],
)
def test_unpack_raises_for_a_frame_that_is_not_a_jpeg(jpeg, message):
    frames = (CapturedFrame(_jpeg(0), 0), CapturedFrame(jpeg, 40))
    with pytest.raises(LivenessFileError) as caught:
        unpack(pack(_capture(frames=frames)))
    assert str(caught.value) == message


@pytest.mark.parametrize("second_ms", [100, 50], ids=["equal", "decreasing"])
def test_unpack_raises_when_timestamps_do_not_increase_strictly(second_ms):
    frames = (CapturedFrame(_jpeg(0), 0), CapturedFrame(_jpeg(1), 100),
              CapturedFrame(_jpeg(2), second_ms))
    with pytest.raises(LivenessFileError) as caught:
        unpack(pack(_capture(frames=frames)))
    assert str(caught.value) == (
        f"frame timestamps must increase strictly: frame 2 is at {second_ms} ms after 100 ms"
    )


@pytest.mark.skipif(importlib.util.find_spec("grpc_tools") is None, reason="needs grpcio-tools")
def test_generated_protobuf_module_matches_the_proto(tmp_path):
    contract = REPO_ROOT / "frontend" / "contract"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{contract}", f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", str(contract / "liveness_file.proto")],
        check=True,
    )
    for name in ("liveness_file_pb2.py", "liveness_file_pb2.pyi"):
        assert (tmp_path / name).read_text() == (contract / name).read_text(), name
