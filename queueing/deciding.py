"""Deciding the claim queue: lease a batch, decide its entries, record every outcome.

The one module that decides (``queueing.processing`` runs it batch after batch). The table is
the truth:
- a batch is *leased* with one statement (``_LEASE_BATCH_SQL``): a ``SELECT ... FOR UPDATE SKIP
  LOCKED`` picks up to ``QUEUE_BATCH_SIZE`` pending rows, once, and an ``UPDATE`` marks them
  ``processing`` with a lease (``locked_at``), so workers side by side never take the same row;
- entries of events already sold out or closed are refused in one UPDATE per event
  (``queue_refuse_finished``, by the claim policy's ``tickets.policy.window_refusal``);
- the others are decided together, one short transaction per event (``queue_decide_many``): it
  locks the rows whose lease is still ours, calls ``tickets.services.ticket_issue_many`` and
  records every outcome in one UPDATE. Tickets and outcomes commit together, so a worker dying
  anywhere leaves either both or neither;
- if that transaction fails, its entries are decided one by one (``queue_decide``: the same
  ``ticket_issue_many`` for one student, each in its own transaction), which retries with backoff.
Both ways turn an issuing outcome into a ``Decision`` with the same rule (``_decision``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from prometheus_client import Counter

from events.models import Event
from tickets.exceptions import AlreadyHasTicket, ClaimClosed, SoldOut, TicketError
from tickets.models import Ticket
from tickets.policy import window_refusal
from tickets.services import ticket_issue_many

from .draw import prequeue_hold
from .models import QueueEntry

logger = logging.getLogger("ticketwar.queueing")

# Declared where claims are decided, as common declares its counters next to the code that counts
# (monitoring/metrics.py has the others; the queue sits below monitoring and does not import it).
CLAIMS_DECIDED = Counter(
    "ticketwar_claims_decided",
    "Claims decided by the queue, by result (completed or failed) and reason.",
    ["result", "reason"],
)

# The claim policy's pre-queue (tickets.policy, step 5; ``Event.prequeue_open``) as SQL: the events
# whose claims wait for their pre-queue's freeze. The lease takes no claim of theirs.
SHUFFLE_GATE_SQL = """
SELECT e.id FROM events_event AS e
WHERE e.opening_mode = 'shuffle_at_open' AND e.draw_frozen_at IS NULL AND e.draw_revealed_at IS NULL
"""

# The pick is a MATERIALIZED CTE: it runs exactly once, whatever plan PostgreSQL chooses. As a
# plain subquery it could be the inner side of a nested loop (a queue table analysed while nearly
# empty looks like one row), scanned again for every outer row; with SKIP LOCKED each scan can pick
# other rows (its own updated rows are skipped), and a batch of 10 took 12.
_LEASE_BATCH_SQL = f"""
WITH picked AS MATERIALIZED (
    SELECT id FROM ticket_queue
    WHERE status = 'pending' AND NOT prequeue AND (not_before IS NULL OR not_before <= %(now)s)
      -- A shuffled event's later arrivals wait until its pre-queue is frozen (the first run
      -- after opening); from then on they are decided for the seats the pre-queue cannot need
      -- (queueing.draw.prequeue_hold), the pre-queue itself once the draw has ranked it.
      AND event_id NOT IN ({SHUFFLE_GATE_SQL})
    ORDER BY sort_key, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE ticket_queue AS q
SET status = 'processing', locked_at = %(now)s, attempts = q.attempts + 1
FROM picked
WHERE q.id = picked.id
RETURNING q.id, q.public_id, q.user_id, q.event_id, q.attempts, q.sort_key, q.language,
    (SELECT e.opening_mode = 'shuffle_at_open' FROM events_event AS e WHERE e.id = q.event_id)
"""  # noqa: S608 - constant fragments, values are parameters


@dataclass(frozen=True)
class Leased:
    """A queue row this worker leased (``locked_at`` is the lease: checked before every write)."""

    id: int
    public_id: object
    user_id: int
    event_id: int
    attempts: int
    sort_key: int | None
    # The claim's request language: its ticket e-mail's.
    language: str
    # Its event opens shuffled: a later arrival is decided only for seats the pre-queue cannot need.
    shuffled: bool
    locked_at: datetime

    @property
    def after_prequeue(self) -> bool:
        """A claim of a shuffled event that is not in its pre-queue (drawn ones rank below zero)."""
        return self.shuffled and (self.sort_key or 0) > 0


@dataclass
class Decision:
    """What happened to one leased claim (``status`` pending means: retried later)."""

    claimed: Leased
    status: str
    reason: str = ""
    ticket_id: object = None
    not_before: datetime | None = None


@dataclass
class BatchResult:
    taken: int = 0
    decisions: list[Decision] = field(default_factory=list)


def queue_take_batch(*, limit: int | None = None, now: datetime | None = None) -> list[Leased]:
    """Lease up to ``limit`` pending entries (arrival order): mark them ``processing``."""
    now = now or timezone.now()
    limit = limit or settings.QUEUE_BATCH_SIZE
    with connection.cursor() as cursor:
        cursor.execute(_LEASE_BATCH_SQL, {"now": now, "limit": limit})
        rows = cursor.fetchall()
    return sorted((Leased(*row, locked_at=now) for row in rows), key=lambda c: (c.sort_key or 0, c.id))


def drop_broken_connection() -> None:
    """After an error, reconnect on next use if the connection is broken (worker autocommit mode).

    Inside an outer transaction (only tests wrap calls in one) the connection must be kept.
    """
    if not connection.in_atomic_block:
        close_old_connections()


# --- the outcome rule, shared by both ways -------------------------------------------------


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


def _decision(leased: Leased, outcome: Ticket | TicketError, *, held: dict[int, object]) -> Decision:
    """The decision for an issuing outcome: a ticket completes the entry; so does the student's
    unlinked ticket (``held``, asked only for ``AlreadyHasTicket``); any other refusal fails it."""
    if isinstance(outcome, Ticket):
        return Decision(leased, QueueEntry.Status.COMPLETED, ticket_id=outcome.id)
    if isinstance(outcome, AlreadyHasTicket) and leased.user_id in held:
        return Decision(leased, QueueEntry.Status.COMPLETED, ticket_id=held[leased.user_id])
    return Decision(leased, QueueEntry.Status.FAILED, reason=outcome.code)


def _held_for(event_id: int, refused: list[tuple[Leased, Ticket | TicketError]]) -> dict[int, object]:
    holders = [leased.user_id for leased, outcome in refused if isinstance(outcome, AlreadyHasTicket)]
    return unlinked_tickets(event_id=event_id, user_ids=holders) if holders else {}


# --- a whole event's share of a batch at once ----------------------------------------------

# Lease check as in queue_decide: a row the reaper gave to another worker is not ours any more.
# Locked in a fixed (id) order, so a wait on a row can never close a cycle with another locker.
_LOCK_SQL = """
SELECT id, ticket_id FROM ticket_queue
WHERE id = ANY(%(ids)s) AND status = 'processing' AND locked_at = %(lease)s
ORDER BY id
FOR UPDATE
"""

_RECORD_SQL = """
UPDATE ticket_queue AS q
SET status = d.status, reason = d.reason, ticket_id = d.ticket_id, processed_at = %(now)s, locked_at = NULL
FROM unnest(%(ids)s::bigint[], %(statuses)s::varchar[], %(reasons)s::varchar[], %(tickets)s::uuid[])
    AS d(id, status, reason, ticket_id)
WHERE q.id = d.id
"""


def queue_decide_group(entries: list[Leased]) -> list[Decision]:
    """Decide ``entries`` (one event, one lease; all of a shuffled event's pre-queue or all after
    it, see ``Leased.after_prequeue``): together first, one by one if that fails.

    Entries whose lease is no longer ours get no decision: this worker must not touch them.
    """
    decisions, left = queue_decide_many(entries)
    for entry in left:
        decision = queue_decide(entry)
        if decision is not None:
            decisions.append(decision)
    _count(decisions)
    return decisions


def _count(decisions: list[Decision]) -> None:
    """Count the committed decisions in ``ticketwar_claims_decided`` (a retry is not one)."""
    for decision in decisions:
        if decision.status != QueueEntry.Status.PENDING:
            CLAIMS_DECIDED.labels(result=decision.status, reason=decision.reason or "none").inc()


def queue_decide_many(entries: list[Leased]) -> tuple[list[Decision], list[Leased]]:
    """Decide ``entries`` (one event, one lease, arrival order) in one transaction.

    Locks the rows (only while the lease is still ours), issues the tickets with
    ``ticket_issue_many`` (four statements for the whole group) and writes every outcome with
    one ``UPDATE ... FROM unnest(...)``: about eight round trips for ten claims where deciding
    them one by one takes over a hundred. Returns ``(decisions, left)``. Entries whose lease is
    no longer ours are in neither. ``left`` is empty unless the transaction failed (rolled back,
    seats included); then it holds every entry, for ``queue_decide`` (which re-checks the lease).
    """
    if not entries:
        return [], []
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_LOCK_SQL, {"ids": [c.id for c in entries], "lease": entries[0].locked_at})
                linked = dict(cursor.fetchall())
            mine = [c for c in entries if c.id in linked]
            decisions = _decisions_for(mine, linked=linked, keep=_hold_for(mine))
            if decisions:
                _record(decisions)
    except Exception:  # IntegrityError, a database hiccup or a bug: the per-entry path decides
        logger.warning(
            "claims %s not decided together; deciding them one by one", [c.id for c in entries], exc_info=True
        )
        drop_broken_connection()
        return [], entries
    return decisions, []


def _hold_for(entries: list[Leased]) -> int:
    """Seats to keep for a shuffled event's pre-queue when deciding ``entries`` (one group)."""
    return prequeue_hold(entries[0].event_id) if entries and entries[0].after_prequeue else 0


def _decisions_for(entries: list[Leased], *, linked: dict, keep: int = 0) -> list[Decision]:
    """``queue_decide``'s steps for many entries: the same outcomes, a few queries in all."""
    decisions: dict[int, Decision] = {
        c.id: Decision(c, QueueEntry.Status.COMPLETED, ticket_id=linked[c.id])
        for c in entries
        if linked[c.id] is not None
    }
    todo = [c for c in entries if c.id not in decisions]
    if todo:
        outcomes = ticket_issue_many(
            event_id=todo[0].event_id,
            user_ids=[c.user_id for c in todo],
            keep=keep,
            languages={c.user_id: c.language for c in todo},
        )
        held = _held_for(todo[0].event_id, [(c, outcomes[c.user_id]) for c in todo])
        decisions |= {c.id: _decision(c, outcomes[c.user_id], held=held) for c in todo}
    return [decisions[c.id] for c in entries]


def _record(decisions: list[Decision]) -> None:
    """Write every outcome in one statement (the rows are locked by this transaction)."""
    assert connection.in_atomic_block, "the outcomes are written under the rows' locks"
    with connection.cursor() as cursor:
        cursor.execute(
            _RECORD_SQL,
            {
                "now": timezone.now(),
                "ids": [d.claimed.id for d in decisions],
                "statuses": [d.status for d in decisions],
                "reasons": [d.reason for d in decisions],
                "tickets": [d.ticket_id for d in decisions],
            },
        )


# --- one entry at a time: the fallback, with retries ---------------------------------------


def _backoff(attempts: int) -> timedelta:
    # 0.5 s, 1 s, 2 s: a database hiccup usually passes within a second or two.
    return timedelta(seconds=0.5 * 2 ** max(0, attempts - 1))


def queue_decide(leased: Leased) -> Decision | None:
    """Decide one leased entry: a ticket (completed) or a refusal (failed), or retry later.

    Returns None when the lease is no longer ours (the reaper gave the row to someone else):
    then this worker must not touch it. Idempotent: a student who already holds an active
    ticket not linked to another entry gets *that* ticket, never a second one.
    """
    try:
        with transaction.atomic():
            # Row lock: the reaper and other workers wait for this decision, then see it made.
            mine = (
                QueueEntry.objects.select_for_update()
                .filter(pk=leased.id, status=QueueEntry.Status.PROCESSING, locked_at=leased.locked_at)
                .values_list("ticket_id", flat=True)
            )
            rows = list(mine)
            if not rows:
                return None
            # The same steps as a whole batch's, for this one entry.
            (decision,) = _decisions_for([leased], linked={leased.id: rows[0]}, keep=_hold_for([leased]))
            QueueEntry.objects.filter(pk=leased.id).update(
                status=decision.status,
                reason=decision.reason,
                ticket_id=decision.ticket_id,
                processed_at=timezone.now(),
                locked_at=None,
            )
        return decision
    except Exception as exc:  # transient (database, network) or a bug: retried, then refused
        if not isinstance(exc, TicketError):
            logger.warning("claim %s not decided (attempt %s)", leased.id, leased.attempts, exc_info=True)
        drop_broken_connection()
        return _retry_or_fail(leased, exc)


def _retry_or_fail(leased: Leased, exc: BaseException) -> Decision | None:
    now = timezone.now()
    error = f"{type(exc).__name__}: {exc}"[:2000]
    mine = QueueEntry.objects.filter(pk=leased.id, status=QueueEntry.Status.PROCESSING, locked_at=leased.locked_at)
    try:
        if leased.attempts >= settings.QUEUE_MAX_ATTEMPTS:
            done = mine.update(
                status=QueueEntry.Status.FAILED, reason="error", last_error=error, processed_at=now, locked_at=None
            )
            return Decision(leased, QueueEntry.Status.FAILED, reason="error") if done else None
        not_before = now + _backoff(leased.attempts)
        done = mine.update(status=QueueEntry.Status.PENDING, last_error=error, not_before=not_before, locked_at=None)
        return Decision(leased, QueueEntry.Status.PENDING, not_before=not_before) if done else None
    except Exception:  # the database itself is away: the lease runs out and the reaper retries
        logger.error("claim %s left to the reaper", leased.id, exc_info=True)
        drop_broken_connection()
        return None


# --- events already finished: refused in bulk ----------------------------------------------

# The window refusals that will not change for the rest of a batch (``tickets.policy``).
_FINISHED = (SoldOut, ClaimClosed)

_REFUSE_SQL = """
UPDATE ticket_queue SET status = 'failed', reason = %(reason)s, processed_at = %(now)s, locked_at = NULL
WHERE id = ANY(%(ids)s) AND status = 'processing' AND locked_at = %(lease)s
RETURNING id
"""


def queue_refuse_finished(leased: list[Leased]) -> tuple[list[Decision], list[Leased]]:
    """Refuse at once, in one UPDATE per event, the entries of events already sold out or closed.

    After the last seat is gone every remaining claim would walk the whole issuing path only to
    hear "sold out"; this answers them in bulk with the event's ``window_refusal`` (a refusal
    creates no ticket, so the issuing service stays the one place seats are taken). A seat given
    back in between simply goes to a later claim. Returns ``(decisions, entries still to decide)``.
    """
    now = timezone.now()
    refusals = {
        event.id: window_refusal(event=event, now=now)
        for event in Event.objects.filter(id__in={c.event_id for c in leased}).only(
            "id", "status", "claim_opens_at", "claim_closes_at", "remaining"
        )
    }
    finished = {e: refusal.code for e, refusal in refusals.items() if isinstance(refusal, _FINISHED)}
    decisions: list[Decision] = []
    for event_id, reason in finished.items():
        group = [c for c in leased if c.event_id == event_id]
        with connection.cursor() as cursor:
            cursor.execute(
                _REFUSE_SQL,
                {"reason": reason, "now": now, "ids": [c.id for c in group], "lease": group[0].locked_at},
            )
            done = {row[0] for row in cursor.fetchall()}
        decisions.extend(Decision(c, QueueEntry.Status.FAILED, reason=reason) for c in group if c.id in done)
    rest = [c for c in leased if c.event_id not in finished]
    _count(decisions)
    return decisions, rest
