"""A queue position said honestly against the seats left: the waiting page's outlook.

A place within the seats left is ``likely``; within the seats left plus the give-backs expected
before the event (``WAITLIST_EXPECTED_GIVEBACK_RATE`` of the capacity) ``uncertain``; beyond both,
the claim will end on the ``waiting_list``. The waiting page (its first render and the status
API) and the websocket consumer (as the position and the seats move) say the same.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.utils.translation import ngettext


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
