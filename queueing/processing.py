"""Running the claim queue: batch after batch, the lease reaper and the hourly cleanup.

Called only from Celery tasks and tests. Each batch is leased and decided by
``queueing.deciding`` (see there: bulk refusal of finished events, each event's share decided
together, one by one as the fallback); what follows a batch beyond the queue (the students
refused as sold out join the waiting list) is the drain's caller's (``claims.tasks``). Rows
whose lease ran out (dead worker) go back to ``pending`` via the reaper.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .deciding import (
    BatchResult,
    Leased,
    queue_decide_group,
    queue_refuse_finished,
    queue_take_batch,
)
from .draw import draw_due
from .models import QueueEntry
from .push import flush_pushes, push_batch

logger = logging.getLogger("ticketwar.queueing")


def queue_process_batch(*, limit: int | None = None, now: datetime | None = None) -> BatchResult:
    """Lease one batch and decide its entries: together per event, one by one if that fails."""
    leased = queue_take_batch(limit=limit, now=now)
    result = BatchResult(taken=len(leased))
    if not leased:
        return result
    refused, leased = queue_refuse_finished(leased)
    result.decisions.extend(refused)
    # Per event, and a shuffled event's pre-queue apart from the claims after it: those keep the
    # pre-queue's seats (queueing.draw.prequeue_hold), the pre-queue's own do not.
    groups: dict[tuple[int, datetime, bool], list[Leased]] = {}
    for entry in leased:
        groups.setdefault((entry.event_id, entry.locked_at, entry.after_prequeue), []).append(entry)
    for group in groups.values():
        result.decisions.extend(queue_decide_group(group))
    return result


def queue_drain(
    *, budget_seconds: float | None = None, after_batch: Callable[[BatchResult], object] | None = None
) -> tuple[int, bool, datetime | None]:
    """Decide batch after batch while work remains, for at most ``budget_seconds``.

    Returns ``(decided, more_left, next_retry_at)``. After each batch's decisions have committed,
    ``after_batch`` runs with them, then the pushes go out (so a page told "sold out" can already
    read its place on the waiting list).
    """
    budget = settings.QUEUE_DRAIN_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    draw_due()
    deadline = time.monotonic() + budget
    decided = 0
    next_retry: datetime | None = None
    while True:
        result = queue_process_batch()
        if not result.taken:
            flush_pushes()
            return decided, False, next_retry
        if after_batch is not None:
            after_batch(result)
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
