"""Deciding the claim queue: batches, the lease reaper and the hourly cleanup.

Called only from Celery tasks (``queueing.tasks``) and tests. The table is the truth:
- a batch is *taken* with one ``UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)`` that marks
  up to ``QUEUE_BATCH_SIZE`` pending rows ``processing`` with a lease (``locked_at``), so workers
  side by side never take the same row;
- entries of events already sold out or closed are refused in one UPDATE per event;
- the others are *decided* together, in one short transaction per event
  (``queueing.deciding.queue_decide_many``): it locks the rows whose lease is still ours, calls
  ``tickets.services.ticket_issue_many`` and records every outcome in one UPDATE. Tickets and
  outcomes commit together, so a worker dying anywhere leaves either both or neither;
- if that transaction fails, its entries are decided one by one (``queue_decide``: the same
  steps with ``ticket_issue``, each in its own transaction), which retries with backoff;
- rows whose lease ran out (dead worker) go back to ``pending`` via the reaper.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from events.models import Event
from tickets.exceptions import AlreadyHasTicket, ClaimClosed, SoldOut, TicketError
from tickets.models import Ticket
from tickets.rules import window_refusal
from tickets.services import ticket_issue

from .models import QueueEntry

logger = logging.getLogger("ticketwar.queueing")

_CLAIM_SQL = """
UPDATE ticket_queue AS q
SET status = 'processing', locked_at = %(now)s, attempts = q.attempts + 1
FROM (
    SELECT id FROM ticket_queue
    WHERE status = 'pending' AND NOT prequeue AND (not_before IS NULL OR not_before <= %(now)s)
      -- A shuffled event's later arrivals wait until its draw has ranked the pre-queue ahead.
      AND event_id NOT IN (
          SELECT e.id FROM events_event AS e
          WHERE e.opening_mode = 'shuffle_at_open' AND e.draw_revealed_at IS NULL
      )
    ORDER BY sort_key, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AS picked
WHERE q.id = picked.id
RETURNING q.id, q.public_id, q.user_id, q.event_id, q.attempts, q.sort_key
"""


@dataclass(frozen=True)
class Claimed:
    id: int
    public_id: object
    user_id: int
    event_id: int
    attempts: int
    sort_key: int | None
    locked_at: datetime


@dataclass
class Decision:
    """What happened to one taken entry (``status`` pending means: retried later)."""

    claimed: Claimed
    status: str
    reason: str = ""
    ticket_id: object = None
    not_before: datetime | None = None


@dataclass
class BatchResult:
    taken: int = 0
    decisions: list[Decision] = field(default_factory=list)


def queue_take_batch(*, limit: int | None = None, now: datetime | None = None) -> list[Claimed]:
    """Mark up to ``limit`` pending entries (arrival order) ``processing`` under a fresh lease."""
    now = now or timezone.now()
    limit = limit or settings.QUEUE_BATCH_SIZE
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, {"now": now, "limit": limit})
        rows = cursor.fetchall()
    return sorted((Claimed(*row, locked_at=now) for row in rows), key=lambda c: (c.sort_key or 0, c.id))


def _drop_broken_connection() -> None:
    """After an error, reconnect on next use if the connection is broken (worker autocommit mode).

    Inside an outer transaction (only tests wrap calls in one) the connection must be kept.
    """
    if not connection.in_atomic_block:
        close_old_connections()


def _backoff(attempts: int) -> timedelta:
    # 0.5 s, 1 s, 2 s: a database hiccup usually passes within a second or two.
    return timedelta(seconds=0.5 * 2 ** max(0, attempts - 1))


def queue_decide(claimed: Claimed) -> Decision | None:
    """Decide one taken entry: a ticket (completed) or a refusal (failed), or retry later.

    Returns None when the lease is no longer ours (the reaper gave the row to someone else):
    then this worker must not touch it. Idempotent: a student who already holds an active
    ticket not linked to another entry gets *that* ticket, never a second one.
    """
    try:
        with transaction.atomic():
            # Row lock: the reaper and other workers wait for this decision, then see it made.
            mine = (
                QueueEntry.objects.select_for_update()
                .filter(pk=claimed.id, status=QueueEntry.Status.PROCESSING, locked_at=claimed.locked_at)
                .values_list("ticket_id", flat=True)
            )
            rows = list(mine)
            if not rows:
                return None
            decision = _decision_for(claimed, already_linked=rows[0])
            QueueEntry.objects.filter(pk=claimed.id).update(
                status=decision.status,
                reason=decision.reason,
                ticket_id=decision.ticket_id,
                processed_at=timezone.now(),
                locked_at=None,
            )
        return decision
    except Exception as exc:  # transient (database, network) or a bug: retried, then refused
        if not isinstance(exc, TicketError):
            logger.warning("claim %s not decided (attempt %s)", claimed.id, claimed.attempts, exc_info=True)
        _drop_broken_connection()
        return _retry_or_fail(claimed, exc)


def _decision_for(claimed: Claimed, *, already_linked) -> Decision:
    if already_linked is not None:
        return Decision(claimed, QueueEntry.Status.COMPLETED, ticket_id=already_linked)
    try:
        ticket = ticket_issue(event_id=claimed.event_id, user_id=claimed.user_id)
    except AlreadyHasTicket:
        held = unlinked_tickets(event_id=claimed.event_id, user_ids=[claimed.user_id]).get(claimed.user_id)
        if held is not None:
            return Decision(claimed, QueueEntry.Status.COMPLETED, ticket_id=held)
        return Decision(claimed, QueueEntry.Status.FAILED, reason=AlreadyHasTicket.code)
    except TicketError as refusal:
        return Decision(claimed, QueueEntry.Status.FAILED, reason=refusal.code)
    return Decision(claimed, QueueEntry.Status.COMPLETED, ticket_id=ticket.id)


def unlinked_tickets(*, event_id: int, user_ids: list[int]) -> dict[int, object]:
    """``{user id: ticket id}`` of these students' active tickets that no queue entry is linked to.

    Idempotent decide: such a ticket is the one an earlier decision of the same entry issued
    (its outcome was lost), so it completes the entry instead of refusing it.
    """
    return dict(
        Ticket.objects.filter(
            event_id=event_id, user_id__in=user_ids, status=Ticket.Status.ACTIVE, queue_entry__isnull=True
        ).values_list("user_id", "id")
    )


def _retry_or_fail(claimed: Claimed, exc: BaseException) -> Decision | None:
    now = timezone.now()
    error = f"{type(exc).__name__}: {exc}"[:2000]
    mine = QueueEntry.objects.filter(pk=claimed.id, status=QueueEntry.Status.PROCESSING, locked_at=claimed.locked_at)
    try:
        if claimed.attempts >= settings.QUEUE_MAX_ATTEMPTS:
            done = mine.update(
                status=QueueEntry.Status.FAILED, reason="error", last_error=error, processed_at=now, locked_at=None
            )
            return Decision(claimed, QueueEntry.Status.FAILED, reason="error") if done else None
        not_before = now + _backoff(claimed.attempts)
        done = mine.update(status=QueueEntry.Status.PENDING, last_error=error, not_before=not_before, locked_at=None)
        return Decision(claimed, QueueEntry.Status.PENDING, not_before=not_before) if done else None
    except Exception:  # the database itself is away: the lease runs out and the reaper retries
        logger.error("claim %s left to the reaper", claimed.id, exc_info=True)
        _drop_broken_connection()
        return None


def queue_process_batch(*, limit: int | None = None, now: datetime | None = None) -> BatchResult:
    """Take one batch and decide its entries: together per event, one by one if that fails."""
    claimed = queue_take_batch(limit=limit, now=now)
    result = BatchResult(taken=len(claimed))
    if not claimed:
        return result
    from .deciding import queue_decide_many

    refused, claimed = _refuse_finished_events(claimed)
    result.decisions.extend(refused)
    groups: dict[tuple[int, datetime], list[Claimed]] = {}
    for entry in claimed:
        groups.setdefault((entry.event_id, entry.locked_at), []).append(entry)
    for group in groups.values():
        decisions, left = queue_decide_many(group)
        result.decisions.extend(decisions)
        for entry in left:
            decision = queue_decide(entry)
            if decision is not None:
                result.decisions.append(decision)
    _enrol_sold_out(result.decisions)
    return result


def _enrol_sold_out(decisions: list[Decision]) -> None:
    """Students refused as sold out join the waiting list, in queue order (opt-outs excepted)."""
    from queueing.waitlist.services import waitlist_enrol_many

    refused = [d.claimed for d in decisions if d.status == QueueEntry.Status.FAILED and d.reason == SoldOut.code]
    if not refused:
        return
    refused.sort(key=lambda c: (c.sort_key or 0, c.id))
    try:
        waitlist_enrol_many(entries=[(c.event_id, c.user_id, c.public_id) for c in refused])
    except Exception:  # the refusals are committed; losing the enrolment must not stop the drain
        logger.error("sold-out claims not put on the waiting list: %s", [c.id for c in refused], exc_info=True)
        _drop_broken_connection()


# The window refusals that will not change for the rest of a batch (``tickets.rules``).
_FINISHED = (SoldOut, ClaimClosed)

_REFUSE_SQL = """
UPDATE ticket_queue SET status = 'failed', reason = %(reason)s, processed_at = %(now)s, locked_at = NULL
WHERE id = ANY(%(ids)s) AND status = 'processing' AND locked_at = %(lease)s
RETURNING id
"""


def _refuse_finished_events(claimed: list[Claimed]) -> tuple[list[Decision], list[Claimed]]:
    """Refuse at once, in one UPDATE per event, the entries of events already sold out or closed.

    After the last seat is gone every remaining claim would walk the whole issuing path only to
    hear "sold out"; this answers them in bulk (a refusal creates no ticket, so the issuing
    service stays the one place seats are taken). A seat given back in between simply goes to a
    later claim. Returns ``(decisions, entries still to decide)``.
    """
    now = timezone.now()
    refusals = {
        event.id: window_refusal(event=event, now=now)
        for event in Event.objects.filter(id__in={c.event_id for c in claimed}).only(
            "id", "status", "claim_opens_at", "claim_closes_at", "remaining"
        )
    }
    finished = {e: refusal.code for e, refusal in refusals.items() if isinstance(refusal, _FINISHED)}
    decisions: list[Decision] = []
    for event_id, reason in finished.items():
        group = [c for c in claimed if c.event_id == event_id]
        with connection.cursor() as cursor:
            cursor.execute(
                _REFUSE_SQL,
                {"reason": reason, "now": now, "ids": [c.id for c in group], "lease": group[0].locked_at},
            )
            done = {row[0] for row in cursor.fetchall()}
        decisions.extend(Decision(c, QueueEntry.Status.FAILED, reason=reason) for c in group if c.id in done)
    rest = [c for c in claimed if c.event_id not in finished]
    return decisions, rest


def queue_drain(*, budget_seconds: float | None = None) -> tuple[int, bool, datetime | None]:
    """Decide batch after batch while work remains, for at most ``budget_seconds``.

    Returns ``(decided, more_left, next_retry_at)``. Pushes go out after each batch's
    decisions have committed.
    """
    from .draw import draw_open_due
    from .push import flush_pushes, push_batch

    budget = settings.QUEUE_DRAIN_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    draw_open_due()
    deadline = time.monotonic() + budget
    decided = 0
    next_retry: datetime | None = None
    while True:
        result = queue_process_batch()
        if not result.taken:
            flush_pushes()
            return decided, False, next_retry
        decided += sum(1 for d in result.decisions if d.status != QueueEntry.Status.PENDING)
        for d in result.decisions:
            if d.not_before is not None and (next_retry is None or d.not_before < next_retry):
                next_retry = d.not_before
        push_batch(result.decisions)
        if time.monotonic() >= deadline:
            flush_pushes()
            return decided, True, next_retry


_REAP_SQL = """
UPDATE ticket_queue
SET status = CASE WHEN attempts >= %(max)s THEN 'failed' ELSE 'pending' END,
    reason = CASE WHEN attempts >= %(max)s THEN 'error' ELSE reason END,
    processed_at = CASE WHEN attempts >= %(max)s THEN %(now)s ELSE NULL END,
    last_error = 'lease expired: the worker deciding this claim stopped',
    locked_at = NULL,
    not_before = NULL
WHERE status = 'processing' AND locked_at < %(expired)s
RETURNING id, status
"""


def queue_reap(*, now: datetime | None = None) -> dict[str, int]:
    """Give entries whose lease ran out (their worker died) back to the queue.

    Safe against a slow but alive worker: its decide holds the row lock, so this UPDATE waits
    and then no longer matches a decided row; if it does take the row first, the worker's
    lease check fails and it leaves the row alone. Returns counts by new status.
    """
    now = now or timezone.now()
    expired = now - timedelta(seconds=settings.QUEUE_LEASE_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(_REAP_SQL, {"max": settings.QUEUE_MAX_ATTEMPTS, "now": now, "expired": expired})
        rows = cursor.fetchall()
    counts = {"pending": 0, "failed": 0}
    for _id, status in rows:
        counts[status] += 1
    if rows:
        logger.warning("reaper: %s claims back to pending, %s failed", counts["pending"], counts["failed"])
    return counts


_CLEANUP_SQL = """
WITH gone AS (
    DELETE FROM ticket_queue WHERE id IN (
        SELECT id FROM ticket_queue
        WHERE status IN ('completed', 'failed') AND processed_at < %(cutoff)s
        ORDER BY id LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    RETURNING event_id, status, reason, processed_at
), counted AS (
    INSERT INTO queueing_claimstat (event_id, minute, outcome, count)
    SELECT event_id, date_trunc('minute', processed_at),
           CASE WHEN status = 'completed' THEN 'completed' ELSE COALESCE(NULLIF(reason, ''), 'error') END,
           count(*)
    FROM gone
    GROUP BY 1, 2, 3
    ON CONFLICT (event_id, minute, outcome) DO UPDATE SET count = queueing_claimstat.count + EXCLUDED.count
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM counted)
"""


def queue_cleanup(*, now: datetime | None = None, chunk: int = 5000) -> int:
    """Delete entries decided more than QUEUE_RETENTION_SECONDS ago, keeping their counts.

    One statement per chunk deletes the rows and adds them to ``ClaimStat`` (per event, minute
    and outcome): both happen or neither, and two cleanups at once (two beats) each count only
    the rows they deleted. Tickets stay. Returns the number of rows deleted.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.QUEUE_RETENTION_SECONDS)
    deleted = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_CLEANUP_SQL, {"cutoff": cutoff, "limit": chunk})
            gone, _groups = cursor.fetchone()
        deleted += gone
        if gone < chunk:
            return deleted
