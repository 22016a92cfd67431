"""Brute-force guard of the door check-in: redeem codes are short enough to guess at.

Only ``invalid`` answers count, per staff user (``RATELIMIT_CHECKIN_INVALID``, "30/m"): a
busy door scanning hundreds of genuine tickets a minute is never slowed down, while someone
typing guesses is stopped. The shared budgets of ``common.ratelimit`` count every
request, so this one peeks before the check and counts after it, with the same key and store.
While Redis is unavailable (its circuit breaker open) the guard fails open: the door must
keep admitting people, and a few minutes of unthrottled guessing against 25^8 codes is
harmless.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from common.ratelimit import ratelimit_key, retry_after_seconds
from common.redis import redis_available

logger = logging.getLogger("ticketwar.tickets")

GROUP = "tw.checkin_invalid"


def _usage(request: HttpRequest, *, increment: bool) -> dict | None:
    if not getattr(settings, "RATELIMIT_ENABLE", True) or not redis_available():
        return None
    rate = getattr(settings, "RATELIMIT_CHECKIN_INVALID", "30/m")
    usage = get_usage(request, group=GROUP, key=ratelimit_key, rate=rate, increment=increment)
    if usage is None or (usage["limit"] == 0 and usage["time_left"] == -1):
        # django-ratelimit's answers when the cache could not be read or written.
        logger.warning("check-in rate limit unavailable (cache down); allowing the scan")
        return None
    return usage


def checkin_retry_after(request: HttpRequest) -> int | None:
    """Seconds to wait if this staff user used up their invalid scans, else None (no write)."""
    usage = _usage(request, increment=False)
    if usage is None or usage["count"] < usage["limit"]:
        return None
    return retry_after_seconds(int(usage["time_left"]))


def checkin_count_invalid(request: HttpRequest) -> None:
    """Count one ``invalid`` answer against the staff user."""
    _usage(request, increment=True)
