"""The public JSON shape of an event (docs/API.md: GET /api/events/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from .models import Event


def _iso(value: datetime) -> str:
    # ISO 8601 with the WIB offset, e.g. 2026-11-26T19:00:00+07:00.
    return timezone.localtime(value).isoformat()


def event_public_dict(event: Event, *, remaining: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """``{slug, title, speaker, venue, starts_at, claim_opens_at, claim_closes_at, capacity, remaining, status}``.

    ``status`` is ``Event.claim_state()``; pass a fresher ``remaining`` (e.g. a cached
    counter) to override the row's value.
    """
    remaining = event.remaining if remaining is None else remaining
    return {
        "slug": event.slug,
        "title": event.title,
        "speaker": event.speaker,
        "venue": event.venue,
        "starts_at": _iso(event.starts_at),
        "claim_opens_at": _iso(event.claim_opens_at),
        "claim_closes_at": _iso(event.claim_closes_at),
        "capacity": event.capacity,
        "remaining": remaining,
        "status": event.claim_state(now, remaining=remaining),
    }


def event_detail_dict(event: Event, *, remaining: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """``GET /api/events/<slug>/``: the list shape plus the fair-opening fields.

    ``draw_commitment`` is SHA-256 of the draw seed, public before opening; the frozen list, the
    public random value, the seed and the drawn order are at ``/api/events/<slug>/draw/``, each
    once it exists.
    """
    return {
        **event_public_dict(event, remaining=remaining, now=now),
        "opening_mode": event.opening_mode,
        "draw_commitment": event.draw_commitment,
        "draw_frozen": event.draw_frozen_at is not None,
        "draw_revealed": event.draw_revealed_at is not None,
    }
