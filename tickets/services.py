"""Writes of the tickets app. ``ticket_issue`` is the one place a seat becomes a ticket."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from events.models import Event

from .codes import new_redeem_code
from .exceptions import (
    AlreadyHasTicket,
    ClaimClosed,
    ClaimNotOpen,
    EventUnavailable,
    NotEligible,
    SoldOut,
)
from .models import Ticket

# Callbacks run after a ticket is issued or returned and the transaction commits
# (cache invalidation, metrics, pushes). Registered by other apps at start-up.
_after_change: list[Callable[[int], None]] = []


def on_seats_changed(callback: Callable[[int], None]) -> None:
    """Register ``callback(event_id)`` to run after commit whenever seats are taken or freed."""
    _after_change.append(callback)


def _notify_seats_changed(event_id: int) -> None:
    for callback in _after_change:
        transaction.on_commit(lambda cb=callback: cb(event_id))


def claim_refusal(*, event: Event, now: datetime | None = None) -> None:
    """Raise the refusal that applies to claiming ``event`` at ``now``, if any (no write)."""
    state = event.claim_state(now)
    if state == Event.ClaimState.OPEN:
        return
    if state == Event.ClaimState.NOT_OPEN:
        opens_in = max(1, int((event.claim_opens_at - (now or timezone.now())).total_seconds()))
        raise ClaimNotOpen(opens_in=opens_in)
    if state == Event.ClaimState.SOLD_OUT:
        raise SoldOut()
    if state == Event.ClaimState.CLOSED:
        raise ClaimClosed()
    raise EventUnavailable()


def check_eligible(user) -> None:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        raise NotEligible()
    if not user.is_student or not user.is_verified:
        raise NotEligible()


def ticket_issue(*, event_id: int, user_id: int, now: datetime | None = None) -> Ticket:
    """Issue one ticket of ``event_id`` to ``user_id``, or raise why not.

    One short transaction: a conditional ``UPDATE ... SET remaining = remaining - 1 WHERE
    remaining > 0`` takes the seat (its row lock serialises concurrent issuers for the
    microseconds of the statement), then the ticket row is inserted. The partial unique
    constraint ``tickets_ticket_one_active_per_student_event`` rejects a second active
    ticket; the whole transaction, seat included, then rolls back. Safe to call from any
    number of threads, processes or workers at once. Must not be called inside an outer
    transaction that does network I/O.
    """
    now = now or timezone.now()
    with transaction.atomic():
        event = Event.objects.filter(pk=event_id).first()
        if event is None:
            raise EventUnavailable()
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(pk=user_id).first()
        if user is None:
            raise NotEligible()
        check_eligible(user)
        if Ticket.objects.filter(event_id=event_id, user_id=user_id, status=Ticket.Status.ACTIVE).exists():
            raise AlreadyHasTicket()
        claim_refusal(event=event, now=now)
        taken = Event.objects.filter(
            pk=event_id,
            status=Event.Status.PUBLISHED,
            remaining__gt=0,
            claim_opens_at__lte=now,
            claim_closes_at__gt=now,
        ).update(remaining=F("remaining") - 1, updated_at=now)
        if taken != 1:
            raise SoldOut()
        ticket = _insert_ticket(event_id=event_id, user_id=user_id)
        _notify_seats_changed(event_id)
    return ticket


def _insert_ticket(*, event_id: int, user_id: int) -> Ticket:
    """Insert the ticket row, drawing a fresh redeem code on the (rare) collision."""
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Ticket.objects.create(
                    id=uuid.uuid4(), event_id=event_id, user_id=user_id, redeem_code=new_redeem_code()
                )
        except IntegrityError as exc:
            constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""
            if "one_active_per_student_event" in constraint:
                raise AlreadyHasTicket() from None
            if "redeem_code" not in constraint:
                raise
    raise RuntimeError("could not draw a unique redeem code in 5 attempts")


def ticket_return(*, ticket_id: uuid.UUID, user_id: int, now: datetime | None = None) -> Ticket:
    """Give a ticket back before the event starts: its seat returns to the pool."""
    from .exceptions import TicketError

    now = now or timezone.now()
    with transaction.atomic():
        # Row lock: a check-in and a give-back of the same ticket must not both succeed.
        ticket = (
            Ticket.objects.select_for_update().select_related("event").filter(pk=ticket_id, user_id=user_id).first()
        )
        if ticket is None:
            raise EventUnavailable("This ticket does not exist.")
        if ticket.status != Ticket.Status.ACTIVE:
            raise TicketError("This ticket has already been given back.")
        if ticket.admitted_at is not None:
            raise TicketError("This ticket has already been used at the door.")
        if now >= ticket.event.starts_at:
            raise TicketError("The event has started; tickets can no longer be given back.")
        ticket.status = Ticket.Status.RETURNED
        ticket.returned_at = now
        ticket.save(update_fields=["status", "returned_at"])
        Event.objects.filter(pk=ticket.event_id).update(remaining=F("remaining") + 1, updated_at=now)
        _notify_seats_changed(ticket.event_id)
    return ticket
