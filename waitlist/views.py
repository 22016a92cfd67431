"""The draw (public) and a seat offer (page and API). Thin. (Joining the list is the claim's:
claims/views.py.)"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from common.api import json_api
from common.errors import DomainError, json_error
from common.ratelimit import rate_limited, too_many_requests_message
from events.models import Event
from queueing.draw import draw_public, pseudonym_for
from queueing.models import QueueEntry

from . import selectors, services


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


# The offer page's button for a phone without JavaScript: the same service as the API beside it,
# and the budget the API middleware gives a logged-in student's requests.


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
