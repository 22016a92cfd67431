"""Reads of the tickets app."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from events.models import Event

from .codes import qr_payload_for
from .models import Ticket

# The door role's permission (accounts/roles.py); superusers hold it too.
CHECK_IN_PERMISSION = "tickets.can_check_in"


def may_check_in(user) -> bool:
    """Whether ``user`` may use the scan page and check tickets in: the one home of this rule."""
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.has_perm(CHECK_IN_PERMISSION))


def pocket_account(user) -> str:
    """The name under which a student's phone keeps their saved ticket pages ("" for anyone else).

    Opaque (an HMAC of the account, never its id) and stable per account: the ticket pages'
    service worker keeps one account's pages at a time under it, and every page deletes the
    saved pages of any other name, so a shared phone never shows one student's saved ticket to
    the next person logged in, nor to nobody after a log-out.
    """
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_student", False):
        return ""
    return _phone_name("tickets.pocket", user)


def door_account(user) -> str:
    """The name under which a door phone keeps its door lists ("" for anyone who may not check in).

    Opaque and stable per account, as ``pocket_account``: every page deletes the door lists saved
    under any other name, so the names and NIMs of a door list leave a shared phone with the
    login that downloaded them (after a log-out too). Students are answered without a query.
    """
    if getattr(user, "is_student", False) or not may_check_in(user):
        return ""
    return _phone_name("tickets.door", user)


def _phone_name(purpose: str, user) -> str:
    """An opaque, stable name of ``user``'s account for what a phone keeps for ``purpose``."""
    return salted_hmac(purpose, str(user.pk)).hexdigest()[:20]


def ticket_status(ticket: Ticket) -> str:
    """``active``, ``admitted`` or ``returned``: what the holder and the door need to know."""
    if ticket.status == Ticket.Status.RETURNED:
        return "returned"
    if ticket.admitted_at is not None:
        return "admitted"
    return "active"


def format_redeem_code(code: str) -> str:
    """``ABCDEFGH`` -> ``ABCD-EFGH``: two groups of four are easier to read aloud and type."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def ticket_as_dict(ticket: Ticket) -> dict[str, Any]:
    """The JSON shape of a ticket, shared by ``/api/me/tickets/`` and the queue status API.

    ``code`` is the signed QR payload, ``url`` the ticket page. Needs ``ticket.event`` loaded
    (``select_related("event")``) to stay one query for a list.
    """
    return {
        "code": qr_payload_for(ticket.id),
        "redeem_code": ticket.redeem_code,
        # As the ticket page prints it (pages show this one; the door accepts either).
        "redeem_display": format_redeem_code(ticket.redeem_code),
        "event": ticket.event.slug,
        "event_title": ticket.event.title,
        "status": ticket_status(ticket),
        "issued_at": ticket.issued_at.isoformat(),
        "admitted_at": ticket.admitted_at.isoformat() if ticket.admitted_at else None,
        "url": reverse("tickets:detail", kwargs={"ticket_id": ticket.id}),
    }


def tickets_of_user(*, user_id: int) -> QuerySet[Ticket]:
    """A student's tickets, newest first, with their events (one query)."""
    return Ticket.objects.filter(user_id=user_id).select_related("event").order_by("-issued_at")


def active_ticket_of(*, event_id: int, user_id: int) -> Ticket | None:
    """The student's active ticket of the event (with its event), or None."""
    return (
        Ticket.objects.select_related("event")
        .filter(event_id=event_id, user_id=user_id, status=Ticket.Status.ACTIVE)
        .first()
    )


def ticket_of_owner(*, ticket_id: uuid.UUID, user_id: int) -> Ticket | None:
    """The ticket if ``user_id`` holds it; None otherwise (so others see a plain 404)."""
    return Ticket.objects.select_related("event", "admitted_by").filter(pk=ticket_id, user_id=user_id).first()


def door_window(event: Event) -> tuple[datetime, datetime]:
    """``(opens, closes)``: when the door of ``event`` admits tickets: from the event's own
    ``door_opens_at``, else DOOR_OPENS_BEFORE_START_MINUTES before the start, until
    DOOR_CLOSES_AFTER_START_MINUTES after it."""
    opens = event.door_opens_at or event.starts_at - timedelta(minutes=settings.DOOR_OPENS_BEFORE_START_MINUTES)
    closes = event.starts_at + timedelta(minutes=settings.DOOR_CLOSES_AFTER_START_MINUTES)
    return opens, closes


def events_for_door(now: datetime | None = None) -> QuerySet[Event]:
    """Published events whose door has not closed yet, soonest first: the scan page's choices."""
    now = now or timezone.now()
    started_since = now - timedelta(minutes=settings.DOOR_CLOSES_AFTER_START_MINUTES)
    return (
        Event.objects.filter(status=Event.Status.PUBLISHED, starts_at__gt=started_since)
        .order_by("starts_at", "id")
        .only("slug", "title", "starts_at", "door_opens_at", "rotating_qr", "door_accepts_student_card")
    )


def door_default_event(events: list[Event], now: datetime | None = None) -> Event | None:
    """The event the scan page preselects: of those whose door is open now, the one starting
    closest to now (a morning talk still within its hours loses to the afternoon one that
    starts in ten minutes); else the next one to open; else none."""
    now = now or timezone.now()
    open_now = [e for e in events if door_window(e)[0] <= now < door_window(e)[1]]
    if open_now:
        return min(open_now, key=lambda e: abs((e.starts_at - now).total_seconds()))
    upcoming = [e for e in events if door_window(e)[0] > now]
    return upcoming[0] if upcoming else None
