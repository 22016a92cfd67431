"""The shuffled opening: a pre-queue whose order is drawn, verifiably, when the window opens.

Before opening the event page shows ``sha256(seed)`` (the commitment). At opening the draw
below fixes the pre-queue order from the seed and publishes the seed and the pseudonyms in
drawn order; ``tools/verify_draw.py`` recomputes the order from those alone:
``sorted(pseudonyms, key=lambda p: sha256(seed + p))``. Students cannot gain anything by
pressing early or refreshing: one live entry per student, and its rank depends only on the
seed, unknown to everyone until the draw.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from events.cache import invalidate_event
from events.models import Event

from .models import QueueEntry
from .services import queue_kick

logger = logging.getLogger("ticketwar.queueing")

# 12 hex digits = 48 bits: a collision among even 100,000 entries is ~1 in 56,000, and the
# order stays well defined then (a tie sorts by the pseudonym itself).
PSEUDONYM_LENGTH = 12

_RANK_SQL = """
UPDATE ticket_queue AS q
-- The pre-queue waits from the opening, not from the moment someone pressed early: queue delay
-- (health, monitoring) measures from created_at.
SET sort_key = v.rank, prequeue = false, created_at = GREATEST(q.created_at, %(opens_at)s)
FROM unnest(%(ids)s::bigint[], %(ranks)s::bigint[]) AS v(id, rank)
WHERE q.id = v.id
"""


def pseudonym_for(public_id: uuid.UUID | str) -> str:
    """The public, unlinkable name of a pre-queue entry: first 12 hex of sha256(queue id)."""
    return hashlib.sha256(str(public_id).encode("ascii")).hexdigest()[:PSEUDONYM_LENGTH]


def draw_key(seed: str, pseudonym: str) -> str:
    return hashlib.sha256((seed + pseudonym).encode("ascii")).hexdigest()


def draw_order(seed: str, pseudonyms: list[str]) -> list[str]:
    """The drawn order: pseudonyms sorted by sha256(seed || pseudonym). Same as the script's."""
    return sorted(pseudonyms, key=lambda p: (draw_key(seed, p), p))


def draw_open(*, event_id: int, now: datetime | None = None) -> bool:
    """Open a shuffled event's pre-queue: rank its entries in drawn order, reveal the seed.

    Exactly once per event: the event row is locked (``SELECT ... FOR UPDATE``) and
    ``draw_revealed_at`` re-checked under the lock, so a beat tick and a worker (or two
    workers) racing here draw once and the loser does nothing. Pre-queue entries get ranks
    ``-n .. -1`` in drawn order, ahead of every later arrival (whose sort key is its id).
    Returns True when this call made the draw.
    """
    now = now or timezone.now()
    with transaction.atomic():
        event = (
            Event.objects.select_for_update()
            .filter(pk=event_id, opening_mode=Event.OpeningMode.SHUFFLE_AT_OPEN, draw_revealed_at__isnull=True)
            .only("id", "draw_seed", "claim_opens_at")
            .first()
        )
        if event is None or now < event.claim_opens_at:
            return False
        rows = list(QueueEntry.objects.filter(event_id=event_id, prequeue=True).values_list("id", "public_id"))
        by_pseudonym: dict[str, list[int]] = {}
        for entry_id, public_id in rows:
            by_pseudonym.setdefault(pseudonym_for(public_id), []).append(entry_id)
        order = draw_order(event.draw_seed, list(by_pseudonym))
        ids = [entry_id for p in order for entry_id in sorted(by_pseudonym[p])]
        n = len(ids)
        if ids:
            with connection.cursor() as cursor:
                cursor.execute(
                    _RANK_SQL, {"ids": ids, "ranks": [rank - n for rank in range(n)], "opens_at": event.claim_opens_at}
                )
        Event.objects.filter(pk=event_id).update(draw_revealed_at=now, draw_entries=order, updated_at=now)
        transaction.on_commit(lambda: _after_draw(event_id))
    logger.info("draw made for event %s: %s pre-queue entries", event_id, n)
    return True


def _after_draw(event_id: int) -> None:
    invalidate_event(event_id)
    queue_kick()


def draw_open_due(*, now: datetime | None = None) -> list[int]:
    """Draw every shuffled event whose window has opened and whose draw is not made yet.

    Called at the start of each queue drain (the 2-second beat tick included): one indexed
    query when nothing is due. Returns the ids of the events drawn by this call.
    """
    now = now or timezone.now()
    due = Event.objects.filter(
        opening_mode=Event.OpeningMode.SHUFFLE_AT_OPEN, draw_revealed_at__isnull=True, claim_opens_at__lte=now
    ).values_list("id", flat=True)
    return [event_id for event_id in list(due) if draw_open(event_id=event_id, now=now)]


def draw_public(event: Event, *, now: datetime | None = None) -> dict:
    """The draw as anyone may see it: the commitment always, seed and order once revealed."""
    revealed = event.draw_revealed_at is not None
    return {
        "opening_mode": event.opening_mode,
        "commitment": event.draw_commitment,
        "claim_opens_at": timezone.localtime(event.claim_opens_at).isoformat(),
        "revealed_at": timezone.localtime(event.draw_revealed_at).isoformat() if revealed else None,
        "seed": event.draw_seed if revealed else None,
        "entries": list(event.draw_entries) if revealed else [],
        "algorithm": "order = sorted(entries, key=lambda p: sha256((seed + p).encode()).hexdigest())",
    }
