"""Brute-force guard of the door check-in: redeem codes are short enough to guess at.

Only ``invalid`` answers count, per staff user: a busy door scanning hundreds of genuine
tickets a minute is never slowed down, while someone typing guesses is stopped after
``CHECKIN_INVALID_RATE``. Counts live in the cache (Redis); when Redis is unreachable the
guard fails open so the door keeps working, and says so in the log.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

logger = logging.getLogger("ticketwar.tickets")

GROUP = "tickets.checkin.invalid"


def _rate() -> str:
    return getattr(settings, "CHECKIN_INVALID_RATE", "30/m")


def _usage(request: HttpRequest, *, increment: bool) -> dict | None:
    usage = get_usage(request, group=GROUP, key="user", rate=_rate(), increment=increment)
    if usage is not None and usage["limit"] == 0 and usage["time_left"] == -1:
        # django-ratelimit's answer when the cache could not be read or written.
        logger.warning("check-in rate limit unavailable (cache down); allowing the scan")
        return None
    return usage


def checkin_retry_after(request: HttpRequest) -> int | None:
    """Seconds to wait if this staff user used up their invalid scans, else None (no write)."""
    usage = _usage(request, increment=False)
    if usage is None or usage["count"] < usage["limit"]:
        return None
    return max(1, int(usage["time_left"]))


def checkin_count_invalid(request: HttpRequest) -> None:
    """Count one ``invalid`` answer against the staff user."""
    _usage(request, increment=True)
