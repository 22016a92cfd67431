"""Reads of the waiting list: a student's place on it, an offer."""

from __future__ import annotations

import uuid
from typing import Any

from django.urls import reverse
from django.utils import timezone

from .models import WaitlistEntry


def waitlist_position(entry: WaitlistEntry) -> int | None:
    """1 + students waiting ahead of this one (served by waitlist_waiting_idx); None unless waiting."""
    if entry.status != WaitlistEntry.Status.WAITING:
        return None
    return (
        WaitlistEntry.objects.filter(
            event_id=entry.event_id, status=WaitlistEntry.Status.WAITING, id__lt=entry.id
        ).count()
        + 1
    )


def waitlist_place(entry: WaitlistEntry) -> dict[str, Any]:
    """``{id, status, position, offer_expires_at, url}`` as the student sees it (no query when the
    statement that read the row counted those waiting ahead: ``entry.waiting_ahead``)."""
    if entry.waiting_ahead is None:
        position = waitlist_position(entry)
    else:
        position = entry.waiting_ahead + 1 if entry.status == WaitlistEntry.Status.WAITING else None
    return {
        "id": str(entry.public_id),
        "status": entry.status,
        "position": position,
        "offer_expires_at": entry.offer_expires_at.isoformat() if entry.offer_expires_at else None,
        "url": reverse("waitlist:offer", args=[entry.public_id]),
    }


def waitlist_entry_of(*, event_id: int, user_id: int) -> WaitlistEntry | None:
    return WaitlistEntry.objects.filter(event_id=event_id, user_id=user_id).first()


def waitlist_offer_of_owner(*, public_id, user_id: int) -> WaitlistEntry | None:
    try:
        public_id = uuid.UUID(str(public_id))
    except (ValueError, TypeError, AttributeError):
        return None
    return WaitlistEntry.objects.select_related("event", "ticket").filter(public_id=public_id, user_id=user_id).first()


def offer_seconds_left(entry: WaitlistEntry) -> int:
    if entry.status != WaitlistEntry.Status.OFFERED or entry.offer_expires_at is None:
        return 0
    return max(0, int((entry.offer_expires_at - timezone.now()).total_seconds()))
