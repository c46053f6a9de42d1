"""Liveness-session tokens and stores: what is derived, what is shared, and each refusal."""

from __future__ import annotations

import asyncio
import time

import pytest

from frontend.contract.codes import Code, ContractError
from frontend.crypto import DecryptionError
from frontend.service.session_store import CLOCK_SLACK_S, MemoryStore, RedisStore
from frontend.service.session_tokens import SessionExpired, SessionTokenError, SessionTokens
from frontend.service.sessions import SessionService
from preprocessing.challenge import Action
from tests.conftest import free_port, redis_server

SECRET = b"s" * 32
ACTIONS = (Action.TURN_LEFT, Action.LOOK_UP)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_any_replica_with_the_secret_reads_the_token_and_derives_the_same_key():
    claims, token = SessionTokens(SECRET).issue(ACTIONS, 120)
    other = SessionTokens(SECRET)
    assert other.verify(token) == claims
    assert other.key(claims.session_id) == SessionTokens(SECRET).key(claims.session_id)
    assert len(other.key(claims.session_id)) == 32


def test_each_session_has_its_own_key():
    tokens = SessionTokens(SECRET)
    (a, _), (b, _) = tokens.issue(ACTIONS, 120), tokens.issue(ACTIONS, 120)
    assert a.session_id != b.session_id and tokens.key(a.session_id) != tokens.key(b.session_id)


def test_a_payload_sealed_for_one_session_does_not_open_under_another():
    tokens = SessionTokens(SECRET)
    (a, _), (b, _) = tokens.issue(ACTIONS, 120), tokens.issue(ACTIONS, 120)
    sealed = tokens.keyring(a.session_id).encrypt(b"frame")
    assert tokens.keyring(a.session_id).decrypt(sealed) == b"frame"
    with pytest.raises(DecryptionError):
        tokens.keyring(b.session_id).decrypt(sealed)


def test_an_expired_token_is_refused_as_expired():
    clock = Clock()
    tokens = SessionTokens(SECRET, clock=clock)
    _, token = tokens.issue(ACTIONS, 120)
    clock.now += 121
    with pytest.raises(SessionExpired):
        tokens.verify(token)


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # the signature
    lambda t: "eyJ2IjoxLCJzaWQiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5LCJjaCI6W119" + t[t.index("."):],
    lambda t: t.replace(".", ""),
    lambda t: "not a token",
])
def test_an_altered_token_is_refused(tamper):
    _, token = SessionTokens(SECRET).issue(ACTIONS, 120)
    with pytest.raises(SessionTokenError):
        SessionTokens(SECRET).verify(tamper(token))


def test_a_token_of_another_server_is_refused():
    _, token = SessionTokens(b"t" * 32).issue(ACTIONS, 120)
    with pytest.raises(SessionTokenError):
        SessionTokens(SECRET).verify(token)


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError):
        SessionTokens(b"short")


def _service(clock: Clock) -> SessionService:
    service = SessionService.__new__(SessionService)  # only claims() is exercised here
    service.tokens = SessionTokens(SECRET, clock=clock)
    return service


def test_the_service_answers_4101_for_expired_and_4102_for_tampered_tokens():
    clock = Clock()
    service = _service(clock)
    _, token = service.tokens.issue(ACTIONS, 10)
    with pytest.raises(ContractError) as tampered:
        service.claims(token + "x")
    assert tampered.value.code is Code.SESSION_INVALID
    assert tampered.value.field == "session_token"
    clock.now += 11
    with pytest.raises(ContractError) as expired:
        service.claims(token)
    assert expired.value.code is Code.SESSION_EXPIRED


async def _single_use_and_results(store_a, store_b) -> None:
    assert await store_a.claim("s1", 60) is True
    assert await store_b.claim("s1", 60) is False  # the other replica sees the claim
    assert await store_a.result("s1") is None
    await store_b.put_result("s1", {"passed": True})
    assert await store_a.result("s1") == {"passed": True}


async def test_the_memory_store_claims_a_session_once_and_keeps_its_result():
    store = MemoryStore()
    await _single_use_and_results(store, store)


async def test_the_memory_store_forgets_a_claim_after_its_lifetime():
    now = [0.0]
    store = MemoryStore(clock=lambda: now[0])
    assert await store.claim("s1", 5)
    now[0] = 6
    assert await store.claim("s1", 5)


async def test_a_store_says_since_when_it_holds_every_claim():
    assert await MemoryStore(started_at=1000.0).complete_since() == 1000.0
    before = time.time()
    with redis_server() as url:
        store = RedisStore(url)
        try:
            since = await store.complete_since()
        finally:
            await store.close()
    # uptime is whole seconds; the slack errs towards refusing sessions opened around the start
    assert before - 1 <= since <= time.time() + CLOCK_SLACK_S


async def test_two_replicas_on_one_redis_let_exactly_one_capture_claim_a_session(redis_url):
    a, b = RedisStore(redis_url), RedisStore(redis_url)
    try:
        await _single_use_and_results(a, b)
        outcomes = await asyncio.gather(*(s.claim("race", 60) for s in (a, b) * 5))
        assert sorted(outcomes) == [False] * 9 + [True]
    finally:
        await a.close()
        await b.close()


async def test_an_unreachable_redis_is_503_not_a_crash():
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(ContractError) as refused:
            await store.claim("s1", 60)
        assert refused.value.code is Code.SERVICE_UNAVAILABLE
    finally:
        await store.close()
