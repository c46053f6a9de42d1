"""Property-based fuzzing of everything that reads client bytes: whatever arrives, the only
failure is the documented typed error (hence the documented code), never another exception."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontend.api.body import _form, _json
from frontend.contract.codes import ContractError
from frontend.contract.liveness_file import LivenessFileError, open_sealed, unpack
from frontend.crypto import DecryptionError, KeyRing
from preprocessing.image import PhotoError, PhotoLimits, decode_photo
from preprocessing.video import VideoError, VideoLimits, probe_and_decode
from tests.conftest import DATA

RING = KeyRing.from_strings(["k" * 32], "i" * 12)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _real_jpeg() -> bytes:
    image = np.random.default_rng(0).integers(0, 256, (64, 80, 3), np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def _real_png() -> bytes:
    return cv2.imencode(".png", np.full((40, 50, 3), 90, np.uint8))[1].tobytes()


def _mutated(seed: bytes):
    """The seed file with bytes flipped, cut or spliced: damage a decoder must survive."""
    return st.tuples(
        st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)), max_size=12),
        st.integers(1, len(seed)),
    ).map(lambda edit: _apply(seed, *edit))


def _apply(seed: bytes, flips, cut: int) -> bytes:
    data = bytearray(seed)
    for position, value in flips:
        data[position] = value
    return bytes(data[:cut])


@FUZZ
@given(st.one_of(st.binary(max_size=4096), _mutated(_real_jpeg()), _mutated(_real_png())))
def test_a_photo_decodes_or_raises_a_photo_error(data):
    try:
        image = decode_photo(data, PhotoLimits(min_bytes=1), honour_exif=True)
    except PhotoError:
        return
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


_CLIP = (DATA / "video/edge/faceapi_0.2s_tvclip.mp4")


@pytest.mark.skipif(not _CLIP.is_file(), reason="shared data not found")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_video_decodes_or_raises_a_video_error(data):
    seed = _CLIP.read_bytes()
    video = data.draw(st.one_of(_mutated(seed), st.binary(min_size=1024, max_size=4096)))
    try:
        probe_and_decode(video, VideoLimits(min_duration_s=0.1))
    except VideoError:
        pass


@FUZZ
@given(st.one_of(st.text(max_size=400), st.binary(max_size=400).map(lambda b: RING.encrypt(b))))
def test_an_encrypted_field_opens_or_raises_a_decryption_error(text):
    try:
        RING.decrypt(text)
    except DecryptionError:
        pass


@FUZZ
@given(st.one_of(st.binary(max_size=2048), st.binary(max_size=2048).map(RING.encrypt)))
def test_a_liveness_file_opens_or_raises_a_liveness_file_error(data):
    try:
        open_sealed(data, RING)
    except LivenessFileError:
        pass
    try:
        unpack(data if isinstance(data, bytes) else data.encode())
    except LivenessFileError:
        pass


@FUZZ
@given(st.binary(max_size=4096))
def test_a_form_body_parses_or_raises_a_contract_error(body):
    try:
        fields = _form(body, 64)
    except ContractError:
        return
    assert len(fields) <= 64 and all(isinstance(v, str) for v in fields.values())


@FUZZ
@given(st.one_of(st.binary(max_size=2048), st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=30,
).map(lambda v: json.dumps(v).encode())))
def test_a_json_body_parses_or_raises_a_contract_error(body):
    try:
        fields = _json(body, 64)
    except ContractError:
        return
    assert all(isinstance(v, str | bool) for v in fields.values())


def test_json_nested_past_the_parsers_stack_is_a_contract_error():
    with pytest.raises(ContractError, match="nested too deep"):
        _json(b"[" * 100_000 + b"]" * 100_000, 64)


def test_a_form_with_100000_fields_is_a_contract_error_not_a_413():
    with pytest.raises(ContractError, match="more than 64"):
        _form(b"&".join(b"a%d=1" % i for i in range(100_000)), 64)
