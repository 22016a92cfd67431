"""Concurrent active users: distinct students with a request or an open websocket in the
last ACTIVE_WINDOW_SECONDS (5 minutes).

Each process remembers when it last reported a student and reports each at most once per
TOUCH_EVERY_SECONDS (ZADD tw:active_users <now> <user_id>): the request only notes the student
in memory, and a thread per process sends what was noted once a second, in one ZADD (with
MONITORING_FLUSH_IN_BACKGROUND off, the tests, at once). Counting is ZCOUNT over the window.
With Redis down (breaker "redis" open) the count falls back to this process's own memory: a
lower bound, never a database query.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings

from common import redis as redis_lib
from common.background import ProcessThread
from common.breaker import get_breaker

ACTIVE_WINDOW_SECONDS = 300
TOUCH_EVERY_SECONDS = 30
KEY = "tw:active_users"
_MAX_REMEMBERED = 100_000

FLUSH_SECONDS = 1.0

_lock = threading.Lock()
_last_touch: dict[int, float] = {}
_unsent: dict[int, float] = {}


def touch(user_id: int) -> None:
    """Mark a student active now (call on each authenticated request or websocket message)."""
    now = time.time()
    with _lock:
        last = _last_touch.get(user_id)
        if last is not None and now - last < TOUCH_EVERY_SECONDS:
            return
        _last_touch[user_id] = now
        _unsent[user_id] = now
        if len(_last_touch) > _MAX_REMEMBERED:
            _forget_older_than(now - ACTIVE_WINDOW_SECONDS)
    if settings.MONITORING_FLUSH_IN_BACKGROUND:
        _sender.ensure()
    else:
        flush()


def flush() -> None:
    """Send the students noted since the last flush, in one ZADD (lost if Redis is away: the
    count then falls back to this process's memory)."""
    with _lock:
        unsent = {str(user_id): at for user_id, at in _unsent.items()}
        _unsent.clear()
    if unsent:
        _redis_call(lambda client: client.zadd(KEY, unsent))


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        try:
            flush()
        except Exception:  # never let the sender die: the next second tries again
            logging.getLogger("ticketwar.monitoring").exception("active users not sent")


_sender = ProcessThread("active-users", _flush_forever)


def count(now: float | None = None) -> tuple[int, str]:
    """(active students, source) where source is 'redis' or 'process' (the fallback)."""
    now = now or time.time()
    result = _redis_call(lambda client: client.zcount(KEY, now - ACTIVE_WINDOW_SECONDS, "+inf"))
    if result is not None:
        return int(result), "redis"
    with _lock:
        return sum(1 for seen in _last_touch.values() if seen >= now - ACTIVE_WINDOW_SECONDS), "process"


def prune(now: float | None = None) -> None:
    """Drop members older than the window (run by the per-minute sampling task)."""
    now = now or time.time()
    _redis_call(lambda client: client.zremrangebyscore(KEY, "-inf", now - ACTIVE_WINDOW_SECONDS))


def forget_all() -> None:
    """Reset (tests)."""
    with _lock:
        _last_touch.clear()
        _unsent.clear()
    _redis_call(lambda client: client.delete(KEY))


def _forget_older_than(cutoff: float) -> None:
    for user_id in [uid for uid, seen in _last_touch.items() if seen < cutoff]:
        del _last_touch[user_id]


def _redis_call(fn):
    return get_breaker("redis").call(lambda: fn(redis_lib.get_client()), fallback=None)
