"""Refusals of event writes, each a human sentence (mapped to a status by common.errors)."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from common.errors import DomainError


class EventError(DomainError):
    status = 400
    code = "event_invalid"
    default_message = gettext_noop("This event cannot be saved.")


class EventNotFound(EventError):
    status = 404
    code = "event_not_found"
    default_message = gettext_noop("This event does not exist.")


class CapacityBelowIssued(EventError):
    status = 409
    code = "capacity_below_issued"
    default_message = gettext_noop("The capacity cannot be lower than the tickets already issued.")


class InvalidClaimWindow(EventError):
    code = "invalid_claim_window"
    default_message = gettext_noop(
        "The claim window must open before it closes, and close no later than the event starts."
    )


class OpeningModeLocked(EventError):
    status = 409
    code = "opening_mode_locked"
    default_message = gettext_noop(
        "The opening mode cannot change once students wait in the pre-queue: their claims would "
        "never be drawn nor decided."
    )


class DrawSettingsInvalid(EventError):
    code = "draw_settings_invalid"
    default_message = gettext_noop(
        "A shuffled opening needs the public random value's source and the time it is published, "
        "after the claim window opens."
    )


class DrawLocked(EventError):
    status = 409
    code = "draw_locked"
    default_message = gettext_noop(
        "The pre-queue is frozen: the opening mode and the public random value's source and time can no longer change."
    )


class SlugTaken(EventError):
    status = 409
    code = "slug_taken"
    default_message = gettext_noop("An event with this slug already exists.")
