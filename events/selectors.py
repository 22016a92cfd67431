"""Reads of the events app. Students see published and cancelled events, never drafts."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet

from .models import Event
from .serializers import event_public_dict

# The same shape as the slug field (max_length=80): anything else cannot name an event.
SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]{1,80}$")
PUBLIC_STATUSES = (Event.Status.PUBLISHED, Event.Status.CANCELLED)


def is_valid_slug(slug: str) -> bool:
    return bool(slug) and SLUG_RE.match(slug) is not None


def event_list_public() -> QuerySet[Event]:
    """Published and cancelled events, soonest first."""
    return Event.objects.filter(status__in=PUBLIC_STATUSES).order_by("starts_at", "id")


def event_get_public(slug: str) -> Event | None:
    """The public event named ``slug``, or None (unknown, draft or malformed slug)."""
    if not is_valid_slug(slug):
        return None
    return event_list_public().filter(slug=slug).first()


def events_public_payload() -> list[dict[str, Any]]:
    """The body of ``GET /api/events/`` (one function, so it can be cached as a whole)."""
    return [event_public_dict(event) for event in event_list_public()]


def event_public_payload(slug: str) -> dict[str, Any] | None:
    """The body of ``GET /api/events/<slug>/``, or None when there is no such public event."""
    event = event_get_public(slug)
    return None if event is None else event_public_dict(event)


def event_list_with_counts() -> QuerySet[Event]:
    """All events with ``issued_count`` and ``admitted_count`` (active tickets) annotated."""
    active = Q(tickets__status="active")
    return Event.objects.annotate(
        issued_count=Count("tickets", filter=active),
        admitted_count=Count("tickets", filter=active & Q(tickets__admitted_at__isnull=False)),
    )


def has_prequeue(event_id: int) -> bool:
    """Whether claims of the event wait in its pre-queue (made before opening, not drawn yet).

    While they do, the opening mode is fixed: a first-come event never draws, and the batch scan
    never takes a pre-queue entry, so a mode change would strand them.
    """
    return Event.objects.filter(
        pk=event_id, queue_entries__prequeue=True, queue_entries__status__in=("pending", "processing")
    ).exists()


def draws_awaiting_beacon(*, now: datetime) -> QuerySet[Event]:
    """Shuffled events whose pre-queue is frozen and whose public random value is due but not entered."""
    return Event.objects.filter(
        opening_mode=Event.OpeningMode.SHUFFLE_AT_OPEN,
        draw_frozen_at__isnull=False,
        draw_revealed_at__isnull=True,
        draw_beacon="",
        draw_beacon_due_at__lte=now,
    ).only("id", "title", "draw_beacon_due_at")
