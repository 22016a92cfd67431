"""Refusals of the draw's steps (the organiser's, in the admin), each a human sentence."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from common.errors import DomainError


class DrawError(DomainError):
    status = 409
    code = "draw_invalid"
    default_message = gettext_noop("The draw cannot take this step now.")


class NotShuffled(DrawError):
    code = "draw_not_shuffled"
    default_message = gettext_noop("This event serves claims first come, first served: it has no draw.")


class NotFrozen(DrawError):
    code = "draw_not_frozen"
    default_message = gettext_noop(
        "The pre-queue is not frozen yet: that happens when the claim window opens. The public random "
        "value can only be entered after that."
    )


class BeaconNotDue(DrawError):
    code = "draw_beacon_not_due"
    default_message = gettext_noop("The public random value named for this draw is not published yet.")


class BeaconAlreadyEntered(DrawError):
    code = "draw_beacon_entered"
    default_message = gettext_noop("The public random value of this draw has already been entered; it cannot change.")


class BadBeacon(DrawError):
    status = 400
    code = "draw_bad_beacon"
    default_message = gettext_noop(
        "Enter the value exactly as published: 1 to 256 characters, no line breaks or control characters."
    )


class BeaconSourceMissing(DrawError):
    status = 400
    code = "draw_beacon_source_missing"
    default_message = gettext_noop("Say where the value was published (its source).")
