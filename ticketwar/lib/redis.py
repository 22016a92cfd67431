"""The Redis connection helper: one place that talks to Redis and survives its failures."""

from __future__ import annotations

import logging

from django_redis import get_redis_connection

logger = logging.getLogger("ticketwar.redis")


def get_client():
    """The shared redis-py client of the default cache (short socket timeouts)."""
    return get_redis_connection("default")


def ping() -> tuple[bool, str]:
    """(True, "") when Redis answers PING; (False, why) otherwise. Never raises."""
    try:
        get_client().ping()
        return True, ""
    except Exception as exc:  # connection refused, timeout, auth: all mean "not usable now"
        return False, f"redis unreachable: {type(exc).__name__}"
