"""Circuit breakers: stop paying a timeout on every request while a dependency is down.

A dead Redis refuses in ~0.2 ms, but a *hung* one (process stopped, socket open) makes every
call wait the full socket timeout. After ``failure_threshold`` consecutive failures the breaker
opens and callers get their fallback at once; after ``reset_timeout`` seconds exactly one caller
is let through as a probe (half-open); its success closes the breaker, its failure re-opens it.

State lives in process memory (each web/worker process learns on its own within a few calls),
guarded by a lock because the threads of a process (the web server's request threads, a Celery
worker's) share it. Names in use: "redis", "broker" (Celery publish), "smtp", "webhook", "sentry".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis.exceptions
from django.conf import settings
from prometheus_client import Counter, Gauge

logger = logging.getLogger("ticketwar.breaker")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
_STATE_VALUE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}

# Declared here (not in monitoring/) so that any process using a breaker exports its state.
BREAKER_STATE = Gauge(
    "ticketwar_breaker_state",
    "Circuit breaker state per dependency: 0 closed, 1 half-open, 2 open.",
    ["name"],
    # With several worker processes (PROMETHEUS_MULTIPROC_DIR) the worst state wins.
    multiprocess_mode="max",
)
BREAKER_OPEN_TOTAL = Counter(
    "ticketwar_breaker_open",
    "Times a circuit breaker opened (dependency considered down).",
    ["name"],
)

_MISSING = object()


class CircuitBreaker:
    """A thread-safe closed -> open -> half-open -> closed state machine for one dependency."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 3,
        reset_timeout: float = 5.0,
        expected: tuple[type[BaseException], ...] = (Exception,),
    ) -> None:
        self.name = name
        self.failure_threshold = max(1, int(failure_threshold))
        self.reset_timeout = float(reset_timeout)
        self.expected = expected
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started_at: float | None = None
        self._probe_thread: int | None = None
        BREAKER_STATE.labels(name=name).set(0)
        BREAKER_OPEN_TOTAL.labels(name=name)  # the series exists (at 0) before the first opening

    # -- state ---------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """'closed', 'open' or 'half_open' (an open breaker past its delay reads 'half_open')."""
        with self._lock:
            if self._state == OPEN and time.monotonic() - self._opened_at >= self.reset_timeout:
                return HALF_OPEN
            return self._state

    @property
    def failures(self) -> int:
        with self._lock:
            return self._failures

    def snapshot(self) -> dict:
        """A JSON-friendly view for /healthz."""
        with self._lock:
            state = self._state
            if state == OPEN and time.monotonic() - self._opened_at >= self.reset_timeout:
                state = HALF_OPEN
            info: dict[str, Any] = {"state": state, "failures": self._failures}
            if self._state == OPEN:
                info["retry_in_seconds"] = round(max(0.0, self.reset_timeout - (time.monotonic() - self._opened_at)), 2)
            return info

    def _set_state(self, state: str) -> None:
        # Caller holds the lock.
        if state != self._state:
            logger.warning("circuit breaker %s: %s -> %s", self.name, self._state, state)
        self._state = state
        BREAKER_STATE.labels(name=self.name).set(_STATE_VALUE[state])

    # -- protocol ------------------------------------------------------------------------
    def allow(self) -> bool:
        """May the caller try the dependency now? In half-open, only one probe at a time."""
        with self._lock:
            now = time.monotonic()
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                if now - self._opened_at < self.reset_timeout:
                    return False
                self._set_state(HALF_OPEN)
                self._probe_started_at = now
                self._probe_thread = threading.get_ident()
                return True
            # HALF_OPEN: a probe is in flight. The probing thread itself may ask again (a guarded
            # call nested in another, e.g. breaker.call() around a Redis client that is guarded
            # too). If the probe never reported (its caller died), let another one through after
            # the same delay rather than staying stuck forever.
            if self._probe_thread == threading.get_ident():
                return True
            if self._probe_started_at is not None and now - self._probe_started_at < self.reset_timeout:
                return False
            self._probe_started_at = now
            self._probe_thread = threading.get_ident()
            return True

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._probe_started_at = None
            self._probe_thread = None
            if self._state != CLOSED:
                self._set_state(CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or (self._state == CLOSED and self._failures >= self.failure_threshold):
                self._opened_at = time.monotonic()
                self._probe_started_at = None
                self._probe_thread = None
                self._set_state(OPEN)
                BREAKER_OPEN_TOTAL.labels(name=self.name).inc()
            elif self._state == OPEN:
                # A late failure from a call started before the breaker opened: restart the delay.
                self._opened_at = time.monotonic()

    def reset(self) -> None:
        """Force the breaker closed (tests, or an operator after a fix)."""
        with self._lock:
            self._failures = 0
            self._probe_started_at = None
            self._probe_thread = None
            self._set_state(CLOSED)

    def call(self, fn: Callable[..., Any], *args: Any, fallback: Any = None, **kwargs: Any) -> Any:
        """Run ``fn`` through the breaker.

        Returns ``fallback`` (called without arguments if callable) when the breaker is open or
        when ``fn`` raises one of ``self.expected``. Any other exception means the dependency did
        answer: it counts as a success for the breaker and is re-raised.
        """
        if not self.allow():
            return fallback() if callable(fallback) else fallback
        try:
            result = fn(*args, **kwargs)
        except self.expected as exc:
            self.record_failure()
            logger.info("circuit breaker %s: call failed (%s)", self.name, type(exc).__name__)
            return fallback() if callable(fallback) else fallback
        except BaseException:
            self.record_success()
            raise
        self.record_success()
        return result


_registry: dict[str, CircuitBreaker] = {}
_registry_lock = threading.Lock()


def _builtin_defaults(name: str) -> dict:
    """What counts as a failure for the well-known dependencies."""
    if name == "redis":
        # Refused/reset/timeout mean "Redis is not usable"; a ResponseError means it answered.
        return {"expected": (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)}
    return {}


def _defaults_for(name: str) -> dict:
    """Per-name thresholds from settings.CIRCUIT_BREAKERS (read lazily, not at import)."""
    try:
        return dict(getattr(settings, "CIRCUIT_BREAKERS", {}).get(name, {}))
    except Exception:  # settings not configured (plain scripts): library defaults
        return {}


def get_breaker(name: str, **kwargs: Any) -> CircuitBreaker:
    """The process-wide breaker called ``name``, created on first use.

    ``kwargs`` (failure_threshold, reset_timeout, expected) apply only when this call creates
    it; settings.CIRCUIT_BREAKERS[name] overrides the code's choice so operators can tune it.
    """
    breaker = _registry.get(name)
    if breaker is not None:
        return breaker
    with _registry_lock:
        breaker = _registry.get(name)
        if breaker is None:
            options = {**_builtin_defaults(name), **kwargs, **_defaults_for(name)}
            breaker = CircuitBreaker(name, **options)
            _registry[name] = breaker
        return breaker


def all_breakers() -> dict[str, CircuitBreaker]:
    """Every breaker created in this process, by name (for /healthz and metrics)."""
    with _registry_lock:
        return dict(_registry)
