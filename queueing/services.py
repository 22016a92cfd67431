"""Writes of the claim queue on the request path: put a claim in the queue, wake a worker.

The enqueue is one short statement; which claim may be queued is the claim policy's answer
(``tickets.policy``, applied by ``claims.services.claim_submit``), deciding happens in workers
(``queueing.deciding``).
"""

from __future__ import annotations

import logging
import threading
import uuid
from contextlib import nullcontext
from datetime import datetime

from celery import current_app
from django.db import IntegrityError, connection, transaction

from common import redis as redis_lib
from common.background import ProcessThread
from common.breaker import get_breaker
from events.models import Event
from tickets.policy import HELD_TICKET_SQL

from .models import QueueEntry
from .selectors import ahead_sql

logger = logging.getLogger("ticketwar.queueing")

# Set while a drain task is queued but not started: further claims need not send another one,
# because that task clears the key *before* its first scan and so will see their rows.
KICK_KEY = "tw:queue:kick"
KICK_KEY_TTL_SECONDS = 5

# One round trip for the whole claim: the policy's "already holds a ticket" (its SQL twin
# HELD_TICKET_SQL), the INSERT and the new entry's place in the line. The CTE's INSERT is invisible
# to the count (same snapshot), so the count is exactly the live entries ahead. ON CONFLICT: the
# student already has a live entry (partial unique index ticket_queue_one_live_per_student_event).
#
# The double-click race, and why the recheck: `held` reads the statement's snapshot, taken when
# the statement starts. Under READ COMMITTED the unique index check of the INSERT does not use
# that snapshot: it looks at the latest row versions and, if a worker is deciding the student's
# first entry right then, waits for that worker to commit. Once it has, the first entry is
# `completed` (no longer live: no conflict) and its ticket is committed, but `held`, read
# before, saw no ticket; a second entry went in and was later refused `already_has_ticket`.
# So, once a row went in, ticket_queue_refuse_holder (migration 0004, the policy's other SQL
# twin) looks again: a VOLATILE function's query takes a fresh snapshot, later than the INSERT's
# wait, so it sees any ticket whose entry stopped being live before the INSERT. It raises
# unique_violation (ticket_queue_no_claim_for_holder), which rolls the whole statement back,
# entry included. A ticket issued after that recheck cannot come from this student's previous
# entry (it was not live any more), and an entry decided after such a ticket completes with it
# (idempotent decide). Still one round trip: the function runs inside the statement.
HOLDER_RECHECK = "ticket_queue_no_claim_for_holder"

# A claim made before a shuffled event opens joins the pre-queue, unless the pre-queue has been
# frozen meanwhile (queueing.draw.draw_freeze; a web server's clock may lag the worker's). The
# freeze is read in the statement itself, under FOR SHARE: the freeze's FOR UPDATE waits for
# this statement to commit (the entry is then in the frozen list), or this waits for the freeze
# and reads it (the entry then queues behind the pre-queue). Other claims read nothing more.
_FROZEN_YET = """COALESCE((SELECT e.draw_frozen_at IS NULL AND e.draw_revealed_at IS NULL
                          FROM events_event AS e WHERE e.id = %(event_id)s FOR SHARE), false)"""


def _enqueue_sql(prequeue: str) -> str:
    return f"""
WITH held AS ({HELD_TICKET_SQL}), inserted AS (
    INSERT INTO ticket_queue
        (public_id, user_id, event_id, status, attempts, reason, last_error, created_at, prequeue, language)
    SELECT %(public_id)s, %(user_id)s, %(event_id)s, 'pending', 0, '', '', %(now)s, {prequeue}, %(language)s
    WHERE NOT EXISTS (SELECT 1 FROM held)
    ON CONFLICT DO NOTHING
    RETURNING id, sort_key, prequeue
)
SELECT
    inserted.id,
    inserted.sort_key,
    (SELECT count(*) FROM ticket_queue AS q
     WHERE q.event_id = %(event_id)s AND {ahead_sql("q", sort_key="inserted.sort_key", entry_id="inserted.id")}),
    CASE WHEN inserted.id IS NOT NULL THEN ticket_queue_refuse_holder(%(event_id)s, %(user_id)s) END,
    inserted.prequeue
FROM (SELECT 1) AS one LEFT JOIN inserted ON true
"""  # noqa: S608 - constant fragments, values are parameters


_ENQUEUE_SQL = _enqueue_sql("false")
_PREQUEUE_SQL = _enqueue_sql(_FROZEN_YET)


def queue_enqueue(
    *, user_id: int, event: Event, prequeue: bool, now: datetime, language: str = ""
) -> QueueEntry | None:
    """Put a claim in the queue (``prequeue``: a shuffled event's pre-queue) with one statement.

    Returns the new entry (its ``position`` counted by the same statement), or None when nothing
    went in: the student holds an active ticket of the event, or has a claim of it still in the
    queue (the partial unique index ``ticket_queue_one_live_per_student_event`` is the truth, the
    INSERT simply does nothing on conflict); the caller then reads the student's standing for the
    answer. ``language``: the request's, for the ticket e-mail. After commit a worker is woken
    (by this process's kicker thread: the request waits for no round trip of it).
    """
    public_id = uuid.uuid4()
    params = {
        "public_id": public_id,
        "user_id": user_id,
        "event_id": event.id,
        "now": now,
        "language": language[:8],
    }
    try:
        # Nested in a caller's transaction (tests, scripts), a savepoint keeps the recheck's
        # refusal from breaking it; the claim view runs in autocommit and pays nothing.
        savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
        with savepoint, connection.cursor() as cursor:
            cursor.execute(_PREQUEUE_SQL if prequeue else _ENQUEUE_SQL, params)
            entry_id, sort_key, ahead, _rechecked, in_prequeue = cursor.fetchone()
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) != HOLDER_RECHECK:
            raise
        return None  # a ticket committed while the INSERT waited: the standing tells which
    if entry_id is None:
        return None
    entry = QueueEntry(
        id=entry_id,
        public_id=public_id,
        user_id=user_id,
        event_id=event.id,
        created_at=now,
        attempts=0,
        prequeue=in_prequeue,
        sort_key=sort_key,
        language=params["language"],
    )
    entry.event = event
    entry.position = None if in_prequeue else ahead + 1
    transaction.on_commit(queue_kicker.request)
    return entry


# The drain task, named as the beat schedule names it: queueing.tasks calls into this module, so
# this one sends the task by name instead of importing it (no import cycle through the tasks).
PROCESS_QUEUE_TASK = "queueing.process_queue"


def _publish_kick() -> None:
    # Asked after every claim (QueueKicker below), never skipped by a memo in process: a drain
    # deletes the key before its scan, and a claim committed after that must send the next kick.
    # SET NX on the broker's Redis, beside the message it stands for (a broker that lost its
    # messages lost the key too), with the short socket timeout: a hung Redis costs at most that
    # once, then the "broker" breaker answers at once.
    if redis_lib.broker_client().set(KICK_KEY, "1", nx=True, ex=KICK_KEY_TTL_SECONDS):
        current_app.signature(PROCESS_QUEUE_TASK).apply_async(retry=False, expires=30)


def queue_kick() -> None:
    """Ask a worker to start draining now. Never raises and never waits long.

    A lost kick costs at most one beat tick (2 s): the table is the truth and the beat task
    scans it anyway. Goes through the "broker" circuit breaker.
    """
    breaker = get_breaker("broker")
    if not breaker.allow():
        return
    try:
        _publish_kick()
    except Exception:  # broker or Redis away: the beat (or the next kick) picks the row up
        breaker.record_failure()
        logger.warning("could not wake a queue worker; the beat will pick the claim up", exc_info=True)
    else:
        breaker.record_success()


class QueueKicker:
    """Wakes a worker for the claims this process committed, from a thread of its own.

    A claim only notes that a kick is due: its request makes no round trip for it. The thread
    then runs ``queue_kick`` once for every claim noted before that run began, so each committed
    claim is followed by a kick that starts after its commit (what a drain, which deletes the
    key before its scan, relies on), and a burst of claims costs one ``SET NX`` per run, not one
    per claim. A hung broker holds this thread for its socket timeout, never a request.
    """

    def __init__(self) -> None:
        self._due = threading.Event()
        self._thread = ProcessThread("queue-kicker", self._kick_forever)

    def request(self) -> None:
        self._due.set()
        self._thread.ensure()

    def _kick_forever(self) -> None:
        while True:
            self._due.wait()
            self._due.clear()  # before the kick: a claim noted from now on gets a run of its own
            try:
                queue_kick()
            except Exception:  # queue_kick never raises; this thread must outlive a bug anyway
                logger.exception("queue kicker: the kick failed")


queue_kicker = QueueKicker()
