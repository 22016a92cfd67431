"""Event pages (HTML) and the public event API (JSON). Thin: cached selectors do the reading."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from common.api import json_api
from common.errors import json_error
from common.ratelimit import rate_limit_exempt
from queueing.selectors import live_entry_of
from tickets.selectors import active_ticket_of
from waitlist.models import WaitlistEntry
from waitlist.selectors import waitlist_entry_of, waitlist_place

from . import cache as events_cache
from .models import Event
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


# The tag of a sentence the page's own forms (claim, waiting list) leave for it: said once, in the
# claim box, after the redirect that follows their POST.
EVENT_NOTE = "event-note"


def back_to_event(request, slug: str, note: str = "") -> HttpResponse:
    """Post/redirect/get for the event page's forms: back to the page, which says ``note`` once
    (a reload neither says it again nor posts the form again)."""
    if note:
        messages.error(request, note, extra_tags=EVENT_NOTE)
    return redirect("events:detail", slug=slug)


def _notes_for_the_claim_box(request) -> tuple[str, list]:
    """The sentence the page's forms left (``back_to_event``), and every other flash message."""
    notes, others = [], []
    for message in messages.get_messages(request):
        (notes if EVENT_NOTE in message.tags.split() else others).append(message)
    return " ".join(str(note) for note in notes), others


WAITLIST_STATES = (Event.ClaimState.SOLD_OUT, Event.ClaimState.CLOSED)


def render_event_page(request, slug: str):
    """The event page.

    A student who holds a ticket for the event sees it linked instead of the claim button; an
    unverified one sees why they cannot claim (and no button that would only fail); a visitor
    who is not logged in, the way to log in and come back. While the event is sold out or its
    claim window closed (until it starts) the waiting list says what a student can still do:
    join it, or where they stand on it.
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
    # The waiting list is there for whoever may still want a seat, until the event starts.
    waitlist_box = can_claim and now < event.starts_at and payload["status"] != Event.ClaimState.CANCELLED
    waitlist_open = waitlist_box and payload["status"] in WAITLIST_STATES
    waitlist = in_queue_url = None
    if waitlist_open and user.is_authenticated:
        waitlist, in_queue_url = _waitlist_standing(event_id=event.pk, user_id=user.pk)
    note, other_messages = _notes_for_the_claim_box(request)
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
            "too_many": _("Too many claim attempts in a short time."),
            "retry_in": _("You can try again in"),
            "network": _("The connection failed. Please try again."),
            "seconds": _("s"),
            # Filled in by the script when a refused claim put the student on the waiting list.
            "waitlist_place": _("You are number %(n)s on the waiting list."),
        },
    }
    context = {
        "event": event,
        "state": payload["status"],
        "config": config,
        "my_ticket": my_ticket,
        "can_claim": can_claim,
        "note": note,
        "messages": other_messages,
        "waitlist_box": waitlist_box,
        "waitlist_open": waitlist_open,
        "waitlist": waitlist,
        "in_queue_url": in_queue_url,
        "offer_minutes": settings.WAITLIST_OFFER_MINUTES,
    }
    return render(request, "events/detail.html", context)


def _waitlist_standing(*, event_id: int, user_id: int) -> tuple[dict | None, str | None]:
    """The student's place on the event's waiting list (``waitlist_place``, None when not on it),
    or, while a claim of theirs still waits in the queue, that claim's waiting page."""
    entry = waitlist_entry_of(event_id=event_id, user_id=user_id)
    if entry is not None and entry.status != WaitlistEntry.Status.LEFT:
        return waitlist_place(entry), None
    live = live_entry_of(user_id=user_id, event_id=event_id)
    if live is not None:
        return None, reverse("queueing:waiting", args=[live.public_id])
    return None, None
