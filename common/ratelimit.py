"""Every rate limit, in one place: named budgets, keyed per user when logged in and per client
address otherwise.

Hundreds of students reach us from the one public address of the campus NAT, so a per-address
limit on logged-in traffic would lock the whole campus out at the moment the war opens.
Logged-in requests are therefore counted per user; only anonymous ones per address (the real
client address: ``X-Forwarded-For`` is believed only from ``settings.TRUSTED_PROXIES``; IPv6
clients per /64).

Two kinds of budget (docs/CACHING.md, "Rate limits", says which is which and why):

- **exact** ones are counted in Redis with django-ratelimit's public ``get_usage``, the same
  count for every process: the claim (3 a minute per student), invalid door scans (a guard
  against guessing redeem codes), and the mails a form sends (verification links, password
  resets). While Redis cannot count (its breaker open, ``RATELIMIT_FAIL_OPEN``) they are counted
  in process memory instead: each process keeps the same budget, never blocking everyone nor
  letting anyone through unbounded.
- **per-process** ones are counted in process memory only: the general API budgets per user and
  per address and the queue-status polling. They guard a process's capacity, not a scarce
  thing; counted per process, a client gets at most one budget per process, and the read pays
  no Redis round trip.

Logins and sign-ups are limited in PostgreSQL (accounts/limits.py), with rules of their own.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import NamedTuple

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django_ratelimit.core import get_usage
from prometheus_client import Counter

from .redis import redis_available

logger = logging.getLogger("ticketwar.ratelimit")

RATELIMIT_LIMITED = Counter("ticketwar_ratelimit_limited", "Requests refused with 429, by budget.", ["budget"])
RATELIMIT_FALLBACK = Counter(
    "ticketwar_ratelimit_fallback",
    "Checks of an exact budget counted in process memory because Redis was unavailable, by budget.",
    ["budget"],
)


@dataclass(frozen=True)
class Budget:
    rate: str  # a setting's name ("RATELIMIT_CLAIM") or a rate ("3/h")
    exact: bool  # counted in Redis, the same for every process
    per_user: bool = True  # an anonymous request is counted on the per-address budget instead


BUDGETS = {
    "claim": Budget("RATELIMIT_CLAIM", exact=True),
    "checkin_invalid": Budget("RATELIMIT_CHECKIN_INVALID", exact=True),
    # Mails a form sends: verification links per account, password resets per address typed.
    "verify_resend": Budget("3/h", exact=True),
    "reset_mail": Budget("3/h", exact=True),
    "api_user": Budget("RATELIMIT_API_USER", exact=False),
    "api_anon": Budget("RATELIMIT_API_ANON", exact=False, per_user=False),
    "queue_status": Budget("RATELIMIT_QUEUE_STATUS", exact=False),
}


# --- client address --------------------------------------------------------------------------


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``text`` as an address (an IPv4-mapped IPv6 address as the IPv4 one), None if it is none."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def _is_trusted(address, networks) -> bool:
    return address is not None and any(address in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    """The address of the client, seen through trusted proxies only.

    ``X-Forwarded-For`` is read right to left, skipping the trusted proxies
    (``settings.TRUSTED_PROXIES``, parsed once by the settings); the first other address is the
    client. A request that does not come from a trusted proxy is taken at its socket address,
    whatever header it sends (otherwise anyone could pick their own key).
    """
    remote = request.META.get("REMOTE_ADDR", "") or "0.0.0.0"  # noqa: S104 - no socket address (unix socket)
    networks = settings.TRUSTED_PROXIES
    if not networks or not _is_trusted(_address(remote), networks):
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    for text in reversed(forwarded):
        address = _address(text)
        if address is None:
            return remote  # garbage in the header: fall back to the proxy's own address
        if not _is_trusted(address, networks):
            return str(address)
    return str(_address(forwarded[0])) if forwarded else remote


def client_network(request: HttpRequest) -> str:
    """What limits per client address count against: the IPv4 address, or the IPv6 /64.

    An IPv6 subscriber gets a whole /64 (usually more): keyed by the full address, one phone
    could take a new key for every request.
    """
    address = _address(client_ip(request))
    if address is None:
        return client_ip(request)
    if address.version == 6:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def ratelimit_key(request: HttpRequest) -> str:
    """``user:<id>`` when logged in, else ``ip:<client network>``."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_network(request)}"


# --- counting ----------------------------------------------------------------------------------


class Verdict(NamedTuple):
    limited: bool
    retry_after: int  # whole seconds until the current window has ended
    count: int
    limit: int


_RATE = re.compile(r"([0-9]+)/([0-9]*)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@functools.cache
def parse_rate(rate: str) -> tuple[int, int]:
    """``"3/m"`` as ``(3, 60)``, ``"1/3s"`` as ``(1, 3)``."""
    match = _RATE.fullmatch(rate.strip())
    if match is None:
        raise ValueError(f"a rate looks like 3/m or 100/15m, not {rate!r}")
    return int(match[1]), int(match[2] or 1) * _UNITS[match[3]]


def window_end(value: str, period: int, now: int) -> int:
    """The whole second at which the current window of ``value`` ends: fixed windows of
    ``period`` seconds, each key's edge shifted by a hash of it (so that not every student's
    budget comes back in the same second). django-ratelimit's windows are made the same way, so
    both kinds of budget answer with the same waits."""
    if period == 1:
        return now
    end = now - now % period + zlib.crc32(value.encode()) % period
    return end + period if end < now else end


def retry_after_seconds(time_left: int) -> int:
    """Seconds to wait, from ``window end - now`` in whole seconds; never too early.

    A window's last whole second still counts for it: the count starts again only once the clock
    is past it. Waiting ``time_left`` seconds could land a second early, and a student pressing
    "claim" the moment the button came back would be refused again.
    """
    return max(1, time_left + 1)


class ProcessCounters:
    """Fixed-window counters in this process's memory (the per-process budgets, and the exact
    ones while Redis cannot count)."""

    MAX_KEYS = 100_000  # past it, windows that have ended are dropped (bounded memory)

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}  # (budget, key) -> (window end, count)
        self._lock = threading.Lock()

    def hit(self, budget: str, value: str, rate: tuple[int, int], *, increment: bool = True) -> Verdict:
        limit, period = rate
        now = int(time.time())
        end = window_end(value, period, now)
        with self._lock:
            held_end, count = self._counts.get((budget, value), (end, 0))
            if held_end != end:
                count = 0
            if increment:
                count += 1
                if len(self._counts) >= self.MAX_KEYS:
                    self._counts = {k: v for k, v in self._counts.items() if v[0] >= now}
                self._counts[(budget, value)] = (end, count)
        limited = count > limit if increment else count >= limit
        return Verdict(limited, retry_after_seconds(end - now), count, limit)

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


process_counters = ProcessCounters()
_last_fallback_log = [0.0]


def _rate_of(budget: Budget) -> tuple[int, int]:
    return parse_rate(getattr(settings, budget.rate) if budget.rate.startswith("RATELIMIT_") else budget.rate)


def _redis_usage(request: HttpRequest, name: str, value: str, rate: tuple[int, int], increment: bool) -> dict | None:
    """django-ratelimit's count of ``value`` in Redis; None when Redis could not count it."""
    if not redis_available():
        return None  # its breaker is open: not even a refused connection to wait for
    return get_usage(request, group=f"tw.{name}", key=lambda _group, _request: value, rate=rate, increment=increment)


def _count(request: HttpRequest, name: str, *, key: str | None, increment: bool) -> Verdict | None:
    if not settings.RATELIMIT_ENABLE:
        return None
    budget = BUDGETS[name]
    user = getattr(request, "user", None)
    if key is None and budget.per_user and not (user is not None and user.is_authenticated):
        name, budget = "api_anon", BUDGETS["api_anon"]
    value = key or ratelimit_key(request)
    rate = _rate_of(budget)
    usage = _redis_usage(request, name, value, rate, increment) if budget.exact else None
    if usage is not None:
        limited = usage["should_limit"] if increment else usage["count"] >= usage["limit"]
        verdict = Verdict(limited, retry_after_seconds(int(usage["time_left"])), usage["count"], usage["limit"])
    else:
        if budget.exact:
            # Redis unreachable: each process keeps the budget rather than block everyone or nobody.
            RATELIMIT_FALLBACK.labels(budget=name).inc()
            if time.monotonic() - _last_fallback_log[0] > 10:
                _last_fallback_log[0] = time.monotonic()
                logger.warning("rate limits counted per process: redis unavailable")
        verdict = process_counters.hit(name, value, rate, increment=increment)
    if verdict.limited and increment:
        RATELIMIT_LIMITED.labels(budget=name).inc()
    return verdict


def check(request: HttpRequest, budget: str, *, key: str | None = None) -> Verdict | None:
    """Count this request against ``budget``; None when rate limiting is switched off.

    ``key``: what to count against instead of the user or the client address (an account, an
    e-mail address).
    """
    return _count(request, budget, key=key, increment=True)


def peek(request: HttpRequest, budget: str, *, key: str | None = None) -> Verdict | None:
    """Is ``budget`` used up for this request, without counting it? (A budget that only some
    outcomes spend, e.g. invalid door scans: ``peek`` before, ``check`` after such an outcome.)"""
    return _count(request, budget, key=key, increment=False)


# --- answers ---------------------------------------------------------------------------------


def too_many_requests_message(retry_after: int) -> str:
    """The sentence of a 429, for the JSON answer and the pages alike."""
    return _("Too many requests. Please wait %(seconds)s s before trying again.") % {"seconds": retry_after}


def too_many_requests(retry_after: int) -> JsonResponse:
    """``429 {error, retry_after}`` with the same number of seconds in ``Retry-After``."""
    response = JsonResponse(
        {
            "error": too_many_requests_message(retry_after),
            "code": "rate_limited",
            "retry_after": retry_after,
        },
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


def rate_limited(budget: str, *, page: Callable | None = None, answer: Callable | None = None) -> Callable:
    """View decorator: count each request against ``budget``; 429 once it is used up.

    The answer is JSON, or for a form posted without JavaScript the page that
    ``page(request, retry_after, *args, **kwargs)`` renders (with its 429 status and
    ``Retry-After``): the form and the API count against the same budget. Once the budget is
    used up, ``answer(request, retry_after, *args, **kwargs)`` is asked first: a truer answer
    than the 429 when it has one (the claim's "you already hold a ticket", or a form's redirect
    back to its page), sent as it is; None leaves the 429.
    """
    if budget not in BUDGETS:
        raise ValueError(f"unknown rate-limit budget {budget!r}")

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            verdict = check(request, budget)
            if verdict is not None and verdict.limited:
                if answer is not None:
                    response = answer(request, verdict.retry_after, *args, **kwargs)
                    if response is not None:
                        return response
                if page is None:
                    return too_many_requests(verdict.retry_after)
                response = page(request, verdict.retry_after, *args, **kwargs)
                response.status_code = 429
                response["Retry-After"] = str(verdict.retry_after)
                return response
            return view(request, *args, **kwargs)

        wrapper.rate_limit_budget = budget  # the API middleware leaves such views alone
        return wrapper

    return decorator


def rate_limit_exempt(view: Callable) -> Callable:
    """Mark a /api/ view as outside the general API budget (use sparingly, say why)."""
    view.rate_limit_budget = None
    return view


class ApiRateLimitMiddleware:
    """The general budgets for every /api/ view that has none of its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        if hasattr(view_func, "rate_limit_budget"):
            return None  # limited by its own decorator, or exempt
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_staff:
            return None
        budget = "queue_status" if request.path.startswith("/api/queue/") else "api_user"
        verdict = check(request, budget)
        if verdict is not None and verdict.limited:
            return too_many_requests(verdict.retry_after)
        return None
