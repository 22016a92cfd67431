"""Refusals of the waiting list, each a human sentence with its status code."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from common.errors import DomainError


class WaitlistError(DomainError):
    status = 400
    code = "waitlist_invalid"


class OfferNotFound(WaitlistError):
    status = 404
    code = "offer_not_found"
    default_message = gettext_noop("This offer does not exist.")


class OfferExpired(WaitlistError):
    status = 410
    code = "offer_expired"
    default_message = gettext_noop("This offer has expired; the seat went to the next student on the list.")


class NoOffer(WaitlistError):
    status = 409
    code = "no_offer"
    default_message = gettext_noop("You have no seat on offer right now.")


class WaitlistNotOpen(WaitlistError):
    """Joining before the event is sold out through the queue (or its claim window closed).

    409 while claiming is open with seats left (claim instead), 425 before claiming opens,
    409 once the event has started or is cancelled.
    """

    status = 409
    code = "waitlist_not_open"
    default_message = gettext_noop(
        "The waiting list opens once the event is sold out or its claim window has closed. "
        "While seats are left, claim a ticket instead."
    )

    def __init__(self, message: str | None = None, *, too_early: bool = False, **extra) -> None:
        super().__init__(message, **extra)
        if too_early:
            self.status = 425


class InQueue(WaitlistError):
    """Joining while the student's own claim of the event still waits in the queue."""

    status = 409
    code = "in_queue"
    default_message = gettext_noop("Your claim for this event is still in the queue; wait for its answer.")
