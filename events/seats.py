"""The seats of an event: the one owner of ``Event.remaining``, and of what follows each change.

Every seat taken, freed or resized goes through here. Each function is one conditional
``UPDATE`` with F() expressions whose row count decides: PostgreSQL re-checks the WHERE on the
latest row version after waiting for a concurrent writer, so no seat is ever taken twice or
lost. ``among`` narrows the event by the caller's own conditions (claim window open, no claim
waiting in the queue...), ANDed into the same statement. The check constraints
``events.models.SEAT_CONSTRAINTS`` are the truth behind them.

Once the transaction that changed the seats commits, this module runs, in this order:

1. ``events.cache.refresh_remaining``: the cached count is rewritten, so every page, the API and
   the next claim's early check read the new count;
2. only when seats were freed (a ticket given back, an offer passed on with nobody next, a larger
   capacity): the waiting list offers them, in its order. The list is an app above this one, so
   it names its offer function here when Django starts (``WaitlistConfig.ready`` calls
   ``freed_seats_go_to``).

A step that fails is logged and the next one still runs; the waiting list's beat sweep (every
15 s) offers any seat a missed step left free.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.db import connection, models, transaction
from django.db.models import QuerySet

from .cache import refresh_remaining
from .models import Event

logger = logging.getLogger("ticketwar.events")

_freed_seats_taker: Callable[[int], object] | None = None


def freed_seats_go_to(taker: Callable[[int], object]) -> None:
    """Name what offers an event's freed seats, called with the event id after commit (step 2)."""
    global _freed_seats_taker
    _freed_seats_taker = taker


def _after_change(event_id: int, *, freed: bool) -> None:
    steps: list[Callable[[int], object]] = [refresh_remaining]
    if freed and _freed_seats_taker is not None:
        steps.append(_freed_seats_taker)
    for step in steps:
        try:
            step(event_id)
        except Exception:  # the cache's short TTL and the list's sweep make up for a missed step
            logger.warning("after a seat change of event %s, %s failed", event_id, step.__qualname__, exc_info=True)


def _changed(event_id: int, *, freed: bool) -> None:
    transaction.on_commit(lambda: _after_change(event_id, freed=freed))


def seats_take(
    event_id: int, n: int = 1, *, now: datetime, keep: int = 0, among: QuerySet[Event] | None = None
) -> bool:
    """``UPDATE ... SET remaining = remaining - n WHERE id = %s AND status = 'published' AND
    remaining >= n + keep`` (and ``among``'s conditions); True if the ``n`` seats were taken.
    ``keep``: seats that must stay free for others (a shuffled event's pre-queue)."""
    events = Event.objects.all() if among is None else among
    taken = events.filter(pk=event_id, status=Event.Status.PUBLISHED, remaining__gte=n + keep).update(
        remaining=models.F("remaining") - n, updated_at=now
    )
    if taken:
        _changed(event_id, freed=False)
    return taken == 1


def seats_release(event_id: int, n: int = 1, *, now: datetime) -> bool:
    """Give ``n`` seats back to the pool. The caller guarantees they were taken: it holds the row
    that held them (a ticket, an offer), locked, in this transaction;
    ``events_event_remaining_within_capacity`` refuses more."""
    assert connection.in_atomic_block, "seats are given back in the transaction that locks their holder"
    released = Event.objects.filter(pk=event_id).update(remaining=models.F("remaining") + n, updated_at=now)
    if released:
        _changed(event_id, freed=True)
    return released == 1


def seats_resize(event_id: int, capacity: int, *, now: datetime) -> bool:
    """Move ``capacity`` and ``remaining`` by the same delta in one statement, only while the seats
    already taken still fit (``remaining >= capacity - new``); True if it did. (A larger capacity
    frees seats; a smaller one is passed on to the waiting list too, which then finds none.)"""
    changed = Event.objects.filter(pk=event_id, remaining__gte=models.F("capacity") - capacity).update(
        capacity=capacity, remaining=models.F("remaining") + capacity - models.F("capacity"), updated_at=now
    )
    if changed:
        _changed(event_id, freed=True)
    return changed == 1
