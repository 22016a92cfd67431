"""Refusals of the ticket path, each a human sentence with its status code."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from common.errors import DomainError


class TicketError(DomainError):
    pass


class SoldOut(TicketError):
    status = 410
    code = "sold_out"
    default_message = gettext_noop("All tickets for this event have been claimed.")


class AlreadyHasTicket(TicketError):
    status = 409
    code = "already_has_ticket"
    default_message = gettext_noop("You already have a ticket for this event.")


class ClaimNotOpen(TicketError):
    status = 425
    code = "not_open"
    default_message = gettext_noop("Claiming has not opened yet.")


class ClaimClosed(TicketError):
    status = 410
    code = "claim_closed"
    default_message = gettext_noop("The claim window for this event has closed.")


class EventUnavailable(TicketError):
    status = 404
    code = "event_unavailable"
    default_message = gettext_noop("This event is not available.")


class NotEligible(TicketError):
    status = 403
    code = "not_eligible"
    default_message = gettext_noop("Only verified students can claim tickets. Please verify your campus e-mail first.")


class TicketNotFound(TicketError):
    status = 404
    code = "ticket_not_found"
    default_message = gettext_noop("This ticket does not exist.")


class TicketAlreadyReturned(TicketError):
    status = 409
    code = "ticket_returned"
    default_message = gettext_noop("This ticket has already been given back.")


class TicketAlreadyUsed(TicketError):
    status = 409
    code = "ticket_used"
    default_message = gettext_noop("This ticket has already been used at the door, so it can no longer be given back.")


class ReturnClosed(TicketError):
    status = 409
    code = "return_closed"
    default_message = gettext_noop("The event has started; tickets can no longer be given back.")


class CheckInRateLimited(TicketError):
    status = 429
    code = "rate_limited"
    default_message = gettext_noop("Too many invalid codes in a short time. Please wait before scanning again.")


class CheckInEventUnknown(TicketError):
    status = 404
    code = "unknown_event"
    default_message = gettext_noop("There is no published event with this slug: choose the event at this door again.")


class OutsideDoorWindow(TicketError):
    status = 409
    code = "outside_door_window"
    default_message = gettext_noop("The door of this event is not open now.")


class CheckInBadRequest(TicketError):
    status = 400
    code = "bad_request"
    default_message = gettext_noop('Send a JSON object like {"code": "ABCD-EFGH", "event": "<event slug>"}.')


class CheckInEventRequired(CheckInBadRequest):
    code = "event_required"
    default_message = gettext_noop("Choose the event at this door: the check-in needs the event's slug.")


class ConfirmationNotOpen(TicketError):
    status = 409
    code = "confirmation_closed"
    default_message = gettext_noop("There is no attendance confirmation open for this ticket.")


class DeadlineInPast(TicketError):
    status = 400
    code = "deadline_in_past"
    default_message = gettext_noop("The deadline must be in the future and before the event starts.")
