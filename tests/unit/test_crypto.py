"""AES-256-GCM payloads: both wire forms, key rotation, and every failure as DecryptionError."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from frontend.crypto import NONCE_FORM_PREFIX, DecryptionError, KeyRing

# The SenseID manual's sample values: AESCipher("dcbbad6765e14139a07d34b92292a672", "df25d188a061").
SAMPLE_KEY = b"dcbbad6765e14139a07d34b92292a672"
SAMPLE_IV = b"df25d188a061"
OTHER_KEY = b"0123456789abcdef0123456789abcdef"


def _ring(**overrides) -> KeyRing:
    return KeyRing(**{"keys": (SAMPLE_KEY,), "legacy_iv": SAMPLE_IV, **overrides})


def test_legacy_form_from_the_vendor_sample_key_and_iv_decrypts():
    payload = base64.b64encode(AESGCM(SAMPLE_KEY).encrypt(SAMPLE_IV, b"photo bytes", None))
    assert _ring().decrypt(payload) == b"photo bytes"


def test_nonce_form_round_trips_with_a_fresh_nonce_each_time():
    ring = _ring()
    first, second = ring.encrypt(b"x" * 100), ring.encrypt(b"x" * 100)
    assert first.startswith(NONCE_FORM_PREFIX) and first != second
    assert ring.decrypt(first) == ring.decrypt(second) == b"x" * 100


def test_rotation_accepts_payloads_under_any_active_key():
    old = KeyRing(keys=(OTHER_KEY,))
    assert _ring(keys=(SAMPLE_KEY, OTHER_KEY)).decrypt(old.encrypt(b"old client")) == b"old client"


def test_legacy_form_is_refused_when_switched_off():
    legacy = _ring().encrypt(b"photo", legacy=True)
    with pytest.raises(DecryptionError, match="legacy fixed-IV form is disabled"):
        _ring(allow_legacy=False).decrypt(legacy)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("not base64 at all!", "not valid base64"),
        (NONCE_FORM_PREFIX + "%%%", "not valid base64"),
        (NONCE_FORM_PREFIX + base64.b64encode(b"short").decode(), "too short"),
        (base64.b64encode(b"tiny").decode(), "too short"),
    ],
)
def test_malformed_payloads_raise_decryption_error(payload, message):
    with pytest.raises(DecryptionError, match=message):
        _ring().decrypt(payload)


def test_wrong_key_raises_decryption_error():
    with pytest.raises(DecryptionError, match="does not authenticate"):
        _ring().decrypt(KeyRing(keys=(OTHER_KEY,)).encrypt(b"photo"))


def test_tampered_ciphertext_and_truncated_tag_raise_decryption_error():
    sealed = bytearray(base64.b64decode(_ring().encrypt(b"photo bytes")[len(NONCE_FORM_PREFIX):]))
    sealed[14] ^= 1
    tampered = NONCE_FORM_PREFIX + base64.b64encode(bytes(sealed)).decode()
    truncated = _ring().encrypt(b"photo bytes")[:-8]
    for payload in (tampered, truncated):
        with pytest.raises(DecryptionError):
            _ring().decrypt(payload)


def test_plaintext_mode_takes_plain_base64():
    assert KeyRing(keys=(), plaintext=True).decrypt(base64.b64encode(b"dev")) == b"dev"


def test_keyring_refuses_a_key_of_the_wrong_length():
    with pytest.raises(ValueError, match="AES-256 key is 32 bytes, got 5"):
        KeyRing(keys=(b"short",))
