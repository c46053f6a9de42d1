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

Keys never live in the code: `keyring_from_env` reads them (and the legacy IV) from the
``FACEGATE_AES_*`` variables or a key file, for the server and the SDK/CLI alike.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_FORM_PREFIX = "fg1."
KEY_BYTES = 32
IV_BYTES = 12
TAG_BYTES = 16

ENV_AES_KEY = "FACEGATE_AES_KEY"
ENV_AES_KEY_FILE = "FACEGATE_AES_KEY_FILE"
ENV_AES_IV = "FACEGATE_AES_IV"
ENV_ALLOW_LEGACY_IV = "FACEGATE_ALLOW_LEGACY_IV"
ENV_PLAINTEXT = "FACEGATE_PLAINTEXT"


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

    @classmethod
    def nonce_only(cls, key: bytes) -> KeyRing:
        """One key, the nonce form only: a liveness session's key ring."""
        return cls(keys=(key,), legacy_iv=None, allow_legacy=False, plaintext=False)

    def __post_init__(self) -> None:
        if not self.plaintext and not self.keys:
            raise ValueError("at least one AES key is needed unless plaintext mode is on")
        for key in self.keys:
            if len(key) != KEY_BYTES:
                raise ValueError(f"an AES-256 key is {KEY_BYTES} bytes, got {len(key)}")
        if self.legacy_iv is not None and len(self.legacy_iv) != IV_BYTES:
            raise ValueError(f"the legacy IV is {IV_BYTES} bytes, got {len(self.legacy_iv)}")

    @classmethod
    def from_strings(
        cls,
        keys: Sequence[str],
        iv: str | None,
        *,
        allow_legacy: bool = True,
        plaintext: bool = False,
    ) -> KeyRing:
        """Build a ring from configuration text, as the manual's ``AESCipher(key, iv)`` takes it.

        Each key's UTF-8 bytes are the AES-256 key (32 characters, e.g.
        ``"dcbbad6765e14139a07d34b92292a672"``), and the IV's UTF-8 bytes are the legacy form's
        fixed IV (12 characters, e.g. ``"df25d188a061"``).

        Args:
            keys: active keys, the one that encrypts first; repeats are dropped.
            iv: the legacy form's IV; None or empty disables that form.
            allow_legacy: accept the legacy form when an IV is given.
            plaintext: development only: payloads are plain base64.

        Raises:
            ValueError: a key or the IV has the wrong length (the message never shows the value),
                or there is no key outside plaintext mode.
        """
        raw_keys = tuple(
            dict.fromkeys(_key_from_text(key, f"AES key {n}") for n, key in enumerate(keys, 1))
        )
        legacy_iv = _iv_from_text(iv, "the legacy IV") if iv else None
        return cls(
            keys=raw_keys, legacy_iv=legacy_iv, allow_legacy=allow_legacy, plaintext=plaintext
        )

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
    # A form client that did not URL-encode its base64 had every "+" turned into a space.
    try:
        return base64.b64decode(text.replace(" ", "+"), validate=True)
    except (binascii.Error, ValueError) as error:
        raise DecryptionError("payload is not valid base64") from error


def keyring_from_env(environ: Mapping[str, str] | None = None) -> KeyRing:
    """Build the key ring from the variables the server and the SDK/CLI both read.

    - ``FACEGATE_AES_KEY``: one or more 32-character keys, comma-separated; the first encrypts.
    - ``FACEGATE_AES_KEY_FILE``: a file with one key per line (``#`` starts a comment, blank
      lines are skipped); its keys are active after those of ``FACEGATE_AES_KEY``.
    - ``FACEGATE_AES_IV``: the 12-character IV of the legacy fixed-IV form; unset switches
      that form off.
    - ``FACEGATE_ALLOW_LEGACY_IV``: boolean, default true; false refuses the legacy form even
      with an IV (a client can still emit it).
    - ``FACEGATE_PLAINTEXT``: boolean, development only.

    Booleans are ``true``/``false``, ``1``/``0``, ``yes``/``no`` or ``on``/``off``.

    Raises:
        ValueError: naming the variable whose value cannot be used (never showing a key).
    """
    environ = os.environ if environ is None else environ
    keys = [
        _key_from_text(text, f"{ENV_AES_KEY} (key {n})")
        for n, text in enumerate(_split_keys(environ.get(ENV_AES_KEY, "")), 1)
    ]
    key_file = environ.get(ENV_AES_KEY_FILE, "").strip()
    if key_file:
        keys.extend(_keys_from_file(key_file))
    iv_text = environ.get(ENV_AES_IV, "").strip()
    legacy_iv = _iv_from_text(iv_text, ENV_AES_IV) if iv_text else None
    allow_legacy = _env_flag(environ, ENV_ALLOW_LEGACY_IV, default=True)
    plaintext = _env_flag(environ, ENV_PLAINTEXT, default=False)
    if not keys and not plaintext:
        raise ValueError(
            f"no AES key configured: set {ENV_AES_KEY} or {ENV_AES_KEY_FILE} "
            f"(or {ENV_PLAINTEXT}=true, for development only)"
        )
    return KeyRing(keys=tuple(dict.fromkeys(keys)), legacy_iv=legacy_iv,
                   allow_legacy=allow_legacy, plaintext=plaintext)


def _split_keys(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _keys_from_file(path: str) -> list[bytes]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{ENV_AES_KEY_FILE}={path} cannot be read: {error}") from error
    entries = ((number, line.split("#", 1)[0].strip()) for number, line in enumerate(lines, 1))
    return [
        _key_from_text(text, f"{ENV_AES_KEY_FILE}={path} line {number}")
        for number, text in entries
        if text
    ]


def _key_from_text(text: str, what: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) != KEY_BYTES:
        raise ValueError(
            f"{what} is {len(raw)} bytes in UTF-8; an AES-256 key is {KEY_BYTES} characters"
        )
    return raw


def _iv_from_text(text: str, what: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) != IV_BYTES:
        raise ValueError(f"{what} is {len(raw)} bytes in UTF-8; the IV is {IV_BYTES} characters")
    return raw


def _env_flag(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{name}={environ[name]!r} is not a boolean (true/false, 1/0, yes/no, on/off)")
