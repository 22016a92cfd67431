"""Prometheus increments and observations buffered in process memory, written once a second.

In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) every ``inc()`` or ``observe()`` of
prometheus_client takes a lock and writes a memory-mapped file; django-prometheus and our
middleware made about thirty of them per request, each after a ``labels()`` lookup. Here a
request only adds to a dict under one lock; a daemon thread per process (started on first use,
again after a fork) adds the totals to the real metrics every ``FLUSH_SECONDS``: one write per
label set and second instead of one per request. The metrics, their names and their labels are
unchanged, and /metrics still adds every process's files up; a value appears at most
``FLUSH_SECONDS`` later, and a process that dies loses at most its last second.

With ``MONITORING_FLUSH_IN_BACKGROUND`` off (the tests) every request's values are written at its
end, through the same buffer.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left

from django.conf import settings

from common.background import ProcessThread

FLUSH_SECONDS = 1.0

_lock = threading.Lock()
# (metric, labels as a tuple of (name, value)) -> amount
_counts: dict[tuple, float] = {}
# (histogram, labels) -> [count per bucket..., sum]
_observations: dict[tuple, list[float]] = {}
_background: bool | None = None


class _Child:
    """What ``metric.labels(...)`` returns, for code written against prometheus_client."""

    __slots__ = ("key",)

    def __init__(self, key: tuple) -> None:
        self.key = key

    def inc(self, amount: float = 1) -> None:
        with _lock:
            _counts[self.key] = _counts.get(self.key, 0) + amount

    def observe(self, amount: float) -> None:
        metric = self.key[0]
        bounds = metric._upper_bounds
        with _lock:
            slot = _observations.get(self.key)
            if slot is None:
                slot = _observations[self.key] = [0.0] * (len(bounds) + 1)
            slot[bisect_left(bounds, amount)] += 1  # the first bucket whose bound is >= amount
            slot[-1] += amount


def child(metric, **labels) -> _Child:
    """The buffered child of ``metric`` for ``labels`` (none for an unlabelled metric)."""
    return _Child((metric, tuple(labels.items())))


def flush() -> None:
    """Add what this process buffered to the real metrics (the multiprocess files)."""
    with _lock:
        counts = dict(_counts)
        _counts.clear()
        observations = dict(_observations)
        _observations.clear()
    for (metric, labels), amount in counts.items():
        (metric.labels(**dict(labels)) if labels else metric).inc(amount)
    for (metric, labels), slot in observations.items():
        target = metric.labels(**dict(labels)) if labels else metric
        for index, count in enumerate(slot[:-1]):
            if count:
                target._buckets[index].inc(count)
        target._sum.inc(slot[-1])


def request_done() -> None:
    """Called at the end of every request: starts the flusher, or (tests) writes at once."""
    global _background
    if _background is None:
        _background = getattr(settings, "MONITORING_FLUSH_IN_BACKGROUND", True)
    if not _background:
        flush()
        return
    _flusher.ensure()


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        try:
            flush()
        except Exception:  # never let the flusher die: the next second tries again
            logging.getLogger("monitoring.metrics").exception("metrics flush failed")


_flusher = ProcessThread("metrics-flush", _flush_forever)
