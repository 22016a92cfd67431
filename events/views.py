"""The event list (HTML) and the public event API (JSON). Thin: cached selectors do the reading.
(An event's own page is the claim's: claims/views.py.)"""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from common.api import json_api
from common.errors import json_error
from common.ratelimit import rate_limit_exempt

from . import cache as events_cache


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
