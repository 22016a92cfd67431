"""The draw (public), the waiting list (API + offer page) and attendance confirmation. Thin."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from common.api import json_api
from common.body import json_object
from common.errors import DomainError, json_error
from common.ratelimit import rate_limited, too_many_requests_message
from events.models import Event
from events.views import EVENT_NOTE
from queueing.draw import draw_public, pseudonym_for
from queueing.models import QueueEntry

from . import confirmations, selectors, services


def _event_or_none(slug: str) -> Event | None:
    return Event.objects.filter(slug=slug).exclude(status=Event.Status.DRAFT).first()


@never_cache
@json_api(("GET", "HEAD"))
def api_draw(request, slug: str):
    """``GET /api/events/<slug>/draw/``: commitment; after opening the seed and the drawn order."""
    event = _event_or_none(slug)
    if event is None:
        return json_error(404, _("This event does not exist."), code="not_found")
    return JsonResponse(draw_public(event))


def _my_pseudonyms(request, event: Event) -> list[str]:
    if not request.user.is_authenticated:
        return []
    ids = QueueEntry.objects.filter(event=event, user_id=request.user.id).values_list("public_id", flat=True)
    return [pseudonym_for(public_id) for public_id in ids]


@never_cache
@require_http_methods(["GET", "HEAD"])
def draw_page(request, slug: str):
    """``/events/<slug>/draw/``: each step of the draw as it happens, and the student's pseudonym."""
    event = _event_or_none(slug)
    if event is None:
        raise Http404(_("This event does not exist."))
    draw = draw_public(event)
    mine = set(_my_pseudonyms(request, event))
    # The drawn order once made, before that the frozen list (sorted, no ranks yet).
    listed = draw.get("order") or draw["entries"]
    rows = [{"rank": i, "pseudonym": p, "mine": p in mine} for i, p in enumerate(listed, 1)]
    return render(
        request,
        "waitlist/draw.html",
        {
            "event": event,
            "draw": draw,
            "drawn": bool(draw["seed"]),
            "rows": rows,
            "mine": sorted(mine),
            "mine_listed": bool(mine & set(draw["entries"])),
            # Absolute with SITE_URL (never from the Host header), for the command to copy.
            "api_url": settings.SITE_URL + reverse("waitlist:api-draw", args=[slug]),
        },
    )


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
        entry = services.waitlist_set_joined(event_id=event.id, user_id=request.user.id, joined=body["join"])
    else:
        entry = selectors.waitlist_entry_of(event_id=event.id, user_id=request.user.id)
        if entry is None:
            return JsonResponse({"id": None, "status": None, "position": None, "offer_expires_at": None, "url": None})
    return JsonResponse(selectors.waitlist_place(entry))


@never_cache
@json_api(("POST",), login=True)
def api_offer_claim(request, offer_id: str):
    """``POST /api/waitlist/<id>/claim/``: the offered seat becomes the student's ticket."""
    ticket = services.waitlist_claim(public_id=offer_id, user_id=request.user.id)
    return JsonResponse(
        {
            "ticket": {
                "code": str(ticket.id),
                "redeem_code": ticket.redeem_code,
                "url": reverse("tickets:detail", args=[ticket.id]),
            }
        }
    )


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


# The forms below are the pages' buttons for a phone without JavaScript: the same services as
# the API beside them, and the budget the API middleware gives a logged-in student's requests.


@never_cache
@require_POST
@rate_limited("api_user", page=_too_many_page)
def waitlist_choice(request, slug: str):
    """``POST /events/<slug>/waitlist/`` ``join=1`` (the checkbox ticked) or nothing: in or out."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.POST.get("next") or reverse("events:detail", args=[slug]))
    event = _event_or_none(slug)
    if event is None:
        raise Http404(_("This event does not exist."))
    joined = request.POST.get("join") == "1"
    try:
        services.waitlist_set_joined(event_id=event.id, user_id=request.user.id, joined=joined)
    except DomainError as refusal:
        # Post/redirect/get: the page it came from says why, once (the event page in its claim box).
        messages.error(request, refusal.message, extra_tags=EVENT_NOTE)
    return redirect(_back_to(request, reverse("events:detail", args=[slug])))


@never_cache
@require_POST
@rate_limited("api_user", page=_too_many_page)
def offer_claim(request, offer_id: str):
    """``POST /waitlist/<id>/claim/``: the offered seat, claimed from the offer page's form."""
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("waitlist:offer", args=[offer_id]))
    try:
        ticket = services.waitlist_claim(public_id=offer_id, user_id=request.user.id)
    except DomainError as refusal:
        return offer_page_response(request, offer_id, refusal=refusal.message, status=refusal.status)
    return redirect("tickets:detail", ticket_id=ticket.id)


@never_cache
@require_http_methods(["GET", "HEAD"])
def offer_page(request, offer_id: str):
    return offer_page_response(request, offer_id)


def offer_page_response(request, offer_id: str, *, refusal: str = "", status: int = 200):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    entry = selectors.waitlist_offer_of_owner(public_id=offer_id, user_id=request.user.id)
    if entry is None:
        raise Http404(_("This offer does not exist."))
    config = {
        "claim_url": reverse("waitlist:api-claim", args=[entry.public_id]),
        "seconds_left": selectors.offer_seconds_left(entry),
        "messages": {
            "claiming": _("Claiming…"),
            "expired": _("This offer has expired."),
            "network": _("The connection failed. Please try again."),
        },
    }
    return render(
        request,
        "waitlist/offer.html",
        {"entry": entry, "place": selectors.waitlist_place(entry), "config": config, "refusal": refusal},
        status=status,
    )


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def confirm_page(request, ticket_id):
    """The link of the confirmation e-mail: GET shows the question, POST confirms."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    confirmation = confirmations.open_confirmation_for(ticket_id=ticket_id, user_id=request.user.id)
    if confirmation is None:
        raise Http404(_("There is no attendance confirmation open for this ticket."))
    if request.method == "POST":
        confirmations.ticket_confirm(ticket_id=ticket_id, user_id=request.user.id)
        return redirect(request.path)
    return render(request, "waitlist/confirm.html", {"confirmation": confirmation})
