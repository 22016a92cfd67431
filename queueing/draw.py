"""The shuffled opening: a pre-queue whose order nobody can choose or predict, operators included.

Four steps, each published as it happens (``draw_public``; the threat model and the day's flow
are in docs/QUEUE.md, "The draw"):

1. **Commitment.** Each event is created with a secret random seed; ``sha256(seed)`` is public
   from the moment the event is, with the *source* of a public random value (naming exactly
   one value, published after the window opens) and the time it is due.
2. **Freeze** (``draw_freeze``, at the first queue run after the window opens). The pre-queue's
   pseudonyms (``pseudonym_for``: the first 12 hex digits of SHA-256 of the entry's private queue
   id, fixed when the student claimed) are frozen, sorted, and published with ``freeze_hash``,
   the hash of the frozen list together with the commitment and the announced source and time.
   No entry joins or changes after this; claims that arrive later queue behind the pre-queue.
3. **Public random value** (``draw_enter_beacon``). Once published, the organiser enters it in
   the admin. Before then nobody can compute the order: not the operator who can read the seed,
   since the value does not exist yet, and not anyone else, since the seed is secret.
4. **Draw** (``draw_make``, at the next queue run). The rank of each pseudonym is
   ``HMAC-SHA256(key, pseudonym)`` with ``key = HMAC-SHA256(seed, "ticketwar draw v2\\n" +
   freeze_hash + "\\n" + value)``, lowest first; the seed is revealed with the order and
   ``tools/verify_draw.py`` checks every step from the published data alone.

While the value is awaited, claims that arrived after opening are still decided at once, for
the seats the pre-queue cannot need (``prequeue_hold``): the pre-queue keeps its priority and
the queue's delay target holds.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import unicodedata
import uuid
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from events.cache import invalidate_event
from events.models import Event

from .exceptions import (
    BadBeacon,
    BeaconAlreadyEntered,
    BeaconNotDue,
    BeaconSourceMissing,
    NotFrozen,
    NotShuffled,
)
from .models import LIVE_STATUSES, QueueEntry
from .services import queue_kick

logger = logging.getLogger("ticketwar.queueing")

SCHEME = "ticketwar draw v2"
# 12 hex digits = 48 bits: a collision among even 100,000 entries is ~1 in 56,000, and the
# order stays well defined then (a tie sorts by the pseudonym itself, then by the entry's id).
PSEUDONYM_LENGTH = 12
BEACON_MAX_LENGTH = 256

_RANK_SQL = """
UPDATE ticket_queue AS q
-- A pre-queue entry waits from the draw, not from the moment someone pressed early: queue delay
-- (health, monitoring) measures from created_at, and the wait for the public value is not the
-- queue's.
SET sort_key = v.rank, prequeue = false, created_at = GREATEST(q.created_at, %(now)s)
FROM unnest(%(ids)s::bigint[], %(ranks)s::bigint[]) AS v(id, rank)
WHERE q.id = v.id
"""


# --- the rule: the same in tools/verify_draw.py (standard library only), tested as twins ----


def pseudonym_for(public_id: uuid.UUID | str) -> str:
    """The public, unlinkable name of a pre-queue entry: first 12 hex of sha256(queue id).

    The student knows their queue id (the claim's answer, the waiting page's address), so they
    can compute it themselves and find it in the frozen list.
    """
    return hashlib.sha256(str(public_id).encode("ascii")).hexdigest()[:PSEUDONYM_LENGTH]


def utc_stamp(moment: datetime | None) -> str:
    """``2026-11-26T12:00:00Z``, or "" for none: the time as it is hashed and published."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def freeze_text(*, commitment: str, beacon_source: str, beacon_due_at: str, entries: list[str]) -> str:
    """What the freeze fixes, one item a line: the hashed form of the published freeze."""
    lines = [
        SCHEME,
        f"commitment {commitment}",
        f"beacon-source {beacon_source}",
        f"beacon-due {beacon_due_at}",
        f"entries {len(entries)}",
        *entries,
    ]
    return "\n".join(lines) + "\n"


def freeze_hash(**published) -> str:
    return hashlib.sha256(freeze_text(**published).encode("utf-8")).hexdigest()


def draw_key(*, seed: str, freeze_hash: str, beacon: str) -> bytes:
    """The draw's key: seed, frozen list and public value together (an HMAC keyed by the seed)."""
    message = f"{SCHEME}\n{freeze_hash}\n{beacon}".encode()
    return hmac.new(seed.encode("ascii"), message, hashlib.sha256).digest()


def draw_order(*, seed: str, freeze_hash: str, beacon: str, entries: list[str]) -> list[str]:
    """The drawn order: the frozen pseudonyms sorted by HMAC-SHA256(key, pseudonym)."""
    key = draw_key(seed=seed, freeze_hash=freeze_hash, beacon=beacon)
    return sorted(entries, key=lambda p: (hmac.new(key, p.encode("ascii"), hashlib.sha256).hexdigest(), p))


# --- the steps -------------------------------------------------------------------------------


def _published_freeze(event: Event, entries: list[str]) -> dict:
    return {
        "commitment": event.draw_commitment,
        "beacon_source": event.draw_beacon_source,
        "beacon_due_at": utc_stamp(event.draw_beacon_due_at),
        "entries": entries,
    }


def draw_freeze(*, event_id: int, now: datetime | None = None) -> bool:
    """Freeze a shuffled event's pre-queue at opening: its sorted pseudonyms and their hash.

    Exactly once per event: the event row is locked (``FOR UPDATE``, which also waits for every
    claim whose INSERT is under way: the enqueue reads the freeze under ``FOR SHARE`` in the same
    statement, so a claim is either in the frozen list or queues behind it, never lost between)
    and ``draw_frozen_at`` re-checked under the lock. Returns True when this call froze it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        event = (
            Event.objects.select_for_update()
            .filter(pk=event_id, opening_mode=Event.OpeningMode.SHUFFLE_AT_OPEN, draw_frozen_at__isnull=True)
            .filter(draw_revealed_at__isnull=True, claim_opens_at__lte=now)
            .first()
        )
        if event is None:
            return False
        public_ids = QueueEntry.objects.filter(event_id=event_id, prequeue=True, status__in=LIVE_STATUSES)
        entries = sorted(pseudonym_for(p) for p in public_ids.values_list("public_id", flat=True))
        Event.objects.filter(pk=event_id).update(
            draw_frozen_at=now,
            draw_entries=entries,
            draw_freeze_hash=freeze_hash(**_published_freeze(event, entries)),
            updated_at=now,
        )
        transaction.on_commit(lambda: invalidate_event(event_id))
    logger.info("pre-queue of event %s frozen: %s entries", event_id, len(entries))
    return True


def clean_beacon(value: str) -> str:
    """The value as entered, without surrounding spaces; ``BadBeacon`` unless 1-256 printable characters."""
    value = (value or "").strip()
    if not value or len(value) > BEACON_MAX_LENGTH or any(unicodedata.category(c)[0] == "C" for c in value):
        raise BadBeacon()
    return value


def draw_enter_beacon(
    *, event_id: int, value: str, user_id: int | None, source: str = "", now: datetime | None = None
) -> Event:
    """Record the public random value of a frozen draw (the organiser, in the admin); once only.

    Refused before the freeze (``NotFrozen``: a value known before the list is fixed would let
    whoever knows the seed choose entries), before the announced time (``BeaconNotDue``), or a
    second time (``BeaconAlreadyEntered``). ``source`` is asked for only if none was announced;
    such a late source is visible to everyone (it no longer matches the freeze hash). After
    commit a queue worker is woken: it makes the draw.
    """
    now = now or timezone.now()
    value = clean_beacon(value)
    with transaction.atomic():
        event = Event.objects.select_for_update().filter(pk=event_id).first()
        if event is None or not event.is_shuffled:
            raise NotShuffled()
        if event.draw_beacon:
            raise BeaconAlreadyEntered()
        if event.draw_frozen_at is None:
            raise NotFrozen()
        if event.draw_beacon_due_at is not None and now < event.draw_beacon_due_at:
            raise BeaconNotDue()
        # Never before the freeze, even with one server's clock behind the worker's that froze it.
        entered_at = max(now, event.draw_frozen_at)
        fields = {"draw_beacon": value, "draw_beacon_entered_at": entered_at, "draw_beacon_entered_by_id": user_id}
        if not event.draw_beacon_source:
            if not source.strip():
                raise BeaconSourceMissing()
            fields["draw_beacon_source"] = source.strip()[:300]
        Event.objects.filter(pk=event_id).update(updated_at=now, **fields)
        transaction.on_commit(queue_kick)
    logger.info("public random value of event %s entered by user %s", event_id, user_id)
    return Event.objects.get(pk=event_id)


def draw_make(*, event_id: int, now: datetime | None = None) -> bool:
    """Make the draw of a frozen pre-queue whose public value is in: rank it, reveal the seed.

    Exactly once per event (event row locked, ``draw_revealed_at`` re-checked). The order comes
    from the *frozen* list only: the live pre-queue entries are matched to it by pseudonym and
    ranked ``-n .. -1``, ahead of every later arrival (whose sort key is its id). An entry whose
    pseudonym is not in the frozen list (its id changed after the freeze) is not ranked: it
    queues behind, as a later arrival. Returns True when this call made the draw.
    """
    now = now or timezone.now()
    with transaction.atomic():
        event = (
            Event.objects.select_for_update()
            .filter(pk=event_id, draw_frozen_at__isnull=False, draw_revealed_at__isnull=True)
            .exclude(draw_beacon="")
            .first()
        )
        if event is None:
            return False
        entries = list(event.draw_entries)
        order = draw_order(
            seed=event.draw_seed, freeze_hash=event.draw_freeze_hash, beacon=event.draw_beacon, entries=entries
        )
        rows = QueueEntry.objects.filter(event_id=event_id, prequeue=True, status__in=LIVE_STATUSES)
        by_pseudonym: dict[str, list[int]] = {}
        for entry_id, public_id in rows.values_list("id", "public_id"):
            by_pseudonym.setdefault(pseudonym_for(public_id), []).append(entry_id)
        ids = [entry_id for p in dict.fromkeys(order) for entry_id in sorted(by_pseudonym.pop(p, []))]
        strays = [entry_id for found in by_pseudonym.values() for entry_id in found]
        if strays:
            logger.error(
                "event %s: pre-queue entries %s are not in the frozen list; queued behind it", event_id, strays
            )
        n = len(ids)
        with connection.cursor() as cursor:
            cursor.execute(_RANK_SQL, {"ids": ids, "ranks": [rank - n for rank in range(n)], "now": now})
        QueueEntry.objects.filter(id__in=strays).update(prequeue=False)
        Event.objects.filter(pk=event_id).update(draw_revealed_at=now, draw_order=order, updated_at=now)
        transaction.on_commit(lambda: _after_draw(event_id))
    logger.info("draw made for event %s: %s pre-queue entries", event_id, n)
    return True


def _after_draw(event_id: int) -> None:
    invalidate_event(event_id)
    queue_kick()


def draw_due(*, now: datetime | None = None) -> list[int]:
    """Freeze every shuffled pre-queue whose window has opened; draw every one whose value is in.

    Called at the start of each queue drain (the 2-second beat tick included): one query when
    nothing is due. Returns the ids of the events frozen or drawn by this call.
    """
    now = now or timezone.now()
    due = Event.objects.filter(opening_mode=Event.OpeningMode.SHUFFLE_AT_OPEN, draw_revealed_at__isnull=True).filter(
        Q(draw_frozen_at__isnull=True, claim_opens_at__lte=now) | (Q(draw_frozen_at__isnull=False) & ~Q(draw_beacon=""))
    )
    done = []
    for event_id, frozen_at in list(due.values_list("id", "draw_frozen_at")):
        step = draw_make if frozen_at is not None else draw_freeze
        if step(event_id=event_id, now=now):
            done.append(event_id)
    return done


# --- while the value is awaited: the seats the pre-queue may still need -----------------------

_HOLD_SQL = """
SELECT count(*) FROM ticket_queue
WHERE event_id = %(event_id)s AND status IN ('pending', 'processing') AND (prequeue OR sort_key < 0)
"""


def prequeue_hold(event_id: int) -> int:
    """Seats a shuffled event keeps for its pre-queue when deciding claims that came after it.

    The pre-queue goes first: its live entries, drawn or still awaiting the draw (``prequeue``,
    or ranked with a negative sort key), each may still take a seat, so a later claim gets one
    only beyond them. This lets the queue decide later claims at once while the public value is
    awaited, without ever taking a seat the pre-queue could need; a seat the pre-queue leaves
    unused afterwards goes to the waiting list, in order. Locks the event row first (``FOR NO
    KEY UPDATE``, as the issuing does): a pre-queue decision under way commits before the count,
    so the count is exact. Call inside the deciding transaction, before issuing.
    """
    assert connection.in_atomic_block, "the count holds only under the event row's lock"
    Event.objects.select_for_update(no_key=True).filter(pk=event_id).values_list("id").first()
    with connection.cursor() as cursor:
        cursor.execute(_HOLD_SQL, {"event_id": event_id})
        return cursor.fetchone()[0]


# --- what everyone may see -------------------------------------------------------------------

ALGORITHM = (
    "freeze_hash = sha256(freeze text: scheme, commitment, beacon source, beacon due time, entries); "
    "key = HMAC-SHA256(seed, 'ticketwar draw v2\\n' + freeze_hash + '\\n' + beacon); "
    "order = entries sorted by HMAC-SHA256(key, pseudonym) (see tools/verify_draw.py)"
)
_LEGACY_ALGORITHM = "order = sorted(entries, key=lambda p: sha256((seed + p).encode()).hexdigest())"


def _iso(moment: datetime | None) -> str | None:
    return timezone.localtime(moment).isoformat() if moment else None


def draw_public(event: Event) -> dict:
    """The draw as anyone may see it, each step once it has happened (never the seed before the draw)."""
    revealed = event.draw_revealed_at is not None
    frozen = event.draw_frozen_at is not None
    if revealed and not frozen:
        # Made before the freeze and the public value existed (scheme 1): published as it was.
        return {
            "scheme": 1,
            "opening_mode": event.opening_mode,
            "commitment": event.draw_commitment,
            "claim_opens_at": _iso(event.claim_opens_at),
            "revealed_at": _iso(event.draw_revealed_at),
            "seed": event.draw_seed,
            "entries": list(event.draw_entries),
            "order": list(event.draw_order),
            "algorithm": _LEGACY_ALGORITHM,
        }
    return {
        "scheme": 2,
        "opening_mode": event.opening_mode,
        "commitment": event.draw_commitment,
        "claim_opens_at": _iso(event.claim_opens_at),
        "beacon_source": event.draw_beacon_source,
        "beacon_due_at": utc_stamp(event.draw_beacon_due_at) or None,
        "frozen_at": _iso(event.draw_frozen_at),
        "entries": list(event.draw_entries) if frozen else [],
        "freeze_hash": event.draw_freeze_hash or None,
        "beacon": event.draw_beacon or None,
        "beacon_entered_at": _iso(event.draw_beacon_entered_at),
        "revealed_at": _iso(event.draw_revealed_at),
        "seed": event.draw_seed if revealed else None,
        "order": list(event.draw_order) if revealed else [],
        "algorithm": ALGORITHM,
    }
