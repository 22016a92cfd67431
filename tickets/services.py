"""Writes of the tickets app. ``ticket_issue_many`` is the one place seats become tickets (for one
student or a batch); ``ticket_issue_held`` turns a seat held by a waiting-list offer into one;
``ticket_return`` gives a ticket back. Who may receive or give back a ticket: ``tickets.policy``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from events.models import Event
from events.seats import seats_release, seats_take

from .exceptions import EventUnavailable, NotEligible, SoldOut, TicketError
from .models import Ticket
from .policy import Standing, give_back_refusal, student_refusal, window_refusal
from .rows import insert_ticket, insert_tickets
from .selectors import active_ticket_of


def ticket_issue_many(
    *,
    event_id: int,
    user_ids: Sequence[int],
    now: datetime | None = None,
    keep: int = 0,
    languages: Mapping[int, str] | None = None,
) -> dict[int, Ticket | TicketError]:
    """Issue tickets of ``event_id`` to these students, in the order of ``user_ids`` (earlier first;
    duplicates count once): the one issuing path, for one student or a batch.

    Returns, per user id, the new ``Ticket`` or the refusal for that student, as an instance (not
    raised; instances may be shared): the policy's ``student_refusal`` per student, then the event's
    ``window_refusal``, or ``SoldOut`` beyond the seats left. ``languages``: each student's
    language for the ticket e-mail (their claim's), else the active one.

    Four statements for any number of students: the event under a row lock, the students with
    whether each holds an active ticket, one conditional UPDATE taking ``min(remaining,
    eligible)`` seats (only while published and open; ``remaining`` less the ``keep`` seats held
    for claims ranked ahead, a shuffled event's pre-queue: ``queueing.draw.prequeue_hold``), one
    INSERT. Runs in the caller's transaction (its own if none) without a savepoint: if it raises,
    e.g. ``IntegrityError`` from ``tickets_ticket_one_active_per_student_event`` (a ticket inserted
    without the event lock, such as a waiting-list seat, for one of these students after the
    check), the caller must roll everything back, seats included.
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
            refusal = student_refusal(Standing(user, ticket=user is not None and user.holds_ticket))
            if refusal is not None:
                outcomes[user_id] = refusal
        eligible = [user_id for user_id in wanted if user_id not in outcomes]
        refusal = window_refusal(event=event, now=now)
        if refusal is not None:
            return outcomes | dict.fromkeys(eligible, refusal)
        seats = max(0, min(event.remaining - keep, len(eligible)))
        window = Event.objects.filter(claim_opens_at__lte=now, claim_closes_at__gt=now)
        taken = bool(seats) and seats_take(event_id, seats, now=now, keep=keep, among=window)
        winners = eligible[:seats] if taken else []
        if winners:
            outcomes |= insert_tickets(event_id=event_id, user_ids=winners, languages=languages)
        sold_out = SoldOut()
        outcomes |= {user_id: sold_out for user_id in eligible if user_id not in outcomes}
    return outcomes


def ticket_issue_held(*, event_id: int, user_id: int) -> Ticket:
    """Turn a seat already held for ``user_id`` (a waiting-list offer) into a ticket.

    The seat was taken from ``remaining`` when the offer was made (``events.seats.seats_take``);
    this only asks the policy about the student (``student_refusal``) and inserts the ticket. Call
    inside the caller's ``transaction.atomic`` that locks the offer row, so the held seat is used
    at most once. Raises ``NotEligible`` or ``AlreadyHasTicket``.
    """
    assert connection.in_atomic_block, "ticket_issue_held runs in the transaction that locks the offer"
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise NotEligible()
    refusal = student_refusal(Standing(user, ticket=active_ticket_of(event_id=event_id, user_id=user_id)))
    if refusal is not None:
        raise refusal
    return insert_ticket(event_id=event_id, user_id=user_id)


def ticket_return(*, ticket_id: uuid.UUID, user_id: int, now: datetime | None = None) -> Ticket:
    """Give a ticket back before the event starts: its seat returns to the pool.

    Only the holder (``user_id``) may, and only as the policy allows (``give_back_refusal``: active,
    not used at the door, the event not started), asked under the ticket's row lock. The lock
    (``SELECT ... FOR UPDATE``) orders this against a concurrent door check-in of the same ticket:
    whichever commits first wins and the other sees its result (``ticket_check_in``'s conditional
    UPDATE waits for the lock and then finds the ticket returned; or this sees ``admitted_at`` set
    and refuses). Raises ``TicketNotFound``, ``TicketAlreadyReturned``, ``TicketAlreadyUsed`` or
    ``ReturnClosed``.
    """
    now = now or timezone.now()
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("event")
            .filter(pk=ticket_id, user_id=user_id)
            .first()
        )
        refusal = give_back_refusal(ticket, now=now)
        if refusal is not None:
            raise refusal
        ticket.status = Ticket.Status.RETURNED
        ticket.returned_at = now
        # The door lists learn of it in their next delta (tickets.doorlist), by the wall clock.
        ticket.changed_at = timezone.now()
        ticket.save(update_fields=["status", "returned_at", "changed_at"])
        # The ticket row is locked and now returned, so this +1 runs exactly once per ticket;
        # the named check constraint keeps remaining <= capacity whatever happens.
        seats_release(ticket.event_id, now=now)
    return ticket
