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

There are three Redis roles, each with its own URL (settings ``CACHE_REDIS_URL``,
``CELERY_BROKER_URL``, ``CHANNEL_REDIS_URL``, all defaulting to ``REDIS_URL``):
``get_client()`` is the cache's, ``broker_client()`` the broker's (the worker kick lives beside
the messages it stands for), ``channel_client()`` the channel layer's (health checks only).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import redis
import redis.exceptions
from django.conf import settings
from django_redis import get_redis_connection
from django_redis.pool import ConnectionFactory
from redis.backoff import NoBackoff
from redis.connection import Connection, SSLConnection
from redis.retry import Retry

from .breaker import CircuitBreaker, get_breaker
from .redisconf import tls_options

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


_role_clients: dict[tuple[int, str], redis.Redis] = {}
_role_lock = threading.Lock()


def client_for(url: str) -> redis.Redis:
    """A redis-py client for ``url`` with the cache's short timeouts, no retries and the same
    certificate checks as the settings give the libraries (one per process and URL)."""
    key = (os.getpid(), url)
    client = _role_clients.get(key)
    if client is None:
        with _role_lock:
            client = _role_clients.get(key)
            if client is None:
                client = redis.Redis.from_url(
                    url,
                    socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
                    socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
                    retry=Retry(NoBackoff(), 0),
                    **tls_options(url, settings.REDIS_CA_FILE),
                )
                _role_clients[key] = client
    return client


def broker_client() -> redis.Redis:
    """The Celery broker's Redis (not breaker-guarded: callers use the "broker" breaker)."""
    return client_for(settings.CELERY_BROKER_URL)


def channel_client() -> redis.Redis:
    """The channel layer's Redis, for health checks (the layer has its own asyncio pool)."""
    return client_for(settings.CHANNEL_REDIS_URL)


def _ping(client, name: str) -> tuple[bool, str]:
    try:
        client.ping()
        return True, ""
    except CircuitOpen:
        return False, f"{name} circuit breaker open (recent calls failed)"
    except Exception as exc:  # connection refused, timeout, auth, TLS: all mean "not usable now"
        return False, f"{name} unreachable: {type(exc).__name__}"


def ping() -> tuple[bool, str]:
    """(True, "") when every Redis role answers PING; (False, why) otherwise. Never raises.

    The cache first (through its breaker); the broker's and the channel layer's Redis only when
    they are configured apart from the cache's.
    """
    ok, detail = _ping(get_client(), "redis")
    if not ok:
        return ok, detail
    seen = {settings.CACHE_REDIS_URL}
    for url, name in ((settings.CELERY_BROKER_URL, "broker redis"), (settings.CHANNEL_REDIS_URL, "channel redis")):
        if url in seen:
            continue
        seen.add(url)
        ok, detail = _ping(client_for(url), name)
        if not ok:
            return ok, detail
    return True, ""
