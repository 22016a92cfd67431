"""Deciding the entries of a taken batch together: one transaction per event.

``queueing.processing.queue_process_batch`` hands each event's share of a batch here. One
transaction locks those rows (``SELECT ... FOR UPDATE``, only while the lease is still ours),
issues the tickets with ``tickets.services.ticket_issue_many`` (four statements for the whole
group) and writes every outcome with one ``UPDATE ... FROM unnest(...)``: about eight round
trips for ten claims where deciding them one by one took over a hundred. Tickets and outcomes
commit together, exactly as in the per-entry path, and the outcomes are the same
(``_decision_for`` in ``processing`` is the reference). If anything raises, the transaction
rolls back, seats included, and the entries go to the per-entry path (``queue_decide``), which
handles retries, backoff and the final refusal.
"""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.utils import timezone

from tickets.exceptions import AlreadyHasTicket
from tickets.models import Ticket
from tickets.services import ticket_issue_many

from .models import QueueEntry
from .processing import Claimed, Decision, _drop_broken_connection, unlinked_tickets

logger = logging.getLogger("ticketwar.queueing")

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


def queue_decide_many(entries: list[Claimed]) -> tuple[list[Decision], list[Claimed]]:
    """Decide ``entries`` (one event, one lease, arrival order) in one transaction.

    Returns ``(decisions, left)``. Entries whose lease is no longer ours are in neither: this
    worker must not touch them. ``left`` is empty unless the transaction failed; then it holds
    every entry, to be decided one by one with ``queue_decide`` (which re-checks the lease).
    """
    if not entries:
        return [], []
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_LOCK_SQL, {"ids": [c.id for c in entries], "lease": entries[0].locked_at})
                linked = dict(cursor.fetchall())
            mine = [c for c in entries if c.id in linked]
            decisions = _decisions_for(mine, linked=linked)
            if decisions:
                _record(decisions)
    except Exception:  # IntegrityError, a database hiccup or a bug: the per-entry path decides
        logger.warning(
            "claims %s not decided together; deciding them one by one", [c.id for c in entries], exc_info=True
        )
        _drop_broken_connection()
        return [], entries
    return decisions, []


def _decisions_for(entries: list[Claimed], *, linked: dict) -> list[Decision]:
    """The batch form of ``processing._decision_for``: same outcomes, a few queries in all."""
    decisions: dict[int, Decision] = {
        c.id: Decision(c, QueueEntry.Status.COMPLETED, ticket_id=linked[c.id])
        for c in entries
        if linked[c.id] is not None
    }
    todo = [c for c in entries if c.id not in decisions]
    if todo:
        outcomes = ticket_issue_many(event_id=todo[0].event_id, user_ids=[c.user_id for c in todo])
        holders = [c.user_id for c in todo if isinstance(outcomes[c.user_id], AlreadyHasTicket)]
        held = unlinked_tickets(event_id=todo[0].event_id, user_ids=holders) if holders else {}
        for c in todo:
            outcome = outcomes[c.user_id]
            if isinstance(outcome, Ticket):
                decisions[c.id] = Decision(c, QueueEntry.Status.COMPLETED, ticket_id=outcome.id)
            elif c.user_id in held:
                decisions[c.id] = Decision(c, QueueEntry.Status.COMPLETED, ticket_id=held[c.user_id])
            else:
                decisions[c.id] = Decision(c, QueueEntry.Status.FAILED, reason=outcome.code)
    return [decisions[c.id] for c in entries]


def _record(decisions: list[Decision]) -> None:
    """Write every outcome in one statement (the rows are locked by this transaction)."""
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
