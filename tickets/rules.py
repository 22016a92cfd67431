"""Who may get a seat of which event, and when: the one home of the claim rules.

``claim_refusal_for`` answers "why may this student not get a seat of this event now", as a
refusal (a ``TicketError`` instance) or None. It is made of two halves, asked separately where a
route needs only one: ``student_refusal`` (an active, verified student holding no active ticket
of the event) and ``window_refusal`` (the event published, its claim window open, seats left).
Every way to a seat asks them: the claim (``queueing.services.queue_enqueue``, whose one
statement finds the held ticket with ``HELD_TICKET_SQL``), the issuing (``ticket_issue``,
``ticket_issue_held``, and ``ticket_issue_many`` with the same functions over a batch), the
deciding workers (``queueing.deciding``, which refuses whole events by ``window_refusal``) and
the waiting list (joining, and every offer). These are friendly refusals: the partial unique
constraint on tickets and the conditional seat UPDATE (``Event.objects.take_seats``) are the truth.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.utils import timezone

from events.models import Event

from .exceptions import AlreadyHasTicket, ClaimClosed, ClaimNotOpen, EventUnavailable, NotEligible, SoldOut, TicketError
from .models import Ticket
from .selectors import ticket_as_dict

# The student's active ticket of the event, if any: ``student_refusal``'s "holds a ticket" as
# SQL, for statements that must find it in the same round trip (the claim's INSERT).
HELD_TICKET_SQL = """
SELECT id FROM tickets_ticket
WHERE event_id = %(event_id)s AND user_id = %(user_id)s AND status = 'active'
LIMIT 1
"""


def student_refusal(user, *, held: Ticket | bool | None = None) -> TicketError | None:
    """Why ``user`` may not receive a ticket: not an active, verified student (``NotEligible``,
    403), or holding an active ticket of the event (``AlreadyHasTicket``, 409).

    ``held`` is what the caller found about the ticket: the ``Ticket`` itself (the refusal
    carries it), a bool from a bulk query, or None for none. ``user`` None (unknown id) is not
    eligible.
    """
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return NotEligible()
    if not user.is_student or not user.is_verified:
        return NotEligible()
    if isinstance(held, Ticket):
        return AlreadyHasTicket(ticket=ticket_as_dict(held))
    if held:
        return AlreadyHasTicket()
    return None


def window_refusal(*, event: Event, now: datetime | None = None) -> TicketError | None:
    """Why nobody may claim ``event`` at ``now``: not open yet, sold out, closed, unavailable."""
    state = event.claim_state(now)
    if state == Event.ClaimState.OPEN:
        return None
    if state == Event.ClaimState.NOT_OPEN:
        opens_in = max(1, int((event.claim_opens_at - (now or timezone.now())).total_seconds()))
        return ClaimNotOpen(opens_in=opens_in)
    if state == Event.ClaimState.SOLD_OUT:
        return SoldOut()
    if state == Event.ClaimState.CLOSED:
        return ClaimClosed()
    return EventUnavailable()


def held_ticket(*, event_id: int, user_id: int) -> Ticket | None:
    """The student's active ticket of the event (with its event), or None."""
    return (
        Ticket.objects.select_related("event")
        .filter(event_id=event_id, user_id=user_id, status=Ticket.Status.ACTIVE)
        .first()
    )


def claim_refusal_for(*, event: Event, user, now: datetime | None = None) -> TicketError | None:
    """Why this student may not get a seat of this event now (None: they may): the student
    first (the ticket they hold is the more useful answer), then the claim window."""
    refusal = student_refusal(user)
    if refusal is None:
        refusal = student_refusal(user, held=held_ticket(event_id=event.pk, user_id=user.pk))
    return refusal or window_refusal(event=event, now=now)


def check_eligible(user) -> None:
    """Raise ``NotEligible`` unless ``user`` is an active, verified student (no query)."""
    refusal = student_refusal(user)
    if refusal is not None:
        raise refusal


def check_claim_window(*, event: Event, now: datetime | None = None) -> None:
    """Raise the ``window_refusal`` that applies to claiming ``event`` at ``now``, if any."""
    refusal = window_refusal(event=event, now=now)
    if refusal is not None:
        raise refusal


def check_may_receive(*, event_id: int, user) -> None:
    """Raise the ``student_refusal`` of ``user`` for ``event_id`` (one query for the held ticket).

    The event's own state (claim window, sold out) is each route's rule on top.
    """
    check_eligible(user)
    refusal = student_refusal(user, held=held_ticket(event_id=event_id, user_id=user.pk))
    if refusal is not None:
        raise refusal


def check_may_receive_id(*, event_id: int, user_id: int) -> None:
    """``check_may_receive`` for a user id (unknown ids are not eligible)."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise NotEligible()
    check_may_receive(event_id=event_id, user=user)
