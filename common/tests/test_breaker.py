"""The circuit breaker state machine (no server involved: it is pure process state)."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client import REGISTRY

from common.breaker import CircuitBreaker, all_breakers, get_breaker


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("ticketwar_breaker_state", {"name": name})


def opened_total(name: str) -> float:
    return REGISTRY.get_sample_value("ticketwar_breaker_open_total", {"name": name}) or 0.0


def test_opens_after_threshold_consecutive_failures():
    breaker = CircuitBreaker("t-threshold", failure_threshold=3, reset_timeout=60)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.record_success()  # a success in between resets the count
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    assert gauge("t-threshold") == 2
    assert opened_total("t-threshold") == 1


def test_half_open_lets_exactly_one_probe_through_then_closes_on_success():
    breaker = CircuitBreaker("t-probe", failure_threshold=1, reset_timeout=0.05)
    breaker.record_failure()
    assert not breaker.allow()
    time.sleep(0.06)
    assert breaker.state == "half_open"
    results: list[bool] = []
    barrier = threading.Barrier(20)

    def ask():
        barrier.wait()
        results.append(breaker.allow())

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1
    assert gauge("t-probe") == 1
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()
    assert gauge("t-probe") == 0


def test_failed_probe_reopens_for_another_delay():
    breaker = CircuitBreaker("t-reopen", failure_threshold=1, reset_timeout=0.05)
    breaker.record_failure()
    time.sleep(0.06)
    assert breaker.allow()  # the probe
    breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    assert opened_total("t-reopen") == 2


def test_probe_that_never_reports_does_not_wedge_the_breaker():
    breaker = CircuitBreaker("t-lost-probe", failure_threshold=1, reset_timeout=0.05)
    breaker.record_failure()
    time.sleep(0.06)
    assert breaker.allow()  # a probe that never reports back

    def ask_elsewhere() -> bool:
        answer = []
        thread = threading.Thread(target=lambda: answer.append(breaker.allow()))
        thread.start()
        thread.join()
        return answer[0]

    assert not ask_elsewhere()
    time.sleep(0.06)
    assert ask_elsewhere()


def test_call_returns_fallback_value_or_callable_and_counts_failures():
    breaker = CircuitBreaker("t-call", failure_threshold=2, reset_timeout=60, expected=(ConnectionError,))
    calls = []

    def broken():
        calls.append(1)
        raise ConnectionError("refused")

    assert breaker.call(broken, fallback="cached") == "cached"
    assert breaker.call(broken, fallback=lambda: "computed") == "computed"
    assert breaker.state == "open"
    # Open: the function is not called at all.
    assert breaker.call(broken, fallback=None) is None
    assert len(calls) == 2


def test_call_passes_arguments_and_reraises_unexpected_errors_as_success():
    breaker = CircuitBreaker("t-args", failure_threshold=1, reset_timeout=60, expected=(ConnectionError,))
    assert breaker.call(lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(ValueError, match="bad input"):
        breaker.call(lambda: (_ for _ in ()).throw(ValueError("bad input")))
    # The dependency answered (it was the input that was wrong): still closed.
    assert breaker.state == "closed"


def test_registry_returns_one_breaker_per_name_and_lists_them(settings):
    settings.CIRCUIT_BREAKERS = {"t-registry": {"failure_threshold": 7}}
    first = get_breaker("t-registry", failure_threshold=2, reset_timeout=1.5)
    assert get_breaker("t-registry") is first
    assert first.failure_threshold == 7  # settings win over the code's choice
    assert first.reset_timeout == 1.5
    assert all_breakers()["t-registry"] is first


def test_redis_breaker_counts_connection_errors_not_error_replies():
    import redis.exceptions

    breaker = get_breaker("redis")
    assert redis.exceptions.ConnectionError in breaker.expected
    assert redis.exceptions.TimeoutError in breaker.expected
    assert redis.exceptions.ResponseError not in breaker.expected


def test_snapshot_for_healthz():
    breaker = CircuitBreaker("t-snapshot", failure_threshold=1, reset_timeout=30)
    assert breaker.snapshot() == {"state": "closed", "failures": 0}
    breaker.record_failure()
    snap = breaker.snapshot()
    assert snap["state"] == "open" and snap["failures"] == 1 and 29 <= snap["retry_in_seconds"] <= 30


def test_nested_guarded_calls_in_the_probing_thread_share_the_probe():
    breaker = CircuitBreaker("t-nested", failure_threshold=1, reset_timeout=0.05)
    breaker.record_failure()
    time.sleep(0.06)
    inner = []
    # breaker.call() around a client whose connections ask the same breaker again.
    assert breaker.call(lambda: inner.append(breaker.allow()) or "ok") == "ok"
    assert inner == [True]
    assert breaker.state == "closed"
    # Another thread asking during a probe is still refused.
    breaker.record_failure()
    time.sleep(0.06)
    assert breaker.allow()
    other = []
    thread = threading.Thread(target=lambda: other.append(breaker.allow()))
    thread.start()
    thread.join()
    assert other == [False]
