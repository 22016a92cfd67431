"""Claim endpoint, queue status API and the waiting page. Thin: services and selectors decide."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from common.api import json_api
from common.errors import DomainError, error_response, json_error
from common.ratelimit import rate_limited, too_many_requests_message
from events.cache import cached_event
from events.views import back_to_event
from tickets.exceptions import AlreadyHasTicket, EventUnavailable
from tickets.rules import held_ticket, student_refusal
from waitlist.selectors import outlook_sentences, seat_outlook, waitlist_entry_of, waitlist_place

from . import selectors, services


def _held_ticket_refusal(request, slug: str):
    """``AlreadyHasTicket`` (with the ticket) when the student holds an active ticket of the
    event, else None. Asked only over the claim budget, where it outranks the 429: a student
    claiming from a second tab after the first one won is told about their ticket, not to wait.
    Rare and cheap (the cached event, one indexed read)."""
    user = request.user
    if not (user.is_authenticated and user.is_student):
        return None
    event = cached_event(slug)
    if event is None:
        return None
    refusal = student_refusal(user, held=held_ticket(event_id=event.pk, user_id=user.pk))
    return refusal if isinstance(refusal, AlreadyHasTicket) else None


def _claim_limited_answer(request, retry_after: int, slug: str):
    refusal = _held_ticket_refusal(request, slug)
    return error_response(refusal) if refusal is not None else None


@never_cache
@rate_limited("claim", answer=_claim_limited_answer)
@json_api(("POST",), login=True)
def api_claim(request, slug: str):
    """``POST /api/events/<slug>/claim/``: 202 queued, 200 already queued, or a refusal."""
    entry, created = services.queue_enqueue(user=request.user, event_slug=slug)
    payload = selectors.entry_as_dict(entry)
    body = {k: payload[k] for k in ("queue_id", "status", "position", "eta_seconds")}
    body["url"] = reverse("queueing:waiting", args=[entry.public_id])
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
        return redirect_to_login(reverse("events:detail", args=[slug]))
    try:
        entry, _created = services.queue_enqueue(user=request.user, event_slug=slug)
    except AlreadyHasTicket:
        return back_to_event(request, slug)
    except EventUnavailable as refusal:
        raise Http404(refusal.message) from None
    except DomainError as refusal:
        return back_to_event(request, slug, refusal.message)
    return redirect("queueing:waiting", queue_id=entry.public_id)


@never_cache
@json_api(("GET", "HEAD"), login=True)
def api_queue_status(request, queue_id: str):
    """``GET /api/queue/<queue_id>/``: the entry as its owner sees it; 404 for anyone else."""
    entry = selectors.entry_of_owner(public_id=queue_id, user_id=request.user.id)
    if entry is None:
        return json_error(404, _("This queue entry does not exist."), code="not_found")
    payload = selectors.entry_as_dict(entry)
    return JsonResponse({**payload, **_stock_fields(entry, payload)})


def _stock_fields(entry, payload: dict) -> dict:
    """Seats left against the position, said honestly, and the waiting list (extra fields)."""
    event = entry.event
    fields = seat_outlook(position=payload["position"], seats_left=event.remaining, capacity=event.capacity)
    # A student whose claim got a ticket has no use for the waiting list: no query for it.
    completed = payload["status"] == "completed"
    waiting = None if completed else waitlist_entry_of(event_id=entry.event_id, user_id=entry.user_id)
    fields["waitlist"] = waitlist_place(waiting) if waiting is not None else None
    fields["event"] = event.slug
    return fields


@never_cache
@require_GET
def waiting_page(request, queue_id: str):
    """``/queue/<queue_id>/``: position, estimated wait and outcome, updated live."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    entry = selectors.entry_of_owner(public_id=queue_id, user_id=request.user.id)
    if entry is None:
        raise Http404(_("This queue entry does not exist."))

    payload = selectors.entry_as_dict(entry)
    payload.update(_stock_fields(entry, payload))
    config = {
        "queue_id": str(entry.public_id),
        "status_url": reverse("queueing:api-status", args=[entry.public_id]),
        "ws_path": f"/ws/queue/{entry.public_id}/",
        "waitlist_url": reverse("waitlist:api-waitlist", args=[entry.event.slug]),
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
