"""Who may call: API keys, stored hashed, per-client rate and concurrency limits.

``FACEGATE_API_KEYS_FILE`` names a JSON file (README "Who may call")::

    {"clients": [{"name": "mobile-app", "keys": ["sha256:<64 hex>", ...],
                  "rate_per_s": 20, "burst": 40, "max_in_flight": 8}],
     "metrics_keys": ["sha256:<64 hex>"]}

A key is a random token (``python -m frontend.api.auth new`` makes one and prints its hash);
only its SHA-256 is stored, and a client may hold several, so a key is rotated by adding the
new one, moving the callers, then removing the old one. The file is read again when it
changes, without a restart; a file that no longer parses keeps the last good one (and says so
at ERROR). A key arrives as ``X-Api-Key: <key>`` or ``Authorization: Bearer <key>``.

Refusals: no or unknown key is 401 (``WWW-Authenticate: Bearer``); a client over its rate or
its concurrency is 429 with ``Retry-After``. ``/healthz`` and ``/readyz`` stay open for the
orchestrator's probes, ``/openapi.json`` for client generators (it holds no secret);
``/metrics`` takes a metrics key (or lives on its own port).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import math
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import hdrs, web

from frontend.contract.codes import Code, ContractError
from frontend.contract.sessions import SESSION_ENDPOINTS

LOGGER = logging.getLogger(__name__)

HASH_PREFIX = "sha256:"
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/capture",
                        *(e.path for e in SESSION_ENDPOINTS if e.public)})
"""No API key: the probes, and what a browser page calls (its session token authenticates
the session endpoints; the page is static)."""
PAGE_PREFIX = "/capture/"
METRICS_PATH = "/metrics"
RELOAD_CHECK_S = 1.0


class ApiKeysError(ValueError):
    """The keys file cannot be used; the message says where."""


def key_hash(key: str) -> str:
    """How a key is stored: its SHA-256 (keys are random tokens, not passwords)."""
    return HASH_PREFIX + hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Client:
    """One caller: its name, its keys' hashes, and its limits (0: none)."""

    name: str
    rate_per_s: float = 0.0
    burst: float = 0.0
    max_in_flight: int = 0
    tokens: float = 0.0
    refilled: float = field(default_factory=time.monotonic)
    in_flight: int = 0

    def take(self) -> float:
        """Take one request from the bucket: 0 when allowed, else seconds until it would be."""
        if self.rate_per_s <= 0:
            return 0.0
        now = time.monotonic()
        capacity = max(self.burst, 1.0)
        self.tokens = min(capacity, self.tokens + (now - self.refilled) * self.rate_per_s)
        self.refilled = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


@dataclass(frozen=True)
class KeyTable:
    clients: dict[str, Client]  # key hash -> client
    metrics: frozenset[str]


def parse_keys(text: str, source: str, previous: KeyTable | None = None) -> KeyTable:
    """The key table of a keys file; clients that keep their name keep their counters.

    Raises:
        ApiKeysError: not JSON, or a key that is not ``sha256:`` + 64 hex digits.
    """
    try:
        data = json.loads(text)
        clients = {}
        known = {c.name: c for c in (previous.clients.values() if previous else ())}
        for entry in data.get("clients", []):
            name = str(entry["name"])
            client = known.get(name) or Client(name)
            client.rate_per_s = float(entry.get("rate_per_s", 0))
            client.burst = float(entry.get("burst", client.rate_per_s))
            client.max_in_flight = int(entry.get("max_in_flight", 0))
            if name not in known:
                client.tokens = max(client.burst, 1.0)  # a new client starts with a full bucket
            for digest in entry["keys"]:
                clients[_checked(digest, source)] = client
        metrics = frozenset(_checked(d, source) for d in data.get("metrics_keys", []))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise ApiKeysError(f"{source}: {error}") from error
    return KeyTable(clients, metrics)


def _checked(digest: str, source: str) -> str:
    hexpart = digest[len(HASH_PREFIX):]
    if not digest.startswith(HASH_PREFIX) or len(hexpart) != 64 or any(
        c not in "0123456789abcdef" for c in hexpart
    ):
        raise ApiKeysError(f"{source}: a key must be stored as sha256:<64 lowercase hex>")
    return digest


class ApiKeys:
    """The keys file, read again when it changes.

    Raises:
        ApiKeysError: the file is missing or unusable at start.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp = self._stat()
        self.table = parse_keys(self._read(), str(self.path))
        self._checked = time.monotonic()

    def _stat(self) -> tuple[int, int]:
        try:
            stat = self.path.stat()
        except OSError as error:
            raise ApiKeysError(f"{self.path}: {error}") from error
        return stat.st_mtime_ns, stat.st_size

    def _read(self) -> str:
        try:
            return self.path.read_text()
        except OSError as error:
            raise ApiKeysError(f"{self.path}: {error}") from error

    def current(self) -> KeyTable:
        """The table, reloaded first if the file changed (checked at most once a second)."""
        now = time.monotonic()
        if now - self._checked >= RELOAD_CHECK_S:
            self._checked = now
            try:
                stamp = self._stat()
                if stamp != self._stamp:
                    self.table = parse_keys(self._read(), str(self.path), self.table)
                    self._stamp = stamp
                    LOGGER.warning("API keys reloaded from %s: %d keys", self.path,
                                   len(self.table.clients))
            except ApiKeysError as error:
                LOGGER.error("API keys file unusable, keeping the previous keys: %s", error)
        return self.table


def presented_key(request: web.Request) -> str | None:
    """The key a request carries, in ``X-Api-Key`` or ``Authorization: Bearer``."""
    if key := request.headers.get("X-Api-Key"):
        return key.strip()
    scheme, _, value = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _lookup(table: dict[str, Client] | frozenset[str], key: str | None):
    if key is None:
        return None
    digest = key_hash(key)
    for stored in table:  # compare every entry in constant time
        if hmac.compare_digest(stored, digest):
            return table[stored] if isinstance(table, dict) else stored
    return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authentication(keys: ApiKeys):
    """The middleware: every path but the probes needs a key; limits per client."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or request.path.startswith(PAGE_PREFIX):
            return await handler(request)
        table = keys.current()
        key = presented_key(request)
        if request.path == METRICS_PATH:
            if _lookup(table.metrics, key) is None:
                raise ContractError(Code.UNAUTHORIZED, "/metrics needs a metrics key")
            return await handler(request)
        client = _lookup(table.clients, key)
        if client is None:
            raise ContractError(
                Code.UNAUTHORIZED, "no API key" if key is None else "unknown API key")
        if client.max_in_flight and client.in_flight >= client.max_in_flight:
            raise ContractError(
                Code.TOO_MANY_REQUESTS, f"{client.name}: {client.in_flight} in progress",
                retry_after_s=1,
            )
        wait_s = client.take()
        if wait_s > 0:
            raise ContractError(
                Code.TOO_MANY_REQUESTS, f"{client.name}: over {client.rate_per_s:g}/s",
                retry_after_s=math.ceil(wait_s),
            )
        client.in_flight += 1
        try:
            return await handler(request)
        finally:
            client.in_flight -= 1

    return middleware


def main(argv: list[str] | None = None) -> int:
    """``python -m frontend.api.auth new``: a fresh key and the line to store for it."""
    parser = argparse.ArgumentParser(description="Make an API key for FACEGATE_API_KEYS_FILE.")
    parser.add_argument("command", choices=["new", "hash"])
    parser.add_argument("key", nargs="?", help="for hash: the key (else read from stdin)")
    args = parser.parse_args(argv)
    key = secrets.token_urlsafe(32) if args.command == "new" else (
        args.key or sys.stdin.readline().strip()
    )
    if args.command == "new":
        print(f"key (give it to the client, store it nowhere): {key}", file=sys.stderr)
    print(key_hash(key))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
