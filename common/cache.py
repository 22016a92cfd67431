"""Cached reads with stampede protection and hit/miss counting per key family.

An entry is stored as ``(value, fresh_until)`` with a Redis TTL longer than its fresh
lifetime. When it goes stale, exactly one request (the one that wins ``SET lock NX PX``)
recomputes it; the others serve the stale copy meanwhile, or, when there is none (first read,
or just invalidated), wait briefly for the winner's value instead of all querying PostgreSQL.

Everything degrades to "compute from PostgreSQL" when Redis is unavailable: the cache calls go
through the "redis" circuit breaker (common/redis.py), so a dead or hung Redis costs
nothing once the breaker is open.
"""

from __future__ import annotations

import copy
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from prometheus_client import Counter

from .redis import get_client, redis_available

logger = logging.getLogger("ticketwar.cache")

CACHE_REQUESTS = Counter(
    "ticketwar_cache_requests",
    "Cached reads by key family and result (hit or miss).",
    ["family", "result"],
)
CACHE_RECOMPUTES = Counter(
    "ticketwar_cache_recomputes",
    "Values recomputed from the database after a miss, by key family.",
    ["family"],
)
CACHE_INVALIDATION_FAILURES = Counter(
    "ticketwar_cache_invalidation_failures",
    "Invalidations that could not reach Redis (retried when it answers again).",
    ["family"],
)

# How long the recomputing request holds the lock, and how long the others wait for it when
# they have no stale copy. Both are far above a normal recompute (a few ms) and far below a
# user's patience; after the wait, a request computes the value itself.
LOCK_MS = 2000
WAIT_SECONDS = 0.5
POLL_SECONDS = 0.01

_pending_invalidations: set[str] = set()
_pending_lock = threading.Lock()

# Process-local copies for the few keys every hot request reads (``local_ttl``): key ->
# (value, monotonic time it expires). An invalidation in this process drops its copy at once;
# other processes' copies age out within ``local_ttl`` (a second).
_local: dict[str, tuple[Any, float]] = {}
_LOCAL_MAX_KEYS = 10_000


def _local_get(key: str) -> Any:
    held = _local.get(key)
    if held is None or held[1] <= time.monotonic():
        return _NOTHING
    value = held[0]
    if isinstance(value, (int, float, str, bytes, tuple)):
        return value
    # Each request gets its own copy (a model row), as an unpickled one was: callers set
    # attributes on it, and threads share this dict.
    return copy.copy(value)


def _local_put(key: str, value: Any, seconds: float) -> None:
    if seconds <= 0:
        return
    if len(_local) >= _LOCAL_MAX_KEYS:
        _local.clear()  # bounded: odd keys (unknown slugs) cannot grow it without end
    # A copy: the caller gets ``value`` itself and may set attributes on it.
    kept = value if isinstance(value, (int, float, str, bytes, tuple)) else copy.copy(value)
    _local[key] = (kept, time.monotonic() + seconds)


def local_clear() -> None:
    """Forget every process-local copy (tests, after clearing Redis)."""
    _local.clear()


# The counter's child per (family, result), looked up once: every cached read counts itself.
_counters: dict[tuple[str, bool], object] = {}


def _count(family: str, hit: bool) -> None:
    counter = _counters.get((family, hit))
    if counter is None:
        counter = _counters[(family, hit)] = CACHE_REQUESTS.labels(family=family, result="hit" if hit else "miss")
    counter.inc()


def _fresh(entry: Any, now: float) -> bool:
    return isinstance(entry, tuple) and len(entry) == 2 and entry[1] > now


def fresh_entry(entry: Any) -> bool:
    """True if ``entry`` (as stored by cache_get_or_compute) is still fresh."""
    return _fresh(entry, time.time())


def count_read(family: str, *, hit: bool) -> None:
    """Count a read of ``family`` made elsewhere (the logged-in user kept in process memory)."""
    _count(family, hit)


def cache_get_or_compute(
    family: str,
    key: str,
    compute: Callable[[], Any],
    *,
    ttl: float,
    stale_ttl: float | None = None,
    serve_stale: bool = True,
    local_ttl: float = 0.0,
) -> Any:
    """The cached value of ``key``, computing it with ``compute()`` on a miss.

    ``ttl``: seconds the value is fresh. ``stale_ttl``: extra seconds a stale copy is kept
    for the others to serve while one request recomputes (``serve_stale=False`` never serves
    it, e.g. for users). ``compute`` must return a picklable value, never None. ``local_ttl``:
    seconds a fresh value is also kept in this process (no Redis round trip, no unpickling).
    """
    if local_ttl:
        value = _local_get(key)
        if value is not _NOTHING:
            _count(family, hit=True)
            return value
    _flush_pending_invalidations()
    if not redis_available():
        _count(family, hit=False)
        CACHE_RECOMPUTES.labels(family=family).inc()
        return compute()
    entry = cache.get(key)
    value = _fresh_hit(family, key, entry, local_ttl)
    if value is not _NOTHING:
        return value
    token = _lock(key)
    if token is None and redis_available():
        if entry is not None and serve_stale and isinstance(entry, tuple):
            # Someone else is recomputing: the stale copy is good enough for a moment.
            _count(family, hit=True)
            return entry[0]
        _count(family, hit=False)
        value = _wait_for(key)
        if value is not _NOTHING:
            return value
    elif token is not None and (value := _fresh_hit(family, key, cache.get(key), local_ttl)) is not _NOTHING:
        # A request that read the stale copy just as another finished recomputing and let the
        # lock go: the fresh value is there, no second recompute for the same crowd.
        _release(key, token)
        return value
    else:
        _count(family, hit=False)
    try:
        value = compute()
    except BaseException:
        if token is not None:  # let the next request recompute at once rather than wait
            _release(key, token)
        raise
    CACHE_RECOMPUTES.labels(family=family).inc()
    # Stored only if the lock is still ours: an invalidation deletes the lock, so a value
    # computed from rows read *before* a change can never overwrite the change.
    if token is not None and _store_if_locked(key, token, (value, time.time() + ttl), ttl + (stale_ttl or 0) + 1):
        _local_put(key, value, min(local_ttl, ttl))
    return value


_NOTHING = object()


def _fresh_hit(family: str, key: str, entry: Any, local_ttl: float) -> Any:
    """``entry``'s value if it is fresh (counted as a hit, kept locally), else ``_NOTHING``."""
    now = time.time()
    if not _fresh(entry, now):
        return _NOTHING
    _count(family, hit=True)
    _local_put(key, entry[0], min(local_ttl, entry[1] - now))
    return entry[0]


def _lock_key(key: str) -> str:
    return f"lock:{key}"


def _lock(key: str) -> str | None:
    """Take the recompute lock (SET NX PX); returns its token, or None if held or unreachable."""
    token = secrets.token_hex(8)
    try:
        return token if get_client().set(cache.make_key(_lock_key(key)), token, nx=True, px=LOCK_MS) else None
    except Exception:  # Redis unreachable (breaker records it): behave as "no lock"
        return None


# Write the value and release the lock, only if the lock is still ours (it may have been
# deleted by an invalidation, or expired and been taken by another request).
_STORE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3])
  redis.call('del', KEYS[1])
  return 1
end
return 0
"""


_RELEASE_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def _release(key: str, token: str) -> None:
    try:
        get_client().eval(_RELEASE_SCRIPT, 1, cache.make_key(_lock_key(key)), token)
    except Exception:  # unreachable: the lock expires by itself after LOCK_MS
        logger.debug("could not release the cache lock of %s", key)


def _store_if_locked(key: str, token: str, entry: tuple, timeout: float) -> bool:
    try:
        stored = get_client().eval(
            _STORE_SCRIPT,
            2,
            cache.make_key(_lock_key(key)),
            cache.make_key(key),
            token,
            cache.client.encode(entry),
            int(timeout * 1000),
        )
        return bool(stored)
    except Exception:  # Redis unreachable (the breaker records it); the lock expires by itself
        return False


def _wait_for(key: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        entry = cache.get(key)
        if _fresh(entry, time.time()):
            return entry[0]
        if not redis_available():
            break
    return _NOTHING


def cache_delete(family: str, *keys: str) -> None:
    """Invalidate ``keys``. If Redis cannot be reached, remember them and retry later.

    A hung Redis keeps its data: without the retry, an event saved during the outage would be
    served stale for up to its TTL once Redis answers again.
    """
    if not keys:
        return
    for key in keys:
        _local.pop(key, None)
    try:
        if not redis_available():
            raise ConnectionError("redis breaker open")
        get_client().delete(*_with_locks(keys))
    except Exception:
        CACHE_INVALIDATION_FAILURES.labels(family=family).inc()
        logger.warning("cache invalidation deferred (redis unavailable)", extra={"keys": list(keys)})
        with _pending_lock:
            _pending_invalidations.update(keys)


def _with_locks(keys) -> list[str]:
    """The stored keys and their recompute locks (deleting the lock voids a running recompute)."""
    return [cache.make_key(name) for key in keys for name in (key, _lock_key(key))]


def cache_set_fresh(key: str, value: Any, *, ttl: float, stale_ttl: float = 0) -> None:
    """Write a freshly computed value (write-through after a change)."""
    _local.pop(key, None)
    if not redis_available():
        return
    cache.set(key, (value, time.time() + ttl), timeout=ttl + stale_ttl + 1)


def cache_prime(key: str, value: Any, *, ttl: float, stale_ttl: float = 0) -> None:
    """Store ``value`` only if ``key`` holds nothing (a value read alongside another one)."""
    if not redis_available():
        return
    cache.add(key, (value, time.time() + ttl), timeout=ttl + stale_ttl + 1)


def _flush_pending_invalidations() -> None:
    if not _pending_invalidations or not redis_available():
        return
    with _pending_lock:
        keys = list(_pending_invalidations)
        _pending_invalidations.clear()
    try:
        get_client().delete(*_with_locks(keys))
        logger.info("deferred cache invalidations applied", extra={"count": len(keys)})
    except Exception:
        with _pending_lock:
            _pending_invalidations.update(keys)


def pending_invalidations() -> set[str]:
    with _pending_lock:
        return set(_pending_invalidations)
