"""Who may get a seat of which event, when, and what a claim becomes: the one home of these rules.

``claim_verdict`` answers a student's claim from their *standing* (``Standing``: the student, the
active ticket they hold, their claim still in the queue, their row on the waiting list; read in
one query by ``waitlist.standing.standing_of``) and the event at ``now``. First refusal wins, in
this order:

1. not an active, verified student: ``NotEligible`` (403);
2. holding an active ticket of the event: ``AlreadyHasTicket``, with the ticket (409);
3. the event not published (a draft, cancelled): ``EventUnavailable`` (404);
4. a claim of theirs still in the queue: that claim is the answer (200, the same entry);
5. the claim window: not open yet (``ClaimNotOpen``, 425, unless a shuffled opening's pre-queue
   takes the claim), sold out (``SoldOut``, 410: the student goes on the waiting list) or closed
   (``ClaimClosed``, 410);
6. otherwise the claim joins the queue.

Its halves are asked on their own where a route needs only one: ``student_refusal`` (1-2) by the
issuing (``tickets.services.ticket_issue_many``, per student) and the waiting list's offers,
``window_refusal`` (3, 5) by the issuing (per event) and the worker's bulk refusal of finished
events. ``give_back_refusal`` is the rule of giving a ticket back (the give-back page and
``tickets.services.ticket_return``).

Where the database must enforce a rule itself, a named SQL twin does, driven by the same table
of cases as this module (``tickets/tests/test_policy.py``): ``HELD_TICKET_SQL`` (2) in the claim's
one statement (``queueing.services``), ``ticket_queue_refuse_holder`` (2), that statement's
PL/pgSQL re-check (queueing migration 0004), and the lease's shuffle gate (5, the pre-queue;
``queueing.deciding.SHUFFLE_GATE_SQL``). Everything here is a friendly answer: the partial unique
constraints and the conditional seat UPDATE (``events.seats``) are the truth.

Pure: no query, no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.models import Event

from .exceptions import (
    AlreadyHasTicket,
    ClaimClosed,
    ClaimNotOpen,
    EventUnavailable,
    NotEligible,
    ReturnClosed,
    SoldOut,
    TicketAlreadyReturned,
    TicketAlreadyUsed,
    TicketError,
    TicketNotFound,
)
from .models import Ticket
from .selectors import ticket_as_dict

# (2) as SQL: the student's active ticket of the event, for statements that must find it in the
# same round trip (the claim's INSERT, queueing.services).
HELD_TICKET_SQL = """
SELECT id FROM tickets_ticket
WHERE event_id = %(event_id)s AND user_id = %(user_id)s AND status = 'active'
LIMIT 1
"""


@dataclass(frozen=True)
class Standing:
    """Where one student stands with one event, as the policy needs it.

    ``ticket``: their active ticket of the event (a ``Ticket``, whose refusal then carries it; or
    just True where a bulk query only knows that one exists), None for none. ``entry``: their claim
    still in the queue (pending or processing), None for none. ``waitlist``: their row on the
    event's waiting list, None for none (read for the pages; no rule of the claim depends on it:
    a student who opted out simply stays off the list). ``user`` None: an unknown account.
    """

    user: Any
    ticket: Ticket | bool | None = None
    entry: Any = None
    waitlist: Any = None


@dataclass(frozen=True)
class Verdict:
    """The answer to a claim: a refusal, the claim already in the queue, or a new claim."""

    refusal: TicketError | None = None
    # (4) The student's claim still in the queue: it is the answer.
    entry: Any = None
    # (5) A new claim joins the shuffled pre-queue (before opening) instead of the queue.
    prequeue: bool = False

    @property
    def queues(self) -> bool:
        """A new claim goes into the queue (or its pre-queue)."""
        return self.refusal is None and self.entry is None

    @property
    def joins_waitlist(self) -> bool:
        """Refused as sold out: the student goes on the event's waiting list (unless they opted out)."""
        return isinstance(self.refusal, SoldOut)

    @property
    def about_the_student(self) -> bool:
        """Refused for who the student is or what they hold (1-2), whatever the event's window."""
        return isinstance(self.refusal, (NotEligible, AlreadyHasTicket))


def student_refusal(standing: Standing) -> TicketError | None:
    """(1-2) Why this student may not receive a ticket of the event: not an active, verified
    student (``NotEligible``), or holding an active ticket of it (``AlreadyHasTicket``)."""
    user = standing.user
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return NotEligible()
    if not user.is_student or not user.is_verified:
        return NotEligible()
    if isinstance(standing.ticket, Ticket):
        return AlreadyHasTicket(ticket=ticket_as_dict(standing.ticket))
    if standing.ticket:
        return AlreadyHasTicket()
    return None


def window_refusal(*, event: Event, now: datetime) -> TicketError | None:
    """(3, 5) Why nobody may claim ``event`` at ``now``: unavailable, not open yet, sold out, closed."""
    state = event.claim_state(now)
    if state == Event.ClaimState.OPEN:
        return None
    if state == Event.ClaimState.NOT_OPEN:
        return ClaimNotOpen(opens_in=max(1, int((event.claim_opens_at - now).total_seconds())))
    if state == Event.ClaimState.SOLD_OUT:
        return SoldOut()
    if state == Event.ClaimState.CLOSED:
        return ClaimClosed()
    return EventUnavailable()


def claim_verdict(standing: Standing, *, event: Event, now: datetime) -> Verdict:
    """The answer to this student's claim of ``event`` at ``now``, first refusal first (above)."""
    refusal = student_refusal(standing)
    if refusal is not None:
        return Verdict(refusal=refusal)
    window = window_refusal(event=event, now=now)
    if isinstance(window, EventUnavailable):
        return Verdict(refusal=window)
    if standing.entry is not None:
        return Verdict(entry=standing.entry)
    if isinstance(window, ClaimNotOpen) and event.prequeue_open:
        return Verdict(prequeue=True)
    return Verdict(refusal=window)


def give_back_refusal(ticket: Ticket | None, *, now: datetime) -> TicketError | None:
    """Why ``ticket`` (its event loaded) cannot be given back at ``now``: none (``TicketNotFound``),
    given back already (``TicketAlreadyReturned``), used at the door (``TicketAlreadyUsed``), or
    its event has started (``ReturnClosed``)."""
    if ticket is None:
        return TicketNotFound()
    if ticket.status != Ticket.Status.ACTIVE:
        return TicketAlreadyReturned()
    if ticket.admitted_at is not None:
        return TicketAlreadyUsed()
    if now >= ticket.event.starts_at:
        return ReturnClosed()
    return None
