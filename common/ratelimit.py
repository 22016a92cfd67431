"""Rate limits: named budgets, keyed per user when logged in and per client IP otherwise.

Hundreds of students reach us from the one public address of the campus NAT, so a per-IP
limit on logged-in traffic would lock the whole campus out at the moment the war opens.
Logged-in requests are therefore counted per user; only anonymous ones per IP (the real
client IP: ``X-Forwarded-For`` is believed only from ``settings.TRUSTED_PROXIES``; IPv6
clients per /64).

Budgets (rates are settings, "N/s|m|h|d"):
- ``claim``        RATELIMIT_CLAIM        claim attempts per student (``@rate_limited("claim")``)
- ``api_user``     RATELIMIT_API_USER     any other /api/ request of a logged-in user
- ``api_anon``     RATELIMIT_API_ANON     any /api/ request without a login, per IP (not the
  cached public event reads: ``rate_limit_exempt``, events/views.py)
- ``queue_status`` RATELIMIT_QUEUE_STATUS polling /api/queue/<id>/ (the page polls when its
  websocket is down); websocket messages are not limited.
Staff are not limited by the general API budget (the door scans and the dashboard polls).

Counters live in Redis (django-ratelimit, fixed windows). When Redis is unavailable the limit
is kept *per process* in memory rather than blocking everyone or nobody: see docs/CACHING.md.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django_ratelimit.core import ALL, EXPIRATION_FUDGE, _get_window, _make_cache_key, _split_rate
from prometheus_client import Counter

from .redis import get_client, redis_available

logger = logging.getLogger("ticketwar.ratelimit")

RATELIMIT_LIMITED = Counter("ticketwar_ratelimit_limited", "Requests refused with 429, by budget.", ["budget"])
RATELIMIT_FALLBACK = Counter(
    "ticketwar_ratelimit_fallback",
    "Rate-limit checks counted in process memory because Redis was unavailable, by budget.",
    ["budget"],
)

BUDGET_SETTINGS = {
    "claim": "RATELIMIT_CLAIM",
    "api_user": "RATELIMIT_API_USER",
    "api_anon": "RATELIMIT_API_ANON",
    "queue_status": "RATELIMIT_QUEUE_STATUS",
}
# Budgets counted per user; an anonymous request falls back to the per-IP anonymous budget.
PER_USER_BUDGETS = {"claim", "api_user", "queue_status"}


# --- client IP -----------------------------------------------------------------------------


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


def ratelimit_key(group: str, request: HttpRequest) -> str:
    """django-ratelimit key function: ``user:<id>`` when logged in, else ``ip:<client network>``."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_network(request)}"


# --- checking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    limited: bool
    retry_after: int  # whole seconds until the current window has ended
    count: int
    limit: int


def retry_after_seconds(time_left: int) -> int:
    """Seconds to wait, from django-ratelimit's ``window - int(now)``; never too early.

    Its window ``w`` is a whole second that still counts for itself: the counter changes only
    once ``int(now) > w``, i.e. at ``w + 1``. Waiting ``time_left`` seconds would land up to a
    second early, and a student pressing "claim" the moment the button came back would be
    refused again.
    """
    return max(1, time_left + 1)


class _MemoryLimiter:
    """Per-process fixed windows, used only while Redis is unavailable."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, group: str, value: str, rate: str) -> Verdict:
        limit, period = _split_rate(rate)
        window = _get_window(value, period)
        with self._lock:
            now = int(time.time())
            if len(self._counts) > 50_000:  # drop finished windows; bounded memory
                self._counts = {k: v for k, v in self._counts.items() if k[2] > now}
            count = self._counts.get((group, value, window), 0) + 1
            self._counts[(group, value, window)] = count
        return Verdict(count > limit, retry_after_seconds(window - now), count, limit)

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


memory_limiter = _MemoryLimiter()
_last_fallback_log = [0.0]


def _budget_for(budget: str, request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if budget in PER_USER_BUDGETS and not (user is not None and user.is_authenticated):
        return "api_anon"
    return budget


def check(request: HttpRequest, budget: str) -> Verdict | None:
    """Count this request against ``budget``; None when rate limiting is switched off."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return None
    budget = _budget_for(budget, request)
    rate = getattr(settings, BUDGET_SETTINGS[budget])
    group = f"tw.{budget}"
    usage = None
    if redis_available():
        usage = _count_in_redis(group, ratelimit_key(group, request), rate)
    if usage is None:
        # Redis unreachable: count in memory (per process) rather than block everyone or nobody.
        RATELIMIT_FALLBACK.labels(budget=budget).inc()
        if time.monotonic() - _last_fallback_log[0] > 10:
            _last_fallback_log[0] = time.monotonic()
            logger.warning("rate limits counted per process: redis unavailable")
        verdict = memory_limiter.hit(group, ratelimit_key(group, request), rate)
    else:
        retry_after = retry_after_seconds(int(usage["time_left"]))
        verdict = Verdict(bool(usage["should_limit"]), retry_after, usage["count"], usage["limit"])
    if verdict.limited:
        RATELIMIT_LIMITED.labels(budget=budget).inc()
    return verdict


def too_many_requests_message(retry_after: int) -> str:
    """The sentence of a 429, for the JSON answer and the pages alike."""
    return _("Too many requests. Please wait %(seconds)s s before trying again.") % {"seconds": retry_after}


# Count a hit and start the window's expiry in one round trip (django-ratelimit's get_usage makes
# two: ADD, then INCR, itself a script). Same keys and windows as django-ratelimit.
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
_hit_script = None


def _count_in_redis(group: str, value: str, rate: str) -> dict | None:
    """django-ratelimit's usage dict for one more hit, or None if Redis could not count it."""
    global _hit_script
    limit, period = _split_rate(rate)
    window = _get_window(value, period)
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    key = cache.make_key(_make_cache_key(group, window, rate, value, ALL))
    try:
        if _hit_script is None:
            _hit_script = get_client().register_script(_HIT_SCRIPT)
        count = int(_hit_script(keys=[key], args=[period + EXPIRATION_FUDGE]))
    except Exception:  # unreachable (the breaker records it): counted in process memory instead
        return None
    return {"count": count, "limit": limit, "should_limit": count > limit, "time_left": window - int(time.time())}


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
    if budget not in BUDGET_SETTINGS:
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


def ratelimited_view(request: HttpRequest, exception: Exception) -> HttpResponse:
    """RATELIMIT_VIEW: django-ratelimit's own ``Ratelimited`` becomes a 429, not a 403."""
    return too_many_requests(60)


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
