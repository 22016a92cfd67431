"""Event pages (HTML) and the public event API (JSON). Thin: cached selectors do the reading."""

from __future__ import annotations

from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from common.api import json_api
from common.errors import json_error
from common.ratelimit import rate_limit_exempt
from tickets.selectors import active_ticket_of

from . import cache as events_cache
from .serializers import event_public_dict


# The public event reads are outside the per-address API budget: the event page polls them
# every 5 s for every visitor, and a thousand anonymous visitors share the campus NAT address. They
# are protected by their cost instead: cached rows (a second in process, ten minutes in Redis), no
# query on a hit, an unknown slug cached as unknown; the same work as the event page itself, which
# has never had a per-address limit (docs/CACHING.md, "Rate limits").
@rate_limit_exempt
@never_cache
@json_api(("GET", "HEAD"))
def api_event_list(request):
    return JsonResponse(events_cache.cached_events_payload(), safe=False)


@rate_limit_exempt
@never_cache
@json_api(("GET", "HEAD"))
def api_event_detail(request, slug: str):
    payload = events_cache.cached_event_payload(slug)
    if payload is None:
        return json_error(404, _("This event does not exist."))
    return JsonResponse(payload)


@require_GET
def event_list(request):
    events = events_cache.cached_event_list()
    now = timezone.now()
    for event in events:
        # The cached row is a fresh copy per request; its seat count comes from the 5 s cache.
        event.remaining = events_cache.cached_remaining(event.pk)
    rows = [{"event": event, "state": event.claim_state(now)} for event in events]
    return render(request, "events/list.html", {"rows": rows})


@require_GET
def event_detail(request, slug: str):
    return render_event_page(request, slug)


def render_event_page(request, slug: str, *, refusal: str = "", status: int = 200):
    """The event page; ``refusal`` is the sentence of a claim refused without JavaScript.

    A student who holds a ticket for the event sees it linked instead of the claim button; an
    unverified one sees why they cannot claim (and no button that would only fail).
    """
    event = events_cache.cached_event(slug)
    if event is None:
        raise Http404(_("This event does not exist."))
    now = timezone.now()
    event.remaining = events_cache.cached_remaining(event.pk)  # a per-request copy of the cached row
    payload = event_public_dict(event, now=now)
    detail_path = reverse("events:detail", args=[event.slug])
    user = request.user
    my_ticket = None
    if user.is_authenticated and user.is_student:
        my_ticket = active_ticket_of(event_id=event.pk, user_id=user.pk)
    can_claim = not (user.is_authenticated and (not user.is_student or not user.is_verified)) and my_ticket is None
    config = {
        "slug": event.slug,
        "api_url": reverse("events:api-detail", args=[event.slug]),
        "claim_url": reverse("queueing:api-claim", args=[event.slug]),
        "queue_url": "/queue/{queue_id}/",
        "login_url": f"{reverse('accounts:login')}?next={detail_path}",
        "server_now": now.isoformat(),
        # A shuffled opening takes claims before the window opens, into the pre-queue.
        "prequeue_open": event.prequeue_open,
        "can_claim": can_claim,
        "event": payload,
        "messages": {
            "opens_in": _("Claiming opens in"),
            "open": _("Claiming is open"),
            "sold_out": _("Sold out"),
            "closed": _("The claim window has closed"),
            "cancelled": _("This event has been cancelled"),
            "not_open": _("Not open yet"),
            "claiming": _("Sending your claim…"),
            "have_ticket": _("See your ticket"),
            "log_in": _("Log in to claim"),
            "retry_in": _("You can try again in"),
            "network": _("The connection failed. Please try again."),
            "seconds": _("s"),
        },
    }
    context = {
        "event": event,
        "state": payload["status"],
        "config": config,
        "my_ticket": my_ticket,
        "can_claim": can_claim,
        "refusal": refusal,
    }
    return render(request, "events/detail.html", context, status=status)
