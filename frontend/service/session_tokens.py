"""Liveness-session tokens: what every replica can derive instead of store.

A token carries the session's id, opening and expiry times and challenge, signed with HMAC-SHA256
under the server's session secret, so any replica with the same secret checks it without a
lookup. The
session's AES-256 key is HKDF-SHA256(secret, info = id): derived again wherever it is needed,
never stored, and useless for any other session. Only single use and the result need a shared
store (`frontend.service.session_store`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from frontend.crypto import KeyRing
from preprocessing.challenge import Action

TOKEN_VERSION = 1
SECRET_BYTES = 32
SESSION_TTL_S = 120.0
"""Open to capture: long enough to allow the camera and follow the guidance, short enough
that a token copied from a page is soon worthless (FACEGATE_SESSION_TTL_S)."""


class SessionTokenError(Exception):
    """A token that does not parse or whose signature does not hold (tampered or foreign)."""


class SessionExpired(Exception):
    """A genuine token past its expiry."""


@dataclass(frozen=True)
class SessionClaims:
    session_id: str
    opened_at: float
    expires_at: float
    actions: tuple[Action, ...]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionTokens:
    """Args:
    secret: at least 32 bytes, the same on every replica.
    clock: seconds since the epoch (tests pass their own).
    """

    def __init__(self, secret: bytes, clock=time.time) -> None:
        if len(secret) < SECRET_BYTES:
            raise ValueError(f"the session secret needs at least {SECRET_BYTES} bytes")
        self._signing = hmac.new(secret, b"facegate-session-token", hashlib.sha256).digest()
        self._secret = secret
        self.clock = clock

    def issue(self, actions: tuple[Action, ...], ttl_s: float) -> tuple[SessionClaims, str]:
        now = round(self.clock(), 3)
        claims = SessionClaims(secrets.token_urlsafe(16), now, round(now + ttl_s, 3), actions)
        payload = json.dumps(
            {"v": TOKEN_VERSION, "sid": claims.session_id, "iat": claims.opened_at,
             "exp": claims.expires_at, "ch": [a.value for a in actions]},
            separators=(",", ":"),
        ).encode()
        return claims, f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._signing, payload, hashlib.sha256).digest()

    def verify(self, token: str) -> SessionClaims:
        """The token's claims.

        Raises:
            SessionTokenError: malformed, or signed by another secret / altered.
            SessionExpired: genuine but expired.
        """
        try:
            payload_text, signature_text = token.strip().split(".")
            payload, signature = _unb64(payload_text), _unb64(signature_text)
        except ValueError as error:
            raise SessionTokenError("the session token does not parse") from error
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise SessionTokenError("the session token's signature does not hold")
        fields = json.loads(payload)
        if fields.get("v") != TOKEN_VERSION:
            raise SessionTokenError(f"session token version {fields.get('v')!r}")
        claims = SessionClaims(
            fields["sid"], float(fields["iat"]), float(fields["exp"]),
            tuple(Action(a) for a in fields["ch"]),
        )
        if self.clock() >= claims.expires_at:
            raise SessionExpired(f"session {claims.session_id} expired")
        return claims

    def key(self, session_id: str) -> bytes:
        """The session's AES-256-GCM key."""
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None,
            info=b"facegate-session-key:" + session_id.encode("ascii"),
        ).derive(self._secret)

    def keyring(self, session_id: str) -> KeyRing:
        """A key ring with only the session's key, nonce form only."""
        return KeyRing.nonce_only(self.key(session_id))
