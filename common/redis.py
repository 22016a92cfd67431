"""The Redis connection helper: one place that talks to Redis and survives its failures.

Every synchronous Redis call of the web path and the workers (Django's cache API,
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
from django_redis.pool import ConnectionFactory, SentinelConnectionFactory
from redis.backoff import NoBackoff
from redis.connection import Connection, SSLConnection
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection, SentinelManagedSSLConnection

from .breaker import CircuitBreaker, get_breaker
from .redisconf import sentinel_kwargs, tls_options, url_parts

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


class BreakerSentinelConnection(_BreakerMixin, SentinelManagedConnection):
    pass


class BreakerSentinelSSLConnection(_BreakerMixin, SentinelManagedSSLConnection):
    pass


class BreakerSentinelConnectionFactory(SentinelConnectionFactory):
    """The same guard for a primary found through Redis Sentinel (settings ``REDIS_SENTINELS``).

    A connection asks the sentinels for the primary's address each time it connects, so after
    a failover the next connection (the breaker's probe) reaches the promoted replica.
    """

    def make_connection_params(self, url: str) -> dict[str, Any]:
        params = super().make_connection_params(url)
        if url:  # "" is the sentinels' own connection parameters (django-redis asks for them too)
            params["connection_class"] = (
                BreakerSentinelSSLConnection if url.startswith("rediss://") else BreakerSentinelConnection
            )
            params["retry"] = Retry(NoBackoff(), 0)
        return params


def get_client():
    """The shared redis-py client of the default cache (short socket timeouts, breaker-guarded)."""
    return get_redis_connection("default")


_role_clients: dict[tuple[int, str], redis.Redis] = {}
_role_lock = threading.Lock()


def _role_url(role: str) -> str:
    return {"cache": settings.CACHE_REDIS_URL, "broker": settings.CELERY_BROKER_URL}.get(
        role, settings.CHANNEL_REDIS_URL
    )


def _build_client(role: str) -> redis.Redis:
    timeouts = {
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.REDIS_SOCKET_TIMEOUT,
    }
    if role in settings.REDIS_SENTINEL_ROLES:
        parts = url_parts(settings.REDIS_URL)
        tls = {"ssl": True, **tls_options(settings.REDIS_URL, settings.REDIS_CA_FILE)} if parts["tls"] else {}
        sentinel = Sentinel(
            settings.REDIS_SENTINELS,
            sentinel_kwargs=sentinel_kwargs(
                settings.REDIS_URL, settings.REDIS_CA_FILE, timeout=settings.REDIS_SOCKET_TIMEOUT
            ),
        )
        return sentinel.master_for(
            settings.REDIS_SENTINEL_MASTER,
            db=parts["db"],
            username=parts["username"],
            password=parts["password"],
            retry=Retry(NoBackoff(), 0),
            **timeouts,
            **tls,
        )
    url = _role_url(role)
    return redis.Redis.from_url(
        url, retry=Retry(NoBackoff(), 0), **timeouts, **tls_options(url, settings.REDIS_CA_FILE)
    )


def role_client(role: str) -> redis.Redis:
    """A redis-py client of a role's Redis ("broker" or "channels"; "cache" for checks) with the
    cache's short timeouts, no retries and the certificate checks the libraries get: the same
    URL, or the same Sentinel-found primary, as the settings give them. One per process and role."""
    key = (os.getpid(), role)
    client = _role_clients.get(key)
    if client is None:
        with _role_lock:
            client = _role_clients.get(key)
            if client is None:
                client = _role_clients[key] = _build_client(role)
    return client


def broker_client() -> redis.Redis:
    """The Celery broker's Redis (callers use the "broker" breaker around their calls).

    When the broker shares the cache's Redis (the default), an open "redis" breaker already
    knows that server is failing: raise ``CircuitOpen`` at once rather than wait a socket
    timeout on a hung server for each call until the "broker" breaker has learnt it too.
    """
    if _where("broker") == _where("cache") and not redis_available():
        raise CircuitOpen("Redis circuit breaker is open (the broker shares the cache's Redis)")
    return role_client("broker")


def channel_client() -> redis.Redis:
    """The channel layer's Redis, for health checks (the layer has its own asyncio pool)."""
    return role_client("channels")


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
    seen = {_where("cache")}
    for role, name in (("broker", "broker redis"), ("channels", "channel redis")):
        if _where(role) in seen:
            continue
        seen.add(_where(role))
        ok, detail = _ping(role_client(role), name)
        if not ok:
            return ok, detail
    return True, ""


def _where(role: str) -> str:
    return "sentinel" if role in settings.REDIS_SENTINEL_ROLES else _role_url(role)
