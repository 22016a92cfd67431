"""Attendance confirmations: the organiser asks holders to confirm; unconfirmed seats are freed."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from celery import current_app
from django.db import transaction
from django.utils import timezone

from events.models import Event

from .exceptions import ConfirmationNotOpen, DeadlineInPast, TicketError
from .models import ConfirmationRequest, Ticket, TicketConfirmation
from .services import ticket_return

logger = logging.getLogger("ticketwar.tickets")

# Named, not imported: tickets.tasks calls into this module (no import cycle).
MAIL_CONFIRMATION_REQUEST_TASK = "tickets.mail_confirmation_request"


def confirmation_request_create(
    *, event_id: int, deadline: datetime, created_by=None, now: datetime | None = None
) -> ConfirmationRequest:
    """Ask every holder of an active, unused ticket of the event to confirm before ``deadline``.

    Tickets not confirmed by then are given back by ``confirmation_release_due`` and their
    seats offered to the waiting list. The holders are e-mailed after commit.
    """
    now = now or timezone.now()
    event = Event.objects.filter(pk=event_id).first()
    if event is None or deadline <= now or deadline >= event.starts_at:
        raise DeadlineInPast()
    with transaction.atomic():
        request = ConfirmationRequest.objects.create(event_id=event_id, deadline=deadline, created_by=created_by)
        tickets = Ticket.objects.filter(event_id=event_id, status=Ticket.Status.ACTIVE, admitted_at__isnull=True)
        TicketConfirmation.objects.bulk_create(
            [TicketConfirmation(request=request, ticket_id=t) for t in tickets.values_list("id", flat=True)]
        )
        transaction.on_commit(lambda: _mail_holders(request.pk))
    return request


def ticket_confirm(*, ticket_id: uuid.UUID, user_id: int, now: datetime | None = None) -> int:
    """The holder confirms attendance: every open request for this ticket is answered."""
    now = now or timezone.now()
    done = TicketConfirmation.objects.filter(
        ticket_id=ticket_id,
        ticket__user_id=user_id,
        ticket__status=Ticket.Status.ACTIVE,
        request__closed_at__isnull=True,
        request__deadline__gt=now,
        confirmed_at__isnull=True,
    ).update(confirmed_at=now)
    if (
        not done
        and not TicketConfirmation.objects.filter(
            ticket_id=ticket_id, ticket__user_id=user_id, confirmed_at__isnull=False, request__closed_at__isnull=True
        ).exists()
    ):
        raise ConfirmationNotOpen()
    return done


def confirmation_release_due(*, now: datetime | None = None) -> int:
    """Give back the unconfirmed tickets of every request past its deadline; returns tickets freed.

    Each request is closed exactly once: its row is locked (SKIP LOCKED, so two beats split
    the work) and ``closed_at`` set in the same transaction. Each ticket goes back through
    ``tickets.services.ticket_return``, whose freed seat the waiting list is offered after commit
    (``events.seats``).
    """
    now = now or timezone.now()
    freed = 0
    while True:
        with transaction.atomic():
            request = (
                ConfirmationRequest.objects.select_for_update(skip_locked=True)
                .filter(closed_at__isnull=True, deadline__lte=now)
                .order_by("deadline")
                .first()
            )
            if request is None:
                return freed
            released = 0
            unconfirmed = TicketConfirmation.objects.filter(request=request, confirmed_at__isnull=True).select_related(
                "ticket"
            )
            for confirmation in unconfirmed:
                ticket = confirmation.ticket
                try:
                    ticket_return(ticket_id=ticket.id, user_id=ticket.user_id, now=now)
                except TicketError:  # already given back, used at the door or event started
                    continue
                released += 1
            request.closed_at = now
            request.released = released
            request.save(update_fields=["closed_at", "released"])
        freed += released


def open_confirmation_for(*, ticket_id: uuid.UUID, user_id: int) -> TicketConfirmation | None:
    return (
        TicketConfirmation.objects.select_related("request", "ticket__event")
        .filter(ticket_id=ticket_id, ticket__user_id=user_id, request__closed_at__isnull=True)
        .order_by("request__deadline")
        .first()
    )


def _mail_holders(request_id: int) -> None:
    try:
        current_app.signature(MAIL_CONFIRMATION_REQUEST_TASK).apply_async(args=[request_id], retry=False)
    except Exception:
        logger.warning("confirmation e-mails not queued for request %s", request_id, exc_info=True)
