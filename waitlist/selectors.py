"""Reads of the waiting list: a student's place, the figures of the stock-aware waiting page."""

from __future__ import annotations

import math
import uuid
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from .models import WaitlistEntry


def waitlist_position(entry: WaitlistEntry) -> int | None:
    """1 + students waiting ahead of this one (served by waitlist_waiting_idx); None unless waiting."""
    if entry.status != WaitlistEntry.Status.WAITING:
        return None
    return (
        WaitlistEntry.objects.filter(
            event_id=entry.event_id, status=WaitlistEntry.Status.WAITING, id__lt=entry.id
        ).count()
        + 1
    )


def waitlist_place(entry: WaitlistEntry, *, waiting_ahead: int | None = None) -> dict[str, Any]:
    """``{id, status, position, offer_expires_at, url}`` as the student sees it.

    ``waiting_ahead``: the students waiting ahead when the caller has counted them already.
    """
    if waiting_ahead is None:
        position = waitlist_position(entry)
    else:
        position = waiting_ahead + 1 if entry.status == WaitlistEntry.Status.WAITING else None
    return {
        "id": str(entry.public_id),
        "status": entry.status,
        "position": position,
        "offer_expires_at": entry.offer_expires_at.isoformat() if entry.offer_expires_at else None,
        "url": reverse("waitlist:offer", args=[entry.public_id]),
    }


def waitlist_entry_of(*, event_id: int, user_id: int) -> WaitlistEntry | None:
    return WaitlistEntry.objects.filter(event_id=event_id, user_id=user_id).first()


def waitlist_offer_of_owner(*, public_id, user_id: int) -> WaitlistEntry | None:
    try:
        public_id = uuid.UUID(str(public_id))
    except (ValueError, TypeError, AttributeError):
        return None
    return WaitlistEntry.objects.select_related("event", "ticket").filter(public_id=public_id, user_id=user_id).first()


def expected_give_backs(*, capacity: int) -> int:
    """Seats we expect to come back before the event (WAITLIST_EXPECTED_GIVEBACK_RATE of capacity)."""
    return math.ceil(capacity * settings.WAITLIST_EXPECTED_GIVEBACK_RATE)


def outlook_of(*, position: int | None, seats_left: int, capacity: int) -> str | None:
    """``likely`` (position within the seats left), ``uncertain`` (within seats left plus the
    expected give-backs) or ``waiting_list`` (clearly beyond both); None without a position."""
    if position is None:
        return None
    if position <= seats_left:
        return "likely"
    if position <= seats_left + expected_give_backs(capacity=capacity):
        return "uncertain"
    return "waiting_list"


def outlook_sentences(seats_left: int) -> dict[str, str]:
    """The sentence of each outlook for this number of seats, ``%(pos)s``/``%(seats)s`` unfilled.

    The waiting page gets them for 1 and for 2 seats (the plural forms) and fills them in as the
    position and the seats left arrive by websocket.
    """
    return {
        "likely": ngettext(
            "You are number %(pos)s for %(seats)s seat left.",
            "You are number %(pos)s for %(seats)s seats left.",
            seats_left,
        ),
        "uncertain": ngettext(
            "You are number %(pos)s for %(seats)s seat left: a seat depends on others giving theirs back.",
            "You are number %(pos)s for %(seats)s seats left: a seat depends on others giving theirs back.",
            seats_left,
        ),
        "waiting_list": ngettext(
            "You are number %(pos)s for %(seats)s seat: you will be on the waiting list.",
            "You are number %(pos)s for %(seats)s seats: you will be on the waiting list.",
            seats_left,
        ),
    }


def seat_outlook(*, position: int | None, seats_left: int, capacity: int) -> dict[str, Any]:
    """Seats left against a queue position, said honestly (``outlook_of`` and its sentence)."""
    give_backs = expected_give_backs(capacity=capacity)
    outlook = outlook_of(position=position, seats_left=seats_left, capacity=capacity)
    message = None
    if outlook is not None:
        message = outlook_sentences(seats_left)[outlook] % {"pos": position, "seats": seats_left}
    return {
        "seats_left": seats_left,
        "expected_give_backs": give_backs,
        "outlook": outlook,
        "outlook_message": message,
    }


def offer_seconds_left(entry: WaitlistEntry) -> int:
    if entry.status != WaitlistEntry.Status.OFFERED or entry.offer_expires_at is None:
        return 0
    return max(0, int((entry.offer_expires_at - timezone.now()).total_seconds()))
