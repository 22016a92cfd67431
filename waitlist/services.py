"""Writes of the waiting list: join, opt out, offer freed seats, claim or pass offers.

Seat accounting: making an offer takes one seat from ``Event.remaining`` with the issuing
path's conditional UPDATE (``Event.objects.take_seats``); the seat then belongs to the offer
until it is claimed (a ticket, no further change to ``remaining``), passed to the next
student (still held) or given back (``Event.objects.release_seats``) when nobody is left or the event
has started. Each of these runs in one transaction holding the offer row's lock, so a held
seat is used at most once. Offers follow the list's order exactly: whatever offers a seat (a
fill, an expired offer passed on) holds the event's list lock (``_lock_list``) while it picks
the student.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists
from django.urls import reverse
from django.utils import timezone

from events.models import Event
from queueing.models import LIVE_STATUSES, QueueEntry
from queueing.selectors import live_entry_of
from tickets.exceptions import EventUnavailable, NotEligible, TicketError
from tickets.models import Ticket
from tickets.rules import check_may_receive
from tickets.services import notify_seats_changed, ticket_issue_held

from .exceptions import InQueue, NoOffer, OfferExpired, OfferNotFound, WaitlistNotOpen
from .models import WaitlistEntry
from .notify import notify_offer
from .selectors import waitlist_place

logger = logging.getLogger("ticketwar.waitlist")

_ENROL_SQL = """
INSERT INTO waitlist_waitlistentry (public_id, event_id, user_id, status, queue_public_id, created_at)
SELECT v.public_id, v.event_id, v.user_id, 'waiting', v.queue_public_id, %(now)s
FROM unnest(%(public_ids)s::uuid[], %(events)s::bigint[], %(users)s::bigint[], %(queue_ids)s::uuid[])
     WITH ORDINALITY AS v(public_id, event_id, user_id, queue_public_id, n)
ORDER BY v.n
ON CONFLICT (event_id, user_id) DO NOTHING
"""


def waitlist_enrol_many(*, entries: list[tuple[int, int, uuid.UUID | None]], now: datetime | None = None) -> None:
    """Put students refused as sold out on their events' waiting lists, in the given order.

    ``entries`` is ``[(event_id, user_id, queue_public_id)]`` in queue order. A student
    already on the list, or who opted out (a ``left`` row), is left as is.
    """
    if not entries:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _ENROL_SQL,
            {
                "now": now or timezone.now(),
                "public_ids": [uuid.uuid4() for _ in entries],
                "events": [e[0] for e in entries],
                "users": [e[1] for e in entries],
                "queue_ids": [e[2] for e in entries],
            },
        )


# One student, one round trip: join (or find the row already there: the INSERT's row is not
# visible to the same statement's SELECT, so exactly one of the two gives it) and count the
# students waiting ahead. Sold-out claims arrive by the hundred in the same second.
_ENROL_ONE_SQL = """
WITH inserted AS (
    INSERT INTO waitlist_waitlistentry (public_id, event_id, user_id, status, queue_public_id, created_at)
    VALUES (%(public_id)s, %(event_id)s, %(user_id)s, 'waiting', %(queue_public_id)s, %(now)s)
    ON CONFLICT (event_id, user_id) DO NOTHING
    RETURNING id, public_id, status, offer_expires_at
), row AS (
    SELECT id, public_id, status, offer_expires_at FROM inserted
    UNION ALL
    SELECT id, public_id, status, offer_expires_at FROM waitlist_waitlistentry
    WHERE event_id = %(event_id)s AND user_id = %(user_id)s
)
SELECT row.id, row.public_id, row.status, row.offer_expires_at,
       (SELECT count(*) FROM waitlist_waitlistentry AS w
        WHERE w.event_id = %(event_id)s AND w.status = 'waiting' AND w.id < row.id)
FROM row LIMIT 1
"""


def waitlist_enrol(*, event_id: int, user_id: int, queue_public_id: uuid.UUID | None = None) -> dict | None:
    """Join one student (refused as sold out); their place as a dict, None if they opted out.

    ``waitlist_place`` of the row, with the row and the count of those ahead in one statement.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _ENROL_ONE_SQL,
            {
                "public_id": uuid.uuid4(),
                "event_id": event_id,
                "user_id": user_id,
                "queue_public_id": queue_public_id,
                "now": timezone.now(),
            },
        )
        row = cursor.fetchone()
    if row is None or row[2] == WaitlistEntry.Status.LEFT:
        return None
    entry_id, public_id, status, offer_expires_at, ahead = row
    entry = WaitlistEntry(id=entry_id, public_id=public_id, status=status, offer_expires_at=offer_expires_at)
    return waitlist_place(entry, waiting_ahead=ahead)


def check_may_join(*, event: Event, user, now: datetime | None = None) -> None:
    """Raise unless ``user`` may join ``event``'s waiting list now.

    The list is a second chance after the queue, never a way around it: the student must be
    allowed a seat at all (``tickets.rules.check_may_receive``: verified, active, no ticket
    of the event), have no claim of it still in the queue (``InQueue``), and the event must be
    sold out through the queue or past its claim window, and not started (``WaitlistNotOpen``,
    425 before claiming opens). Students refused as sold out by the queue meet all of this and
    are enrolled without asking (``waitlist_enrol``, ``waitlist_enrol_many``).
    """
    now = now or timezone.now()
    check_may_receive(event_id=event.id, user=user)
    live = live_entry_of(user_id=user.pk, event_id=event.id)
    if live is not None:
        raise InQueue(queue_id=str(live.public_id), url=reverse("queueing:waiting", args=[live.public_id]))
    state = event.claim_state(now)
    if state == Event.ClaimState.NOT_OPEN:
        raise WaitlistNotOpen(too_early=True)
    if state not in (Event.ClaimState.SOLD_OUT, Event.ClaimState.CLOSED) or now >= event.starts_at:
        raise WaitlistNotOpen()


_JOIN_SQL = """
INSERT INTO waitlist_waitlistentry (public_id, event_id, user_id, status, queue_public_id, created_at)
VALUES (%(public_id)s, %(event_id)s, %(user_id)s, %(status)s, %(queue_public_id)s, %(now)s)
ON CONFLICT (event_id, user_id) DO NOTHING
"""


def waitlist_set_joined(*, event_id: int, user_id: int, joined: bool, now: datetime | None = None) -> WaitlistEntry:
    """Opt in or out of the event's waiting list (the checkbox). Joining again goes to the end.

    Opting out is always possible (it only records the wish); joining, or joining again after
    opting out, is refused unless ``check_may_join``. A place already held (waiting, offered,
    claimed) is returned as is. Ticking the box again while the student's claim still waits in
    the queue withdraws the opt-out (so a sold-out answer enrols them as usual) but gives no
    place yet: ``InQueue``. Idempotent under concurrency: two joins at once give one row (the
    INSERT does nothing on conflict, then both lock and read the same row).
    """
    now = now or timezone.now()
    with transaction.atomic():
        outcome = _set_joined(event_id=event_id, user_id=user_id, joined=joined, now=now)
    if isinstance(outcome, InQueue):
        raise outcome  # after commit: the withdrawn opt-out stays withdrawn
    return outcome


def _set_joined(*, event_id: int, user_id: int, joined: bool, now: datetime) -> WaitlistEntry | InQueue:
    """The body of ``waitlist_set_joined``, in its transaction (a refusal is returned, not raised,
    when the transaction must still commit)."""
    entry = WaitlistEntry.objects.select_for_update().filter(event_id=event_id, user_id=user_id).first()
    if entry is not None and not (joined and entry.status == WaitlistEntry.Status.LEFT):
        if not joined and entry.status == WaitlistEntry.Status.WAITING:
            entry.status = WaitlistEntry.Status.LEFT
            entry.decided_at = now
            entry.save(update_fields=["status", "decided_at"])
        return entry
    if joined:
        event = Event.objects.filter(pk=event_id).first()
        user = get_user_model().objects.filter(pk=user_id).first()
        if event is None:
            raise EventUnavailable()
        if user is None:
            raise NotEligible()
        try:
            check_may_join(event=event, user=user, now=now)
        except InQueue as refusal:
            if entry is None:
                raise
            entry.delete()
            return refusal
    queue_public_id = None
    if entry is not None:
        # Joining again after opting out: a new row (new id), so it does not jump the list.
        queue_public_id = entry.queue_public_id
        entry.delete()
    status = WaitlistEntry.Status.WAITING if joined else WaitlistEntry.Status.LEFT
    with connection.cursor() as cursor:
        cursor.execute(
            _JOIN_SQL,
            {
                "public_id": uuid.uuid4(),
                "event_id": event_id,
                "user_id": user_id,
                "status": status,
                "queue_public_id": queue_public_id,
                "now": now,
            },
        )
    # Ours, or the row a concurrent join committed while our INSERT waited for it.
    return WaitlistEntry.objects.select_for_update().get(event_id=event_id, user_id=user_id)


def _offer_minutes() -> timedelta:
    return timedelta(minutes=settings.WAITLIST_OFFER_MINUTES)


# The race this lock prevents: two fills of one event at once (a give-back's fill, the beat's
# sweep, an expired offer passed on) each took the first waiting entry the other had not locked
# (SKIP LOCKED). With one seat free, the second entry's fill could win it while the head's fill
# found no seat left: the head of the list was skipped. Holding this lock, one transaction at a
# time picks and offers for the event, so offers go out exactly in list order. It is
# transaction-scoped (released at commit or rollback) and held for one offer only: a few short
# statements, no network I/O (the e-mail and the push go after commit). A key of its own, not a
# lock on the event row, which every claim decision and seat change of the event updates.
_LOCK_LIST_SQL = "SELECT pg_advisory_xact_lock(hashtextextended('ticketwar.waitlist.fill', %s))"


def _lock_list(event_id: int) -> None:
    """Serialise everything that offers the event's freed seats (see ``_LOCK_LIST_SQL``)."""
    assert connection.in_atomic_block, "the list's lock lasts until the offer is committed"
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_LIST_SQL, [event_id])


def _next_waiting(event_id: int, now: datetime) -> WaitlistEntry | None:
    """Lock the head of the list: the first waiting entry whose student may still get a seat.

    Call inside a transaction holding ``_lock_list(event_id)``. One who may not any more (got
    a ticket meanwhile, account disabled) leaves the list (``left``) instead of being offered a
    seat they cannot use. The head is read, then locked by its id and checked again: a student
    opting out right then holds their row for a moment; we wait for them and move on to the
    next, never past someone still waiting (no SKIP LOCKED: that is what skipped the head).
    """
    assert connection.in_atomic_block, "the entry's lock must last until the offer is made"
    waiting = WaitlistEntry.objects.filter(event_id=event_id, status=WaitlistEntry.Status.WAITING)
    while True:
        head = waiting.order_by("id").values_list("id", flat=True).first()
        if head is None:
            return None
        entry = waiting.select_for_update().filter(pk=head).first()
        if entry is None:
            continue  # opted out (or offered) while we waited for its lock
        user = get_user_model().objects.filter(pk=entry.user_id).first()
        try:
            if user is None:
                raise NotEligible()
            check_may_receive(event_id=event_id, user=user)
        except TicketError:
            entry.status = WaitlistEntry.Status.LEFT
            entry.decided_at = now
            entry.save(update_fields=["status", "decided_at"])
            continue
        return entry


def _queue_waiting(event_id: int) -> Exists:
    """SQL condition: a claim of the event is still pending or processing in the queue.

    While it is, a freed seat belongs to the queue (its worker takes it within seconds), not
    to the waiting list: the list is the second chance after the queue, never ahead of it.
    """
    return Exists(QueueEntry.objects.filter(event_id=event_id, status__in=LIVE_STATUSES))


def _make_offer(entry: WaitlistEntry, now: datetime) -> None:
    entry.status = WaitlistEntry.Status.OFFERED
    entry.offered_at = now
    entry.offer_expires_at = now + _offer_minutes()
    entry.save(update_fields=["status", "offered_at", "offer_expires_at"])
    transaction.on_commit(lambda entry_id=entry.id: _announce_offer(entry_id))


def waitlist_fill(*, event_id: int, now: datetime | None = None) -> int:
    """Offer every free seat of the event to the next students on its list; returns offers made.

    Each offer is one transaction: take the event's list lock (``_lock_list``: one filler at a
    time, so offers follow the list), lock the head of the list (a student who may still get
    a seat), take a seat with the conditional UPDATE (the event must be published, its claim
    window opened, not started, and no claim of it pending or processing in the queue), mark
    the entry offered. No seat left, nobody waiting, claims still queued, or event started:
    nothing happens (the beat's sweep tries again once the queue has drained).
    """
    now = now or timezone.now()
    made = 0
    while True:
        with transaction.atomic():
            _lock_list(event_id)
            entry = _next_waiting(event_id, now)
            if entry is None:
                return made
            # The queue first: no offer before claiming opens nor while claims of the event
            # wait in the queue (checked in the same statement that takes the seat).
            taken = (
                Event.objects.filter(claim_opens_at__lte=now, starts_at__gt=now)
                .exclude(_queue_waiting(event_id))
                .take_seats(event_id, now=now)
            )
            if not taken:
                return made
            _make_offer(entry, now)
            notify_seats_changed(event_id)
        made += 1


def _pass_on(event_id: int, now: datetime) -> None:
    """The held seat of a finished offer goes to the next student, or back to the pool.

    Call inside the transaction that locked and closed the previous offer.
    """
    assert connection.in_atomic_block, "the held seat moves in the transaction that closed the offer"
    _lock_list(event_id)
    # The queue first (as in waitlist_fill): with claims of the event waiting there, the seat
    # goes back to the pool, where the worker takes it for the next claim.
    open_to_list = Event.objects.filter(pk=event_id, starts_at__gt=now).exclude(_queue_waiting(event_id)).exists()
    nxt = _next_waiting(event_id, now) if open_to_list else None
    if nxt is not None:
        _make_offer(nxt, now)
        return
    Event.objects.release_seats(event_id, now=now)
    notify_seats_changed(event_id)


def waitlist_expire_offers(*, now: datetime | None = None) -> int:
    """Close offers whose claim window ran out and pass each seat on. Returns offers closed."""
    now = now or timezone.now()
    closed = 0
    while True:
        with transaction.atomic():
            entry = (
                WaitlistEntry.objects.select_for_update(skip_locked=True)
                .filter(status=WaitlistEntry.Status.OFFERED, offer_expires_at__lte=now)
                .order_by("offer_expires_at", "id")
                .first()
            )
            if entry is None:
                return closed
            entry.status = WaitlistEntry.Status.EXPIRED
            entry.decided_at = now
            entry.save(update_fields=["status", "decided_at"])
            _pass_on(entry.event_id, now)
        closed += 1


def waitlist_claim(*, public_id: uuid.UUID | str, user_id: int, now: datetime | None = None) -> Ticket:
    """Claim the seat offered to ``user_id``: the held seat becomes their ticket.

    The offer row is locked for the whole transaction, so the claim and the expiry sweep (or
    a double click) cannot both use the seat. Raises ``OfferNotFound``, ``OfferExpired``,
    ``NoOffer``, or the ticket refusals of ``ticket_issue_held``.
    """
    now = now or timezone.now()
    try:
        public_id = uuid.UUID(str(public_id))
    except ValueError:
        raise OfferNotFound() from None
    with transaction.atomic():
        entry = WaitlistEntry.objects.select_for_update().filter(public_id=public_id, user_id=user_id).first()
        if entry is None:
            raise OfferNotFound()
        if entry.status == WaitlistEntry.Status.CLAIMED:
            return entry.ticket
        if entry.status == WaitlistEntry.Status.EXPIRED or (
            entry.status == WaitlistEntry.Status.OFFERED and entry.offer_expires_at <= now
        ):
            raise OfferExpired()
        if entry.status != WaitlistEntry.Status.OFFERED:
            raise NoOffer()
        if not Event.objects.filter(pk=entry.event_id, starts_at__gt=now).exists():
            raise EventUnavailable()
        ticket = ticket_issue_held(event_id=entry.event_id, user_id=user_id)
        entry.status = WaitlistEntry.Status.CLAIMED
        entry.ticket = ticket
        entry.decided_at = now
        entry.save(update_fields=["status", "ticket", "decided_at"])
    return ticket


def waitlist_on_seats_changed(sender: object, *, event_id: int, **kwargs: Any) -> None:
    """``tickets.signals.seats_changed`` receiver: a freed seat goes to the list at once if anyone waits.

    Runs after commit of every seat change; one indexed EXISTS when nobody waits.
    """
    try:
        if WaitlistEntry.objects.filter(event_id=event_id, status=WaitlistEntry.Status.WAITING).exists():
            waitlist_fill(event_id=event_id)
    except Exception:  # the beat's sweep offers the seat a few seconds later
        logger.warning("waiting list not filled for event %s", event_id, exc_info=True)


def waitlist_fill_all(*, now: datetime | None = None) -> int:
    """Beat sweep: fill every event that has free seats and students waiting."""
    now = now or timezone.now()
    event_ids = (
        WaitlistEntry.objects.filter(
            status=WaitlistEntry.Status.WAITING, event__remaining__gt=0, event__starts_at__gt=now
        )
        .values_list("event_id", flat=True)
        .distinct()
    )
    return sum(waitlist_fill(event_id=event_id, now=now) for event_id in list(event_ids))


def _announce_offer(entry_id: int) -> None:
    """After commit: tell the student (websocket if their waiting page is open, and e-mail)."""
    try:
        notify_offer(entry_id)
    except Exception:
        logger.warning("offer %s not announced", entry_id, exc_info=True)
