"""Cached reads of public events, and their invalidation.

- ``event:<slug>`` the Event row (10 min), ``event_list`` the public rows (10 min): a page or
  API read needs no query for them. The rows are cached, not the JSON: ``status`` depends on
  the clock and on ``remaining``, so the public dict is built per request from the cached row.
- ``remaining:<id>`` the seats left (5 s), refreshed (written through) after every seat change.

Invalidation runs after commit: ``events.signals.event_changed`` (create, edit, publish,
cancel, capacity) drops the rows; every seat change rewrites the remaining count
(``refresh_remaining``, the first thing ``events.seats`` runs after it). See docs/CACHING.md.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from common.cache import cache_delete, cache_get_or_compute, cache_prime, cache_set_fresh

from . import selectors
from .models import Event
from .serializers import event_detail_dict, event_public_dict

EVENT_LIST_KEY = "event_list"
# Seconds an event row and its seat count are also kept in each process: every claim and event
# read needs both, and a second-old copy saves two Redis round trips and an unpickling. An edit
# in this process is seen at once; other processes see it within this second.
LOCAL_TTL = 1.0
_NO_EVENT = "missing"  # cached marker for an unknown slug (a typo must not query every time)


def event_key(slug: str) -> str:
    return f"event:{slug}"


def event_slug_key(event_id: int) -> str:
    return f"event_slug:{event_id}"


def remaining_key(event_id: int) -> str:
    return f"remaining:{event_id}"


def _ttl_event() -> int:
    return settings.CACHE_TTL_EVENT


def _ttl_remaining() -> int:
    return settings.CACHE_TTL_REMAINING


# --- reads ---------------------------------------------------------------------------------


def cached_event(slug: str) -> Event | None:
    """The public event ``slug`` (published or cancelled), from the cache when possible."""
    if not selectors.is_valid_slug(slug):
        return None

    def load() -> Event | str:
        event = selectors.event_get_public(slug)
        if event is None:
            return _NO_EVENT
        remember_slug(event)
        _prime_remaining([event])
        return event

    event = cache_get_or_compute(
        "event", event_key(slug), load, ttl=_ttl_event(), stale_ttl=settings.CACHE_STALE_GRACE, local_ttl=LOCAL_TTL
    )
    return None if event == _NO_EVENT else event


def cached_event_list() -> list[Event]:
    """The public events, soonest first, from the cache when possible."""

    def load() -> list[Event]:
        events = list(selectors.event_list_public())
        _prime_remaining(events)
        return events

    return cache_get_or_compute(
        "event_list",
        EVENT_LIST_KEY,
        load,
        ttl=_ttl_event(),
        stale_ttl=settings.CACHE_STALE_GRACE,
    )


def cached_remaining(event_id: int) -> int:
    """Seats left in ``event_id`` (at most CACHE_TTL_REMAINING seconds old)."""

    def load() -> int:
        value = Event.objects.filter(pk=event_id).values_list("remaining", flat=True).first()
        return 0 if value is None else value

    return cache_get_or_compute(
        "remaining", remaining_key(event_id), load, ttl=_ttl_remaining(), stale_ttl=settings.CACHE_STALE_GRACE,
        local_ttl=LOCAL_TTL,
    )  # fmt: skip


def _prime_remaining(events: list[Event]) -> None:
    # The row just read carries its seat count: store it (unless a count is cached already) so
    # the same request needs no second query for it.
    for event in events:
        cache_prime(
            remaining_key(event.pk), event.remaining, ttl=_ttl_remaining(), stale_ttl=settings.CACHE_STALE_GRACE
        )


def cached_event_payload(slug: str) -> dict[str, Any] | None:
    """The body of ``GET /api/events/<slug>/`` from cached reads, or None (no such event)."""
    event = cached_event(slug)
    if event is None:
        return None
    return event_detail_dict(event, remaining=cached_remaining(event.pk), now=timezone.now())


def cached_events_payload() -> list[dict[str, Any]]:
    """The body of ``GET /api/events/`` from cached reads."""
    now = timezone.now()
    return [event_public_dict(event, remaining=cached_remaining(event.pk), now=now) for event in cached_event_list()]


# --- invalidation ------------------------------------------------------------------------


def invalidate_event(event_id: int) -> None:
    """Drop every cached copy of ``event_id`` (its row under the old and new slug, the list)."""
    keys = [EVENT_LIST_KEY, remaining_key(event_id)]
    slug = Event.objects.filter(pk=event_id).values_list("slug", flat=True).first()
    if slug:
        keys.append(event_key(slug))
    # The slug may have just changed: the row is also cached under its previous slug.
    previous = cache.get(event_slug_key(event_id))
    if previous and previous != slug:
        keys.append(event_key(previous))
    cache_delete("event", *keys)
    if slug:
        cache.set(event_slug_key(event_id), slug, timeout=_ttl_event() * 2)


def refresh_remaining(event_id: int) -> None:
    """Write the current seat count through to the cache (after a ticket is issued or returned).

    Rewriting rather than deleting keeps the hit ratio up during a war: the key never goes
    missing while hundreds of students are polling it.
    """
    value = Event.objects.filter(pk=event_id).values_list("remaining", flat=True).first()
    if value is None:
        cache_delete("remaining", remaining_key(event_id))
        return
    cache_set_fresh(remaining_key(event_id), value, ttl=_ttl_remaining(), stale_ttl=settings.CACHE_STALE_GRACE)


def remember_slug(event: Event) -> None:
    """Note which slug ``event`` is cached under, so a later slug change can drop it."""
    cache.set(event_slug_key(event.pk), event.slug, timeout=_ttl_event() * 2)


def invalidate_on_event_changed(sender: object, *, event_id: int, **kwargs: Any) -> None:
    """``events.signals.event_changed`` receiver (connected in ``EventsConfig.ready``)."""
    invalidate_event(event_id)
