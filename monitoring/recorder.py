"""In-process buffers for the request log and the error log, flushed to PostgreSQL.

The hot path only adds numbers to a dict under a lock. A daemon thread per process (started on
first use, restarted after a fork) writes the buffered minutes every FLUSH_SECONDS with one
upsert per (minute, endpoint, method) that *adds* to the row, so many processes share a row
without reading it. Errors are written by the same thread: a logging handler must never touch
the database connection of a request whose transaction may be broken.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from common.background import ProcessThread

from .metrics import REQUEST_LOG_DROPPED
from .models import ErrorLog

logger = logging.getLogger("ticketwar.monitoring")

# Upper bounds (ms) of the request latency buckets; the last one catches everything above.
LATENCY_BUCKETS_MS = (25, 50, 100, 250, 500, 1000, 2000, 3000, 5000, 10000, float("inf"))
FLUSH_SECONDS = 5.0
# A flood of errors must not eat the memory of a process whose database is down.
MAX_PENDING_ERRORS = 500
# Nor the request log: (minute, endpoint, method) rows waiting for the database. A busy process
# makes a few hundred a minute; past this the oldest minutes are dropped (and counted).
MAX_PENDING_STATS = 20_000
# The methods the request log names; anything else a client sends is "OTHER" (one row, not one
# per invented method).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def method_key(method: str) -> str:
    """How the request log and the metrics name a request's method."""
    return method if method in KNOWN_METHODS else "OTHER"


@dataclass
class _Stat:
    count: int = 0
    errors: int = 0
    client_errors: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    db_queries: int = 0
    db_ms: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_MS))


_lock = threading.Lock()
_stats: dict[tuple[datetime, str, str], _Stat] = {}
_errors: deque[dict] = deque(maxlen=MAX_PENDING_ERRORS)
_wake = threading.Event()


def bucket_index(ms: float) -> int:
    for index, bound in enumerate(LATENCY_BUCKETS_MS):
        if ms <= bound:
            return index
    return len(LATENCY_BUCKETS_MS) - 1


def record_request(
    *, endpoint: str, method: str, status: int, duration_ms: float, db_queries: int, db_ms: float
) -> None:
    """Add one finished request to this process's buffer (no I/O)."""
    minute = timezone.now().replace(second=0, microsecond=0)
    key = (minute, endpoint[:200], method_key(method))
    with _lock:
        stat = _stats.get(key)
        if stat is None:
            stat = _stats[key] = _Stat()
        stat.count += 1
        stat.errors += status >= 500
        stat.client_errors += 400 <= status < 500
        stat.total_ms += duration_ms
        stat.max_ms = max(stat.max_ms, duration_ms)
        stat.db_queries += db_queries
        stat.db_ms += db_ms
        stat.buckets[bucket_index(duration_ms)] += 1
    _ensure_thread()


def record_error(entry: dict) -> None:
    """Queue one error (already formatted: message, traceback...) for the error log."""
    with _lock:
        _errors.append(entry)
    _ensure_thread()


def _ensure_thread() -> None:
    # Off in tests: they call flush() themselves, inside their own transaction.
    if getattr(settings, "MONITORING_FLUSH_IN_BACKGROUND", True):
        _flusher.ensure()


def _flush_forever() -> None:
    while True:
        _wake.wait(FLUSH_SECONDS)
        _wake.clear()
        flush()
        # This thread's own connection: drop it if broken or too old.
        close_old_connections()


def flush() -> None:
    """Write what this process buffered. Never raises: a failed write is retried next time."""
    with _lock:
        stats = dict(_stats)
        _stats.clear()
        errors = list(_errors)
        _errors.clear()
    if not stats and not errors:
        return
    try:
        if stats:
            _write_stats(stats)
        if errors:
            _write_errors(errors)
    except Exception:
        # Database away: put the numbers back (merged with new ones) and try again later.
        with _lock:
            for key, stat in stats.items():
                _merge(_stats.setdefault(key, _Stat()), stat)
            for entry in errors:
                _errors.appendleft(entry)
            dropped = _drop_oldest(MAX_PENDING_STATS)
        logger.warning("monitoring buffers not written; retrying later", exc_info=True)
        if dropped:
            REQUEST_LOG_DROPPED.inc(dropped)
            logger.warning("request log: %d rows of the oldest minutes dropped (database away)", dropped)


def _drop_oldest(limit: int) -> int:
    """Keep at most ``limit`` waiting rows, the newest minutes; returns how many were dropped.
    Call with ``_lock`` held."""
    excess = len(_stats) - limit
    if excess <= 0:
        return 0
    for key in sorted(_stats)[:excess]:  # keys start with their minute: oldest first
        del _stats[key]
    return excess


def _merge(into: _Stat, other: _Stat) -> None:
    into.count += other.count
    into.errors += other.errors
    into.client_errors += other.client_errors
    into.total_ms += other.total_ms
    into.max_ms = max(into.max_ms, other.max_ms)
    into.db_queries += other.db_queries
    into.db_ms += other.db_ms
    into.buckets = [a + b for a, b in zip(into.buckets, other.buckets, strict=True)]


# Adds to the existing row; bucket arrays are summed element-wise.
_UPSERT = """
INSERT INTO monitoring_requeststat
    (minute, endpoint, method, count, errors, client_errors, total_ms, max_ms, db_queries, db_ms, buckets)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (minute, endpoint, method) DO UPDATE SET
    count = monitoring_requeststat.count + EXCLUDED.count,
    errors = monitoring_requeststat.errors + EXCLUDED.errors,
    client_errors = monitoring_requeststat.client_errors + EXCLUDED.client_errors,
    total_ms = monitoring_requeststat.total_ms + EXCLUDED.total_ms,
    max_ms = GREATEST(monitoring_requeststat.max_ms, EXCLUDED.max_ms),
    db_queries = monitoring_requeststat.db_queries + EXCLUDED.db_queries,
    db_ms = monitoring_requeststat.db_ms + EXCLUDED.db_ms,
    buckets = ARRAY(
        SELECT COALESCE(a, 0) + COALESCE(b, 0)
        FROM unnest(monitoring_requeststat.buckets, EXCLUDED.buckets) AS t(a, b)
    )
"""


def _write_stats(stats: dict[tuple[datetime, str, str], _Stat]) -> None:
    rows = [
        (minute, endpoint, method, s.count, s.errors, s.client_errors, s.total_ms, s.max_ms, s.db_queries, s.db_ms,
         s.buckets)
        for (minute, endpoint, method), s in sorted(stats.items(), key=lambda item: item[0])
    ]  # fmt: skip
    # Sorted keys: two processes flushing the same minutes lock the rows in the same order.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(_UPSERT, rows)


def _write_errors(errors: list[dict]) -> None:
    ErrorLog.objects.bulk_create([ErrorLog(**entry) for entry in errors])


def _flush_at_exit() -> None:
    # Only where the background thread runs: a test process exits after its database is gone.
    if _flusher.running_here:
        flush()


_flusher = ProcessThread("monitoring-flush", _flush_forever)
atexit.register(_flush_at_exit)
