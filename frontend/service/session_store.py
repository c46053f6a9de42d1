"""What a liveness session must share between replicas: that it was used, and its result.

Everything else is derived from the token (`frontend.service.session_tokens`). `MemoryStore`
serves one process; `RedisStore` (``FACEGATE_SESSION_STORE=redis://...``) serves several
replicas: the claim is ``SET NX`` with the session's remaining lifetime, so two replicas
given the same capture at once let exactly one through; the result expires on its own.

Neither keeps claims across its own restart, so each says since when its claims are complete
(`complete_since`): a session opened before that may have been used already and is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any, Protocol

import redis
import redis.asyncio

from frontend.contract.codes import Code, ContractError

RESULT_TTL_S = 600
"""How long the integrator's backend has to fetch a result."""
CLOCK_SLACK_S = 1.0
"""Redis's clock and a replica's may disagree a little: sessions opened this soon after
Redis started are refused too (erring towards a refused session, never a second use; the
whole-second uptime already errs that way by up to 1 s)."""


class SessionStore(Protocol):
    async def claim(self, session_id: str, ttl_s: float) -> bool:
        """Mark the session used; False when it already was."""

    async def put_result(self, session_id: str, result: dict[str, Any]) -> None: ...

    async def result(self, session_id: str) -> dict[str, Any] | None: ...

    async def complete_since(self) -> float:
        """Unix time since which every claim is held (the store's start)."""

    async def close(self) -> None: ...


class MemoryStore:
    """One process's sessions (entries expire with their sessions)."""

    def __init__(self, clock=time.monotonic, started_at: float | None = None) -> None:
        self.clock = clock
        self.started_at = time.time() if started_at is None else started_at
        self._claims: dict[str, float] = {}
        self._results: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    def _expire(self) -> None:
        now = self.clock()
        self._claims = {k: t for k, t in self._claims.items() if t > now}
        self._results = {k: v for k, v in self._results.items() if v[0] > now}

    async def claim(self, session_id: str, ttl_s: float) -> bool:
        async with self._lock:
            self._expire()
            if session_id in self._claims:
                return False
            self._claims[session_id] = self.clock() + max(ttl_s, 1.0)
            return True

    async def put_result(self, session_id: str, result: dict[str, Any]) -> None:
        self._results[session_id] = (self.clock() + RESULT_TTL_S, result)

    async def result(self, session_id: str) -> dict[str, Any] | None:
        self._expire()
        entry = self._results.get(session_id)
        return entry[1] if entry else None

    async def complete_since(self) -> float:
        return self.started_at

    async def close(self) -> None:
        pass


class RedisStore:
    """Sessions in Redis, shared by every replica that points at it."""

    PREFIX = "facegate:session:"

    def __init__(self, url: str) -> None:
        self.client = redis.asyncio.Redis.from_url(url, socket_timeout=5,
                                                   socket_connect_timeout=5)

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        try:
            yield
        except (redis.RedisError, OSError) as error:
            raise ContractError(Code.SERVICE_UNAVAILABLE, f"session store: {error}") from error

    async def claim(self, session_id: str, ttl_s: float) -> bool:
        ttl_ms = max(int(ttl_s * 1000), 1000)
        with self._reachable():
            return bool(await self.client.set(f"{self.PREFIX}{session_id}:used", 1, nx=True,
                                              px=ttl_ms))

    async def put_result(self, session_id: str, result: dict[str, Any]) -> None:
        with self._reachable():
            await self.client.set(f"{self.PREFIX}{session_id}:result", json.dumps(result),
                                  ex=RESULT_TTL_S)

    async def result(self, session_id: str) -> dict[str, Any] | None:
        with self._reachable():
            raw = await self.client.get(f"{self.PREFIX}{session_id}:result")
        return json.loads(raw) if raw is not None else None

    async def complete_since(self) -> float:
        """The Redis server's start: it keeps no claims over a restart (no persistence in the
        deploy files; with persistence this is only stricter than needed)."""
        with self._reachable():
            info = await self.client.info("server")
        return time.time() - float(info["uptime_in_seconds"]) + CLOCK_SLACK_S

    async def close(self) -> None:
        await self.client.aclose()


def open_store(url: str | None) -> SessionStore:
    """`RedisStore` for a ``redis://`` / ``rediss://`` / ``unix://`` URL, else `MemoryStore`."""
    return RedisStore(url) if url else MemoryStore()
