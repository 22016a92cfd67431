"""The Redis connection helper: one place that talks to Redis and survives its failures.

Every synchronous Redis call of the web path (Django's cache API, the cached_db sessions,
django-ratelimit, ``get_client()`` users) goes through the "redis" circuit breaker, because
the breaker sits in the redis-py *connection* class that django-redis' pool creates:

- before a command is sent, an open breaker raises ``CircuitOpen`` (a redis ConnectionError)
  in microseconds instead of waiting for a refused connect or a socket timeout;
- a refused/reset connection or a socket timeout records a failure;
- any answer from the server (even an error reply) records a success.

django-redis turns the ConnectionError into a cache miss (``IGNORE_EXCEPTIONS``), so callers
fall back to PostgreSQL. Channels (asyncio client) and the Celery broker use their own
connections and their own guards.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.exceptions
from django_redis import get_redis_connection
from django_redis.pool import ConnectionFactory
from redis.backoff import NoBackoff
from redis.connection import Connection, SSLConnection
from redis.retry import Retry

from .breaker import CircuitBreaker, get_breaker

logger = logging.getLogger("ticketwar.redis")

_FAILURES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class CircuitOpen(redis.exceptions.ConnectionError):
    """Raised instead of talking to Redis while its breaker is open."""


def redis_breaker() -> CircuitBreaker:
    return get_breaker("redis")


def redis_available() -> bool:
    """False while the Redis breaker is open (a cheap check, no network)."""
    return redis_breaker().state != "open"


class _BreakerMixin:
    """Guards a redis-py connection with the "redis" breaker (see the module docstring)."""

    # Set while a command is being sent: connect() sends its own handshake commands through
    # send_packed_command, which must not ask the breaker a second time (in half-open state the
    # second ask would be refused and the probe would fail itself).
    _tw_sending = False

    def connect(self) -> None:
        # The pool connects before handing a connection out. While the breaker is open, do not
        # even open a socket: a stopped Redis still completes TCP handshakes until its backlog
        # is full, after which every connect would wait the full connect timeout.
        if self._tw_sending:
            return super().connect()
        breaker = redis_breaker()
        if breaker.state == "open":
            raise CircuitOpen("Redis circuit breaker is open")
        try:
            return super().connect()
        except _FAILURES:
            breaker.record_failure()
            raise

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if self._tw_sending:
            return super().send_packed_command(command, check_health)
        breaker = redis_breaker()
        if not breaker.allow():
            raise CircuitOpen("Redis circuit breaker is open")
        self._tw_sending = True
        try:
            return super().send_packed_command(command, check_health)
        except _FAILURES:
            breaker.record_failure()
            raise
        finally:
            self._tw_sending = False

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        breaker = redis_breaker()
        try:
            response = super().read_response(*args, **kwargs)
        except _FAILURES:
            breaker.record_failure()
            raise
        except redis.exceptions.RedisError:
            breaker.record_success()  # an error *reply*: the server is alive
            raise
        breaker.record_success()
        return response


class BreakerConnection(_BreakerMixin, Connection):
    pass


class BreakerSSLConnection(_BreakerMixin, SSLConnection):
    pass


class BreakerConnectionFactory(ConnectionFactory):
    """django-redis connection factory whose pools make breaker-guarded connections.

    Also turns redis-py's own retries off: a retry doubles the wait on a hung server, and the
    breaker is the one place that decides when to try again.
    """

    def make_connection_params(self, url: str) -> dict[str, Any]:
        params = super().make_connection_params(url)
        params["connection_class"] = BreakerSSLConnection if url.startswith("rediss://") else BreakerConnection
        params["retry"] = Retry(NoBackoff(), 0)
        return params


def get_client():
    """The shared redis-py client of the default cache (short socket timeouts, breaker-guarded)."""
    return get_redis_connection("default")


def ping() -> tuple[bool, str]:
    """(True, "") when Redis answers PING; (False, why) otherwise. Never raises."""
    try:
        get_client().ping()
        return True, ""
    except CircuitOpen:
        return False, "redis circuit breaker open (recent calls failed)"
    except Exception as exc:  # connection refused, timeout, auth: all mean "not usable now"
        return False, f"redis unreachable: {type(exc).__name__}"
