"""Writes of the tickets app. ``ticket_issue`` (and its batch twin ``ticket_issue_many``) is the
one place a seat becomes a ticket."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from events.models import Event

from .exceptions import (
    EventUnavailable,
    ReturnClosed,
    SoldOut,
    TicketAlreadyReturned,
    TicketAlreadyUsed,
    TicketError,
    TicketNotFound,
)
from .models import Ticket
from .rows import insert_ticket, insert_tickets
from .rules import check_may_receive_id, claim_refusal_for, student_refusal, window_refusal
from .signals import seats_changed


def notify_seats_changed(event_id: int) -> None:
    """Send ``seats_changed`` after commit; every seat change calls this once (nothing is
    queued when no receiver listens)."""
    if seats_changed.has_listeners():
        transaction.on_commit(lambda: seats_changed.send(sender=Ticket, event_id=event_id))


def ticket_issue(*, event_id: int, user_id: int, now: datetime | None = None, keep: int = 0) -> Ticket:
    """Issue one ticket of ``event_id`` to ``user_id``, or raise why not.

    One short transaction: a conditional ``UPDATE ... SET remaining = remaining - 1 WHERE
    remaining > 0`` takes the seat (its row lock serialises concurrent issuers for the
    microseconds of the statement), then the ticket row is inserted. The partial unique
    constraint ``tickets_ticket_one_active_per_student_event`` rejects a second active
    ticket; the whole transaction, seat included, then rolls back. Safe to call from any
    number of threads, processes or workers at once. Must not be called inside an outer
    transaction that does network I/O. ``keep``: seats that must stay free for claims ranked
    ahead (a shuffled event's pre-queue, ``queueing.draw.prequeue_hold``); beyond them, sold out.
    """
    now = now or timezone.now()
    with transaction.atomic():
        event = Event.objects.filter(pk=event_id).first()
        if event is None:
            raise EventUnavailable()
        refusal = claim_refusal_for(event=event, user=get_user_model().objects.filter(pk=user_id).first(), now=now)
        if refusal is not None:
            raise refusal
        seats = Event.objects.filter(claim_opens_at__lte=now, claim_closes_at__gt=now)
        if not seats.take_seats(event_id, now=now, keep=keep):
            raise SoldOut()
        ticket = insert_ticket(event_id=event_id, user_id=user_id)
        notify_seats_changed(event_id)
    return ticket


def ticket_issue_many(
    *, event_id: int, user_ids: Sequence[int], now: datetime | None = None, keep: int = 0
) -> dict[int, Ticket | TicketError]:
    """Issue tickets of ``event_id`` to many students at once: the batch twin of ``ticket_issue``.

    Returns, per user id, the new ``Ticket`` or the refusal ``ticket_issue`` would have raised
    for that student alone, as an instance (not raised; instances may be shared): the
    ``tickets.rules`` of ``ticket_issue`` over the batch (``student_refusal`` per student, then the
    event's ``window_refusal``), or ``SoldOut`` beyond the seats left. Seats go in the order of
    ``user_ids`` (earlier first); duplicates count once.

    Four statements for any number of students: the event under a row lock, the students with
    whether each holds an active ticket, one conditional UPDATE taking ``min(remaining,
    eligible)`` seats (only while published and open, as in ``ticket_issue``; ``remaining``
    less the ``keep`` seats held for claims ranked ahead, as there), one INSERT.
    Seats-changed callbacks are registered once per call. Runs in the caller's transaction
    (its own if none) without a savepoint: if it raises, e.g. ``IntegrityError`` from
    ``tickets_ticket_one_active_per_student_event`` (a ticket inserted without the event lock,
    such as a waiting-list seat, for one of these students after the check), the caller must
    roll everything back, seats included.
    """
    now = now or timezone.now()
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return {}
    with transaction.atomic(savepoint=False):
        # Row lock until the caller commits: concurrent issuers of this event wait here, so
        # the seats counted below are still there when the UPDATE takes them. NO KEY: the lock
        # an UPDATE takes anyway, which lets claims and tickets referencing the event be
        # inserted meanwhile (their foreign-key check only needs KEY SHARE).
        event = Event.objects.select_for_update(no_key=True).filter(pk=event_id).first()
        if event is None:
            return dict.fromkeys(wanted, EventUnavailable())
        holds = Ticket.objects.filter(event_id=event_id, user_id=OuterRef("pk"), status=Ticket.Status.ACTIVE)
        users = {
            user.pk: user
            for user in get_user_model()
            .objects.filter(pk__in=wanted)
            .only("id", "is_active", "nim", "email_verified_at")
            .annotate(holds_ticket=Exists(holds))
        }
        outcomes: dict[int, Ticket | TicketError] = {}
        for user_id in wanted:
            user = users.get(user_id)
            refusal = student_refusal(user, held=user is not None and user.holds_ticket)
            if refusal is not None:
                outcomes[user_id] = refusal
        eligible = [user_id for user_id in wanted if user_id not in outcomes]
        refusal = window_refusal(event=event, now=now)
        if refusal is not None:
            return outcomes | dict.fromkeys(eligible, refusal)
        seats = max(0, min(event.remaining - keep, len(eligible)))
        taken = bool(seats) and Event.objects.filter(claim_opens_at__lte=now, claim_closes_at__gt=now).take_seats(
            event_id, seats, now=now, keep=keep
        )
        winners = eligible[:seats] if taken else []
        if winners:
            outcomes |= insert_tickets(event_id=event_id, user_ids=winners)
            notify_seats_changed(event_id)
        sold_out = SoldOut()
        outcomes |= {user_id: sold_out for user_id in eligible if user_id not in outcomes}
    return outcomes


def ticket_issue_held(*, event_id: int, user_id: int) -> Ticket:
    """Turn a seat already held for ``user_id`` (a waiting-list offer) into a ticket.

    The seat was taken from ``remaining`` when the offer was made (``Event.objects.take_seats``,
    as in ``ticket_issue``); this only checks the student and inserts the ticket. Call
    inside the caller's ``transaction.atomic`` that locks the offer row, so the held seat is
    used at most once. Raises ``NotEligible`` or ``AlreadyHasTicket``.
    """
    assert connection.in_atomic_block, "ticket_issue_held runs in the transaction that locks the offer"
    check_may_receive_id(event_id=event_id, user_id=user_id)
    ticket = insert_ticket(event_id=event_id, user_id=user_id)
    notify_seats_changed(event_id)
    return ticket


def ticket_return(*, ticket_id: uuid.UUID, user_id: int, now: datetime | None = None) -> Ticket:
    """Give a ticket back before the event starts: its seat returns to the pool.

    Only the holder (``user_id``) may return it, only while it is active, not yet used at the
    door and the event has not started. The row lock (``SELECT ... FOR UPDATE``) orders this
    against a concurrent door check-in of the same ticket: whichever commits first wins and
    the other sees its result (``ticket_check_in``'s conditional UPDATE waits for the lock and
    then finds the ticket returned; or this sees ``admitted_at`` set and refuses).
    Raises ``TicketNotFound``, ``TicketAlreadyReturned``, ``TicketAlreadyUsed`` or ``ReturnClosed``.
    """
    now = now or timezone.now()
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("event")
            .filter(pk=ticket_id, user_id=user_id)
            .first()
        )
        if ticket is None:
            raise TicketNotFound()
        if ticket.status != Ticket.Status.ACTIVE:
            raise TicketAlreadyReturned()
        if ticket.admitted_at is not None:
            raise TicketAlreadyUsed()
        if now >= ticket.event.starts_at:
            raise ReturnClosed()
        ticket.status = Ticket.Status.RETURNED
        ticket.returned_at = now
        # The door lists learn of it in their next delta (tickets.doorlist), by the wall clock.
        ticket.changed_at = timezone.now()
        ticket.save(update_fields=["status", "returned_at", "changed_at"])
        # The ticket row is locked and now returned, so this +1 runs exactly once per ticket;
        # the named check constraint keeps remaining <= capacity whatever happens.
        Event.objects.release_seats(ticket.event_id, now=now)
        notify_seats_changed(ticket.event_id)
    return ticket
