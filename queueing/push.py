"""Live updates for waiting pages, sent by the workers after each batch has committed.

Fan-out stays linear: per batch, one message per *decided* entry (to that entry's group,
O(batch)) and at most one progress message per event every PROGRESS_INTERVAL_SECONDS (to the
event's group). A progress message carries the event's running count of decided entries and
the measured drain rate; each websocket consumer works out its own position from it
(``position = ahead_at_connect - (decided_now - decided_at_connect)``), so no one counts the
queue for every waiting student on every batch. Pushes are hints: the status API is the truth.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import Counter
from concurrent.futures import Future

from channels.layers import get_channel_layer

from common import redis as redis_lib
from events.models import Event

from .models import QueueEntry
from .selectors import DECIDED_KEY, DRAIN_RATE_KEY, decided_total, drain_rate, entry_as_dict, measured_drain_rate

logger = logging.getLogger("ticketwar.queueing")

PROGRESS_INTERVAL_SECONDS = 0.5
PROGRESS_KEY = "tw:queue:progress:{event_id}"
PUSH_TIMEOUT_SECONDS = 2.0


def entry_group(public_id) -> str:
    return f"queue.entry.{public_id}"


def event_group(event_id: int) -> str:
    return f"queue.event.{event_id}"


def _redis():
    return redis_lib.get_client()


def record_progress(decided_per_event: Counter) -> tuple[dict[int, int], list[int]]:
    """Add the batch's decisions to the per-event counters and see which events are due a
    progress message (one SET NX per event), in one Redis round trip."""
    events = list(decided_per_event)
    if not events:
        return {}, []
    try:
        pipe = _redis().pipeline(transaction=False)
        for event_id in events:
            pipe.incrby(DECIDED_KEY.format(event_id=event_id), decided_per_event[event_id])
        for event_id in events:
            pipe.set(PROGRESS_KEY.format(event_id=event_id), "1", nx=True, px=int(PROGRESS_INTERVAL_SECONDS * 1000))
        results = pipe.execute()
    except Exception:  # Redis away: pages fall back to polling the status API
        logger.info("queue progress not recorded", exc_info=True)
        return {}, []
    totals = dict(zip(events, results[: len(events)], strict=True))
    due = [e for e, ok in zip(events, results[len(events) :], strict=True) if ok]
    return totals, due


def refresh_drain_rate() -> float | None:
    """Measure the drain rate from the table and publish it for the web side (at most 2/s)."""
    rate = measured_drain_rate()
    if rate:
        try:
            _redis().set(DRAIN_RATE_KEY, f"{rate:.3f}")
        except Exception:
            logger.info("drain rate not stored", exc_info=True)
    return rate


def _due_events(event_ids) -> list[int]:
    """Events whose last progress message is older than the interval (one SET NX each)."""
    try:
        pipe = _redis().pipeline(transaction=False)
        for event_id in event_ids:
            pipe.set(PROGRESS_KEY.format(event_id=event_id), "1", nx=True, px=int(PROGRESS_INTERVAL_SECONDS * 1000))
        return [e for e, ok in zip(event_ids, pipe.execute(), strict=False) if ok]
    except Exception:
        return []


def push_batch(decisions) -> None:
    """Send each decided entry its outcome and each touched event its progress. Never raises."""
    final = [d for d in decisions if d.status != QueueEntry.Status.PENDING]
    per_event = Counter(d.claimed.event_id for d in final)
    totals, due = record_progress(per_event)
    messages: list[tuple[str, dict]] = []
    # Seats left after this batch, one read for every event it touched: a decided page says the
    # count that is true after its decision (not the one of its page load).
    seats = seats_of(set(per_event) | set(due)) if final or due else {}
    if final:
        entries = QueueEntry.objects.select_related("ticket__event").filter(id__in=[d.claimed.id for d in final])
        for entry in entries:
            payload = entry_as_dict(entry)
            if entry.event_id in seats:
                payload["seats_left"] = seats[entry.event_id][0]
            messages.append((entry_group(entry.public_id), {"type": "queue.entry", "entry": payload}))
    if due:
        rate = refresh_drain_rate()
        for event_id in due:
            message = progress_message(event_id, totals.get(event_id), rate, seats.get(event_id))
            messages.append((event_group(event_id), message))
    send_all(messages)


def seats_of(event_ids) -> dict[int, tuple[int, int]]:
    """``{event id: (seats left, capacity)}``: one indexed read per progress message, not per page."""
    rows = Event.objects.filter(id__in=list(event_ids)).values_list("id", "remaining", "capacity")
    return {event_id: (remaining, capacity) for event_id, remaining, capacity in rows}


def progress_message(event_id: int, decided: int | None, rate: float | None, seats=None) -> dict:
    """The event's progress; with ``seats`` (left, capacity) each page can say its outlook anew."""
    message = {"type": "queue.progress", "event_id": event_id, "decided": decided, "drain_rate": rate}
    if seats is not None:
        message["seats_left"], message["capacity"] = seats
    return message


def push_progress(event_ids) -> None:
    """Heartbeat from the beat tick: waiting pages hear from us at least every tick."""
    due = _due_events(list(event_ids))
    if not due:
        return
    rate = drain_rate()
    seats = seats_of(due)
    send_all([(event_group(e), progress_message(e, decided_total(e), rate, seats.get(e))) for e in due])
    flush_pushes()


# One event loop per worker process, alive across batches: the channel layer keeps its Redis
# connections per loop, so a fresh loop per batch (async_to_sync) would reconnect every time.
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()
_in_flight: list[Future] = []


def _push_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():  # first use, or a forked pool child
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            threading.Thread(target=_loop.run_forever, name="queue-push", daemon=True).start()
        return _loop


def send_all(messages: list[tuple[str, dict]]) -> None:
    """group_send every message from the push loop without waiting for Redis. Never raises."""
    if not messages:
        return

    layer = get_channel_layer()
    if layer is None:
        return

    async def _send() -> None:
        await asyncio.wait_for(
            asyncio.gather(*(layer.group_send(group, message) for group, message in messages)),
            PUSH_TIMEOUT_SECONDS,
        )

    try:
        future = asyncio.run_coroutine_threadsafe(_send(), _push_loop())
    except Exception:
        logger.info("queue push not scheduled", exc_info=True)
        return
    _in_flight[:] = [f for f in _in_flight if not f.done()]
    _in_flight.append(future)


def flush_pushes(timeout: float = PUSH_TIMEOUT_SECONDS) -> None:
    """Wait for the pushes still in flight (end of a drain, tests). Never raises."""
    pending = list(_in_flight)
    _in_flight.clear()
    for future in pending:
        try:
            future.result(timeout)
        except Exception:  # a push is a hint; the page re-reads the status API
            logger.info("queue push failed", exc_info=True)
