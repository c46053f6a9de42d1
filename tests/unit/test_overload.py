"""The overload step's bookkeeping: how connections are shared and what breaks the promise."""

from __future__ import annotations

from benchmarks.load.overload import MIX, ProbeAnswer, connections, verdict
from benchmarks.load.wrk import Step


def _step(codes: dict[str, int], ok: int, *, timeouts: int = 0, socket_errors: int = 0,
          unparsed: int = 0) -> Step:
    failed = sum(codes.values()) + unparsed
    return Step(concurrency=4, seconds=10.0, requests=ok + failed, ok=ok, failed=failed,
                codes=codes, socket_errors=socket_errors, timeouts=timeouts,
                requests_per_s=1.0, p50_ms=1, p90_ms=1, p95_ms=1, p99_ms=1, max_ms=1)


def test_connections_follow_the_mix_give_each_endpoint_one_and_add_up():
    for total in (4, 16, 64, 256):
        shares = connections(total)
        assert sum(shares.values()) == total and min(shares.values()) >= 1
        assert set(shares) == set(MIX)
    assert connections(256)["image_verification"] == 128


def test_answers_and_fast_503s_keep_the_promise():
    steps = {"image_verification": _step({"503": 40}, ok=60)}
    assert verdict(steps, 0, [ProbeAnswer("503", 0.05), ProbeAnswer("1000", 4.0)]) == []


def test_a_timeout_another_code_a_failed_model_call_or_a_slow_503_breaks_it():
    assert verdict({"a": _step({}, ok=1, timeouts=1)}, 0, [])
    assert verdict({"a": _step({}, ok=1, socket_errors=2)}, 0, [])
    assert verdict({"a": _step({"500": 1}, ok=1)}, 0, [])
    assert verdict({"a": _step({}, ok=1, unparsed=1)}, 0, [])
    assert verdict({"a": _step({}, ok=1)}, 1, [])
    assert verdict({"a": _step({}, ok=1)}, 0, [ProbeAnswer("503", 3.0)])
