"""AES-256-GCM for `encrypted_image`, `encrypted_video` and `liveness_file` (CONTRACT.md section 6).

Two wire forms are accepted, both base64 text:

- **legacy**: ``base64(ciphertext || tag)`` under a fixed 12-byte IV from configuration, as the
  SenseID SDK's ``AESCipher(key, iv)`` emits it. A fixed IV with GCM lets anyone who sees two
  messages XOR them and forge new ones (the GHASH key falls out), so an operator can switch
  this form off (`KeyRing.allow_legacy`).
- **nonce**: ``"fg1." + base64(nonce || ciphertext || tag)`` with a fresh random 12-byte nonce per
  message; facegate's own SDK and CLI emit this form.

Several keys may be active at once (rotation): a message is tried under each until one
authenticates. Any failure (bad base64, short input, wrong key, tampered bytes) raises
`DecryptionError`, which the contract maps to code 1200.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_FORM_PREFIX = "fg1."
KEY_BYTES = 32
IV_BYTES = 12
TAG_BYTES = 16


class DecryptionError(ValueError):
    """The payload is not valid base64, or does not authenticate under any active key."""


@dataclass(frozen=True)
class KeyRing:
    """The active keys and which wire forms the server accepts.

    Attributes:
        keys: active 32-byte AES keys, the newest (used for encryption) first.
        legacy_iv: the fixed 12-byte IV of the legacy form; None disables that form.
        allow_legacy: accept the legacy fixed-IV form.
        plaintext: development only: payloads are plain base64, not encrypted.
    """

    keys: tuple[bytes, ...]
    legacy_iv: bytes | None = None
    allow_legacy: bool = True
    plaintext: bool = False

    def __post_init__(self) -> None:
        if not self.plaintext and not self.keys:
            raise ValueError("at least one AES key is needed unless plaintext mode is on")
        for key in self.keys:
            if len(key) != KEY_BYTES:
                raise ValueError(f"an AES-256 key is {KEY_BYTES} bytes, got {len(key)}")
        if self.legacy_iv is not None and len(self.legacy_iv) != IV_BYTES:
            raise ValueError(f"the legacy IV is {IV_BYTES} bytes, got {len(self.legacy_iv)}")

    def decrypt(self, payload: str | bytes) -> bytes:
        """Return the plaintext of a payload in either accepted form.

        Raises:
            DecryptionError: bad base64, a form that is switched off, or no key authenticates it.
        """
        text = payload.decode("ascii", "replace") if isinstance(payload, bytes) else payload
        text = text.strip()
        if self.plaintext:
            return _b64decode(text)
        if text.startswith(NONCE_FORM_PREFIX):
            sealed = _b64decode(text[len(NONCE_FORM_PREFIX):])
            if len(sealed) < IV_BYTES + TAG_BYTES:
                raise DecryptionError("encrypted payload too short")
            return self._open(sealed[:IV_BYTES], sealed[IV_BYTES:])
        if not (self.allow_legacy and self.legacy_iv is not None):
            raise DecryptionError("the legacy fixed-IV form is disabled")
        sealed = _b64decode(text)
        if len(sealed) < TAG_BYTES:
            raise DecryptionError("encrypted payload too short")
        return self._open(self.legacy_iv, sealed)

    def _open(self, nonce: bytes, sealed: bytes) -> bytes:
        for key in self.keys:
            try:
                return AESGCM(key).decrypt(nonce, sealed, None)
            except InvalidTag:
                continue
        raise DecryptionError("payload does not authenticate under any active key")

    def encrypt(self, plaintext: bytes, *, legacy: bool = False) -> str:
        """Seal bytes with the newest key: the nonce form, or the legacy form for old clients."""
        if self.plaintext:
            return base64.b64encode(plaintext).decode("ascii")
        key = AESGCM(self.keys[0])
        if legacy:
            if self.legacy_iv is None:
                raise ValueError("no legacy IV configured")
            return base64.b64encode(key.encrypt(self.legacy_iv, plaintext, None)).decode("ascii")
        nonce = os.urandom(IV_BYTES)
        sealed = nonce + key.encrypt(nonce, plaintext, None)
        return NONCE_FORM_PREFIX + base64.b64encode(sealed).decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise DecryptionError("payload is not valid base64") from error
