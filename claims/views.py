"""The student's claim, page by page: the event page, the claim (API and no-JavaScript form), the
waiting page with its status API, and joining the waiting list. Thin: ``claims.services`` and the
claim policy (``tickets.policy``) decide, fed by the student's standing (one query)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from common.api import json_api
from common.body import json_object
from common.errors import DomainError, error_response, json_error
from common.ratelimit import rate_limited, too_many_requests_message
from events import cache as events_cache
from events.models import Event
from events.serializers import event_public_dict
from queueing import selectors as queue_selectors
from queueing.outlook import outlook_sentences, seat_outlook
from tickets.exceptions import AlreadyHasTicket, EventUnavailable
from tickets.policy import Standing, claim_verdict
from waitlist import selectors as waitlist_selectors
from waitlist.models import WaitlistEntry
from waitlist.services import waitlist_set_joined
from waitlist.standing import standing_of

from . import services

# --- the event page ------------------------------------------------------------------------

# The tag of a sentence the page's own forms (claim, waiting list) leave for it: said once, in the
# claim box, after the redirect that follows their POST.
EVENT_NOTE = "event-note"
WAITLIST_STATES = (Event.ClaimState.SOLD_OUT, Event.ClaimState.CLOSED)


def back_to_event(request, slug: str, note: str = "") -> HttpResponse:
    """Post/redirect/get for the event page's forms: back to the page, which says ``note`` once
    (a reload neither says it again nor posts the form again)."""
    if note:
        messages.error(request, note, extra_tags=EVENT_NOTE)
    return redirect("claims:event", slug=slug)


def _notes_for_the_claim_box(request) -> tuple[str, list]:
    """The sentence the page's forms left (``back_to_event``), and every other flash message."""
    notes, others = [], []
    for message in messages.get_messages(request):
        (notes if EVENT_NOTE in message.tags.split() else others).append(message)
    return " ".join(str(note) for note in notes), others


@require_GET
def event_page(request, slug: str):
    """The event page: the claim box and the waiting list, as the claim policy answers this visitor.

    A student who holds a ticket for the event sees it linked instead of the claim button; an
    unverified one sees why they cannot claim (and no button that would only fail); a visitor
    who is not logged in, the way to log in and come back. While the event is sold out or its
    claim window closed (until it starts) the waiting list says what a student can still do:
    join it, or where they stand on it (or that their claim still waits in the queue).
    """
    event = events_cache.cached_event(slug)
    if event is None:
        raise Http404(_("This event does not exist."))
    now = timezone.now()
    event.remaining = events_cache.cached_remaining(event.pk)  # a per-request copy of the cached row
    payload = event_public_dict(event, now=now)
    detail_path = reverse("claims:event", args=[event.slug])
    user = request.user
    # Only a student has anything to read (staff and visitors are answered without a query).
    standing = standing_of(user=user, event=event) if user.is_authenticated and user.is_student else Standing(user)
    verdict = claim_verdict(standing, event=event, now=now)
    # The claim button is there unless the student's own standing refuses it (the window moves
    # on the page by itself); a visitor gets the way to log in instead.
    can_claim = not user.is_authenticated or not verdict.about_the_student
    # The waiting list is there for whoever may still want a seat, until the event starts.
    waitlist_box = can_claim and now < event.starts_at and payload["status"] != Event.ClaimState.CANCELLED
    waitlist_open = waitlist_box and payload["status"] in WAITLIST_STATES
    waitlist = in_queue_url = None
    if waitlist_open and standing.waitlist is not None and standing.waitlist.status != WaitlistEntry.Status.LEFT:
        waitlist = waitlist_selectors.waitlist_place(standing.waitlist)
    elif waitlist_open and verdict.entry is not None:
        in_queue_url = reverse("claims:waiting", args=[verdict.entry.public_id])
    note, other_messages = _notes_for_the_claim_box(request)
    config = {
        "slug": event.slug,
        "api_url": reverse("events:api-detail", args=[event.slug]),
        "claim_url": reverse("claims:api-claim", args=[event.slug]),
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
        "my_ticket": standing.ticket,
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


# --- the claim -----------------------------------------------------------------------------


def _held_ticket_refusal(request, slug: str):
    """``AlreadyHasTicket`` (with the ticket) when the student holds an active ticket of the
    event, else None. Asked only over the claim budget, where it outranks the 429: a student
    claiming from a second tab after the first one won is told about their ticket, not to wait.
    Rare and cheap (the cached event, the student's standing)."""
    user = request.user
    if not (user.is_authenticated and user.is_student):
        return None
    event = events_cache.cached_event(slug)
    if event is None:
        return None
    verdict = claim_verdict(standing_of(user=user, event=event), event=event, now=timezone.now())
    return verdict.refusal if isinstance(verdict.refusal, AlreadyHasTicket) else None


def _claim_limited_answer(request, retry_after: int, slug: str):
    refusal = _held_ticket_refusal(request, slug)
    return error_response(refusal) if refusal is not None else None


@never_cache
@rate_limited("claim", answer=_claim_limited_answer)
@json_api(("POST",), login=True)
def api_claim(request, slug: str):
    """``POST /api/events/<slug>/claim/``: 202 queued, 200 already queued, or a refusal."""
    entry, created = services.claim_submit(user=request.user, event_slug=slug)
    payload = queue_selectors.entry_as_dict(entry)
    body = {k: payload[k] for k in ("queue_id", "status", "position", "eta_seconds")}
    body["url"] = reverse("claims:waiting", args=[entry.public_id])
    return JsonResponse(body, status=202 if created else 200)


def _claim_form_limited(request, retry_after: int, slug: str):
    # A ticket holder is sent to the page that shows the ticket; anyone else is told to wait.
    if _held_ticket_refusal(request, slug) is not None:
        return back_to_event(request, slug)
    return back_to_event(request, slug, too_many_requests_message(retry_after))


@never_cache
@require_POST
@rate_limited("claim", answer=_claim_form_limited)
def claim_form(request, slug: str):
    """``POST /events/<slug>/claim/``: the claim button as a form, for a phone without JavaScript.

    The same budget and the same service as the API: on to the waiting page, or back to the
    event page (post/redirect/get), which says the refusal once. A student who already holds a
    ticket is simply shown it there.
    """
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("claims:event", args=[slug]))
    try:
        entry, _created = services.claim_submit(user=request.user, event_slug=slug)
    except AlreadyHasTicket:
        return back_to_event(request, slug)
    except EventUnavailable as refusal:
        raise Http404(refusal.message) from None
    except DomainError as refusal:
        return back_to_event(request, slug, refusal.message)
    return redirect("claims:waiting", queue_id=entry.public_id)


# --- the waiting page ----------------------------------------------------------------------


@never_cache
@json_api(("GET", "HEAD"), login=True)
def api_queue_status(request, queue_id: str):
    """``GET /api/queue/<queue_id>/``: the entry as its owner sees it; 404 for anyone else."""
    entry = queue_selectors.entry_of_owner(public_id=queue_id, user_id=request.user.id)
    if entry is None:
        return json_error(404, _("This queue entry does not exist."), code="not_found")
    payload = queue_selectors.entry_as_dict(entry)
    return JsonResponse({**payload, **_stock_fields(entry, payload)})


def _stock_fields(entry, payload: dict) -> dict:
    """Seats left against the position, said honestly, and the waiting list (extra fields)."""
    event = entry.event
    fields = seat_outlook(position=payload["position"], seats_left=event.remaining, capacity=event.capacity)
    # A student whose claim got a ticket has no use for the waiting list: no query for it.
    completed = payload["status"] == "completed"
    waiting = (
        None if completed else waitlist_selectors.waitlist_entry_of(event_id=entry.event_id, user_id=entry.user_id)
    )
    fields["waitlist"] = waitlist_selectors.waitlist_place(waiting) if waiting is not None else None
    fields["event"] = event.slug
    return fields


@never_cache
@require_GET
def waiting_page(request, queue_id: str):
    """``/queue/<queue_id>/``: position, estimated wait and outcome, updated live."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    entry = queue_selectors.entry_of_owner(public_id=queue_id, user_id=request.user.id)
    if entry is None:
        raise Http404(_("This queue entry does not exist."))

    payload = queue_selectors.entry_as_dict(entry)
    payload.update(_stock_fields(entry, payload))
    config = {
        "queue_id": str(entry.public_id),
        "status_url": reverse("claims:api-status", args=[entry.public_id]),
        "ws_path": f"/ws/queue/{entry.public_id}/",
        "waitlist_url": reverse("claims:api-waitlist", args=[entry.event.slug]),
        "entry": payload,
        "messages": {
            "pending": _("Waiting in the queue"),
            "processing": _("Your claim is being decided"),
            "completed": _("You got a ticket!"),
            "failed": _("No ticket this time"),
            "seconds": _("about %(n)s s"),
            "polling": _("Live updates are unavailable; checking every few seconds."),
            "prequeue": _("In the pre-queue: your place is drawn just after the window opens"),
            # Both plural forms, for the script to pick (Indonesian has one, English two).
            "seats_left_one": ngettext("%(n)s seat left", "%(n)s seats left", 1),
            "seats_left": ngettext("%(n)s seat left", "%(n)s seats left", 2),
            # The outlook sentences, both plural forms, filled in by the script as pushes arrive.
            "outlook": {"one": outlook_sentences(1), "other": outlook_sentences(2)},
        },
    }
    return render(request, "queueing/waiting.html", {"entry": entry, "payload": payload, "config": config})


# --- joining the waiting list ----------------------------------------------------------------


def _event_or_none(slug: str) -> Event | None:
    return Event.objects.filter(slug=slug).exclude(status=Event.Status.DRAFT).first()


@never_cache
@json_api(("GET", "HEAD", "POST"), login=True)
def api_waitlist(request, slug: str):
    """``GET``: my place on the list; ``POST {join: bool}``: opt in or out (the checkbox)."""
    event = _event_or_none(slug)
    if event is None:
        return json_error(404, _("This event does not exist."), code="not_found")
    if request.method == "POST":
        body = json_object(request, example='{"join": true}')
        if not isinstance(body.get("join"), bool):
            return json_error(400, _('Send {"join": true} or {"join": false}.'), code="bad_request")
        entry = waitlist_set_joined(event_id=event.id, user_id=request.user.id, joined=body["join"])
    else:
        entry = waitlist_selectors.waitlist_entry_of(event_id=event.id, user_id=request.user.id)
        if entry is None:
            return JsonResponse({"id": None, "status": None, "position": None, "offer_expires_at": None, "url": None})
    return JsonResponse(waitlist_selectors.waitlist_place(entry))


def _too_many_page(request, retry_after: int, *args, **kwargs):
    return render(request, "429.html", {"message": too_many_requests_message(retry_after)})


def _back_to(request, fallback: str) -> str:
    target = request.POST.get("next", "")
    # A path of this site only: redirect() takes any other word for a view name (NoReverseMatch,
    # a 500), and a redirect over 16 KiB is refused (DisallowedRedirect).
    safe = url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure())
    if safe and target.startswith("/") and len(target) <= 2048:
        return target
    return fallback


# The page's checkbox for a phone without JavaScript: the same service as the API beside it, and
# the budget the API middleware gives a logged-in student's requests.
@never_cache
@require_POST
@rate_limited("api_user", page=_too_many_page)
def waitlist_choice(request, slug: str):
    """``POST /events/<slug>/waitlist/`` ``join=1`` (the checkbox ticked) or nothing: in or out."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.POST.get("next") or reverse("claims:event", args=[slug]))
    event = _event_or_none(slug)
    if event is None:
        raise Http404(_("This event does not exist."))
    joined = request.POST.get("join") == "1"
    try:
        waitlist_set_joined(event_id=event.id, user_id=request.user.id, joined=joined)
    except DomainError as refusal:
        # Post/redirect/get: the page it came from says why, once (the event page in its claim box).
        messages.error(request, refusal.message, extra_tags=EVENT_NOTE)
    return redirect(_back_to(request, reverse("claims:event", args=[slug])))
