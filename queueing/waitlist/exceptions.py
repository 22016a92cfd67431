"""Refusals of the waiting list, each a human sentence with its status code."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from ticketwar.lib.errors import DomainError


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


class ConfirmationNotOpen(WaitlistError):
    status = 409
    code = "confirmation_closed"
    default_message = gettext_noop("There is no attendance confirmation open for this ticket.")


class DeadlineInPast(WaitlistError):
    code = "deadline_in_past"
    default_message = gettext_noop("The deadline must be in the future and before the event starts.")
