"""Refusals of the ticket path, each a human sentence with its status code."""

from __future__ import annotations

from ticketwar.lib.errors import DomainError


class TicketError(DomainError):
    pass


class SoldOut(TicketError):
    status = 410
    code = "sold_out"
    default_message = "All tickets for this event have been claimed."


class AlreadyHasTicket(TicketError):
    status = 409
    code = "already_has_ticket"
    default_message = "You already have a ticket for this event."


class ClaimNotOpen(TicketError):
    status = 425
    code = "not_open"
    default_message = "Claiming has not opened yet."


class ClaimClosed(TicketError):
    status = 410
    code = "claim_closed"
    default_message = "The claim window for this event has closed."


class EventUnavailable(TicketError):
    status = 404
    code = "event_unavailable"
    default_message = "This event is not available."


class NotEligible(TicketError):
    status = 403
    code = "not_eligible"
    default_message = "Only verified students can claim tickets. Please verify your campus e-mail first."


class TicketNotFound(TicketError):
    status = 404
    code = "ticket_not_found"
    default_message = "This ticket does not exist."


class TicketAlreadyReturned(TicketError):
    status = 409
    code = "ticket_returned"
    default_message = "This ticket has already been given back."


class TicketAlreadyUsed(TicketError):
    status = 409
    code = "ticket_used"
    default_message = "This ticket has already been used at the door, so it can no longer be given back."


class ReturnClosed(TicketError):
    status = 409
    code = "return_closed"
    default_message = "The event has started; tickets can no longer be given back."


class CheckInRateLimited(TicketError):
    status = 429
    code = "rate_limited"
    default_message = "Too many invalid codes in a short time. Please wait before scanning again."


class CheckInEventUnknown(TicketError):
    status = 404
    code = "unknown_event"
    default_message = "There is no published event with this slug: choose the event at this door again."


class OutsideDoorWindow(TicketError):
    status = 409
    code = "outside_door_window"
    default_message = "The door of this event is not open now."


class CheckInBadRequest(TicketError):
    status = 400
    code = "bad_request"
    default_message = 'Send a JSON object like {"code": "ABCD-EFGH", "event": "<event slug>"}.'


class CheckInEventRequired(CheckInBadRequest):
    code = "event_required"
    default_message = "Choose the event at this door: the check-in needs the event's slug."
