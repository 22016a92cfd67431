"""Reads of the claim queue: an entry as the student sees it, and the figures monitoring needs."""

from __future__ import annotations

import logging
import math
import time
import uuid
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Max, Min
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from common import redis as redis_lib
from tickets.exceptions import AlreadyHasTicket, ClaimClosed, ClaimNotOpen, EventUnavailable, NotEligible, SoldOut
from tickets.models import Ticket
from tickets.selectors import ticket_as_dict

from .models import LIVE_STATUSES, QueueEntry

logger = logging.getLogger("ticketwar.queueing")

# Redis keys shared by the worker (writer) and the web/websocket side (readers).
DRAIN_RATE_KEY = "tw:queue:drain_rate"
DECIDED_KEY = "tw:queue:decided:{event_id}"
# Window over which the drain rate is measured from processed_at.
RATE_WINDOW_SECONDS = 10
# How long a rate measured on the web side is shared while no worker has published one.
DRAIN_RATE_FALLBACK_TTL = 5
# Used only until a first rate has been measured (a fresh deployment): claims per second.
PRIOR_DRAIN_RATE = 50.0

REASONS = {
    SoldOut.code: SoldOut.default_message,
    ClaimClosed.code: ClaimClosed.default_message,
    NotEligible.code: NotEligible.default_message,
    AlreadyHasTicket.code: AlreadyHasTicket.default_message,
    EventUnavailable.code: EventUnavailable.default_message,
    ClaimNotOpen.code: ClaimNotOpen.default_message,
    "error": gettext_noop("We could not process your claim after several attempts. Please try again."),
}


def reason_sentence(code: str) -> str | None:
    """The human sentence for a refusal code (None when there is no refusal)."""
    if not code:
        return None
    return _(REASONS.get(code, REASONS["error"]))


def entry_of_owner(*, public_id: str | uuid.UUID, user_id: int) -> QueueEntry | None:
    """The entry if ``user_id`` owns it; None for anyone else, unknown or malformed ids."""
    try:
        public_id = uuid.UUID(str(public_id))
    except (ValueError, TypeError, AttributeError):
        return None
    entry = QueueEntry.objects.select_related("event", "ticket").filter(public_id=public_id, user_id=user_id).first()
    if entry is not None and entry.ticket_id is not None:
        entry.ticket.event = entry.event  # the same row: no second join for it
    return entry


def live_entry_of(*, user_id: int, event_id: int) -> QueueEntry | None:
    return QueueEntry.objects.filter(user_id=user_id, event_id=event_id, status__in=LIVE_STATUSES).first()


def entry_position(*, entry_id: int, event_id: int, sort_key: int | None = None) -> int:
    """1 + live entries of the same event ahead of this one in (sort_key, id) order.

    Served by ticket_queue_live_rank_idx. Pre-queue entries still waiting for the draw count
    as ahead of everyone (they will be ranked first).
    """
    if sort_key is None:
        sort_key = QueueEntry.objects.filter(pk=entry_id).values_list("sort_key", flat=True).first() or entry_id
    # Plain SQL: every poll and every socket asks, and building this through the ORM cost more
    # CPU than running it.
    with connection.cursor() as cursor:
        cursor.execute(_POSITION_SQL, {"event_id": event_id, "entry_id": entry_id, "sort_key": sort_key})
        return cursor.fetchone()[0] + 1


def ahead_sql(alias: str, *, sort_key: str, entry_id: str) -> str:
    """SQL condition: ``alias``'s row is a live entry ahead of the entry (``sort_key``, ``entry_id``).

    The queue's order in one place: pre-queue entries waiting for the draw first (they will be
    ranked before everyone), then ``(sort_key, id)``, the order the worker decides in
    (queueing/processing.py). ``sort_key`` and ``entry_id`` are SQL expressions or placeholders.
    """
    q = alias
    return (
        f"{q}.status IN ('pending', 'processing') AND ({q}.prequeue OR {q}.sort_key < {sort_key}"
        f" OR ({q}.sort_key = {sort_key} AND {q}.id < {entry_id}))"
    )


_POSITION_SQL = f"""
SELECT count(*) FROM ticket_queue AS q
WHERE q.event_id = %(event_id)s AND q.id <> %(entry_id)s
  AND {ahead_sql("q", sort_key="%(sort_key)s", entry_id="%(entry_id)s")}
"""  # noqa: S608 - constant fragments, values are parameters


def measured_drain_rate(*, window_seconds: float = RATE_WINDOW_SECONDS) -> float | None:
    """Claims decided per second over the last ``window_seconds``, from processed_at.

    Measured over the span between the first and last decision in the window, so an idle
    period after a burst does not dilute it. None when too few decisions to tell.
    """
    since = timezone.now() - timedelta(seconds=window_seconds)
    row = QueueEntry.objects.filter(
        status__in=(QueueEntry.Status.COMPLETED, QueueEntry.Status.FAILED), processed_at__gte=since
    ).aggregate(n=Count("id"), first=Min("processed_at"), last=Max("processed_at"))
    if not row["n"] or row["n"] < 5:
        return None
    span = (row["last"] - row["first"]).total_seconds()
    if span < 0.2:
        return None
    return (row["n"] - 1) / span


# The drain rate as this process last read it: (monotonic time, rate). Every claim's answer
# carries an ETA from it; a second-old figure is as good and costs no Redis round trip.
DRAIN_RATE_MEMO_SECONDS = 1.0
_drain_rate_memo: list = [float("-inf"), 0.0]


def drain_rate() -> float:
    """The queue's drain rate in claims/s: last measured by the workers (Redis), else the DB."""
    read_at, rate = _drain_rate_memo
    if time.monotonic() - read_at < DRAIN_RATE_MEMO_SECONDS:
        return rate
    rate = _read_drain_rate()
    _drain_rate_memo[:] = [time.monotonic(), rate]
    return rate


def _read_drain_rate() -> float:
    try:
        client = redis_lib.get_client()
        raw = client.get(DRAIN_RATE_KEY)
        if raw:
            return max(0.1, float(raw))
    except Exception:  # Redis away: measure from the table instead
        logger.info("drain rate not readable from Redis", exc_info=True)
        client = None
    measured = measured_drain_rate()
    rate = measured if measured else PRIOR_DRAIN_RATE
    if client is not None:
        # No worker has published a rate yet (fresh deployment): share this one for a few
        # seconds, so a burst of claims does not run the aggregate once per claim. NX: a
        # worker's own figure wins.
        try:
            client.set(DRAIN_RATE_KEY, f"{rate:.3f}", nx=True, ex=DRAIN_RATE_FALLBACK_TTL)
        except Exception:
            logger.info("drain rate not stored", exc_info=True)
    return rate


def eta_seconds(position: int | None, rate: float) -> int | None:
    if position is None:
        return None
    return max(0, math.ceil(position / max(rate, 0.1)))


def decided_total(event_id: int) -> int:
    """How many entries of the event the workers have decided so far (Redis counter, 0 if unknown)."""
    try:
        return int(redis_lib.get_client().get(DECIDED_KEY.format(event_id=event_id)) or 0)
    except Exception:
        return 0


def ticket_dict(ticket) -> dict[str, Any] | None:
    if ticket is None:
        return None

    return ticket_as_dict(ticket)


def entry_as_dict(entry: QueueEntry, *, position: int | None = None, rate: float | None = None) -> dict[str, Any]:
    """The JSON shape of ``GET /api/queue/<id>/`` (and the websocket's first message)."""
    live = entry.status in LIVE_STATUSES
    if entry.prequeue:
        # Before the draw nobody has a position: pressing early buys no place.
        position = None
    elif live and position is None and entry.position is not None:
        position = entry.position
    elif live and position is None:
        position = entry_position(entry_id=entry.id, event_id=entry.event_id, sort_key=entry.sort_key)
    if not live:
        position = None
    if live and rate is None:
        rate = drain_rate()
    status, reason, ticket = entry.status, entry.reason, entry.ticket if entry.ticket_id else None
    if status == QueueEntry.Status.FAILED and reason == AlreadyHasTicket.code:
        held = _held_ticket(entry)
        if held is not None:
            # Defence in depth: a second entry that slipped in beside the student's ticket was
            # refused "already has a ticket"; they hold one, so they see it, not "No ticket".
            status, reason, ticket = QueueEntry.Status.COMPLETED, "", held
    return {
        "queue_id": str(entry.public_id),
        "status": status,
        "position": position,
        "eta_seconds": (eta_seconds(position, rate) if live else 0) if not entry.prequeue else None,
        "attempts": entry.attempts,
        "reason": reason_sentence(reason) if status == QueueEntry.Status.FAILED else None,
        "reason_code": reason or None,
        "ticket": ticket_dict(ticket),
        "prequeue": entry.prequeue,
    }


def _held_ticket(entry: QueueEntry):
    """The active ticket of the entry's student for its event, if any (with its event)."""
    return (
        Ticket.objects.select_related("event")
        .filter(event_id=entry.event_id, user_id=entry.user_id, status=Ticket.Status.ACTIVE)
        .first()
    )


def claims_waiting() -> bool:
    """Whether any claim waits to be decided now (pending or processing; a shuffled event's
    pre-queue, which waits for its opening, does not count). Work that can wait, such as the
    ticket e-mails, leaves the worker to the claims while this holds."""
    return QueueEntry.objects.filter(status__in=LIVE_STATUSES, prequeue=False).exists()


def queue_depth() -> int:
    """Live (pending + processing) entries across all events."""
    return QueueEntry.objects.filter(status__in=LIVE_STATUSES).count()


def queue_delay_seconds() -> float:
    """Age of the oldest pending entry in seconds (0 when none); same measure as /healthz."""
    oldest = (
        QueueEntry.objects.filter(status=QueueEntry.Status.PENDING, prequeue=False)
        .order_by("id")
        .values_list("created_at", flat=True)
        .first()
    )
    if oldest is None:
        return 0.0
    return max(0.0, (timezone.now() - oldest).total_seconds())
