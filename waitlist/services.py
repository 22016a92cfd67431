"""Writes of the waiting list: join or opt out, offer freed seats, claim or pass offers.

One way onto a list: ``waitlist_join`` (one statement, for one student or many), whoever joins
them: a claim refused as sold out (``claims.services``: at the claim, or when the worker decides
it), or the student ticking the box (``waitlist_set_joined``). Who may join is the claim
policy's verdict read for the list (``join_refusal``).

Seat accounting: making an offer takes one seat from ``Event.remaining`` with the issuing
path's conditional UPDATE (``events.seats.seats_take``); the seat then belongs to the offer
until it is claimed (a ticket, no further change to ``remaining``), passed to the next
student (still held) or given back (``events.seats.seats_release``) when nobody is left or the
event has started. Each of these runs in one transaction holding the offer row's lock, so a held
seat is used at most once. Offers follow the list's order exactly: whatever offers a seat (a
fill, an expired offer passed on) holds the event's list lock (``_lock_list``) while it picks
the student. Seats freed anywhere are offered after their commit (``waitlist_offer_freed``,
named to ``events.seats`` by ``WaitlistConfig.ready``), and by the beat's sweep.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists
from django.urls import reverse
from django.utils import timezone

from common.errors import DomainError
from events.models import Event
from events.seats import seats_release, seats_take
from queueing.models import LIVE_STATUSES, QueueEntry
from tickets.exceptions import ClaimClosed, ClaimNotOpen, EventUnavailable, SoldOut
from tickets.models import Ticket
from tickets.policy import Standing, Verdict, claim_verdict, student_refusal
from tickets.selectors import active_ticket_of
from tickets.services import ticket_issue_held

from .exceptions import InQueue, NoOffer, OfferExpired, OfferNotFound, WaitlistNotOpen
from .models import WaitlistEntry
from .notify import notify_offer
from .standing import standing_of

logger = logging.getLogger("ticketwar.waitlist")

_PLACE_COLUMNS = "id, public_id, event_id, user_id, status, queue_public_id, created_at, offer_expires_at"

# The one INSERT into a waiting list: the students in the given order (ids follow it, and the id
# is the list's order), each with their place. A student already on the list, or who opted out
# (a ``left`` row), keeps their row: it is returned as it is. The rows inserted are invisible to
# the rest of the statement (one snapshot), so each part counts them apart: exactly one of the
# two gives a student's row, and those waiting ahead are the old rows plus the new ones.
_JOIN_SQL = f"""
WITH wanted AS (
    SELECT * FROM unnest(%(public_ids)s::uuid[], %(events)s::bigint[], %(users)s::bigint[], %(queue_ids)s::uuid[])
        WITH ORDINALITY AS v(public_id, event_id, user_id, queue_public_id, n)
), inserted AS (
    INSERT INTO waitlist_waitlistentry (public_id, event_id, user_id, status, queue_public_id, created_at)
    SELECT public_id, event_id, user_id, %(status)s, queue_public_id, %(now)s FROM wanted ORDER BY n
    ON CONFLICT (event_id, user_id) DO NOTHING
    RETURNING {_PLACE_COLUMNS}
), listed AS (
    SELECT {_PLACE_COLUMNS} FROM inserted
    UNION ALL
    SELECT {", ".join(f"w.{c}" for c in _PLACE_COLUMNS.split(", "))}
    FROM waitlist_waitlistentry AS w JOIN wanted AS v ON w.event_id = v.event_id AND w.user_id = v.user_id
)
SELECT listed.*,
    (SELECT count(*) FROM waitlist_waitlistentry AS a
     WHERE a.event_id = listed.event_id AND a.status = 'waiting' AND a.id < listed.id)
    + (SELECT count(*) FROM inserted AS i
       WHERE i.event_id = listed.event_id AND i.status = 'waiting' AND i.id < listed.id)
FROM listed
"""  # noqa: S608 - constant fragments, values are parameters


def waitlist_join(
    *,
    students: Sequence[tuple[int, int, uuid.UUID | None]],
    status: str = WaitlistEntry.Status.WAITING,
    now: datetime | None = None,
) -> dict[tuple[int, int], WaitlistEntry]:
    """Put students on their events' waiting lists, in the given order: the one way onto a list.

    ``students`` is ``[(event_id, user_id, queue_public_id)]`` (the claim refused, whose waiting
    page hears of an offer; None for none). ``status``: ``left`` records an opt-out instead. One
    statement whatever the number. Returns every student's row by ``(event_id, user_id)``, with
    ``waiting_ahead`` counted: the new ones, and as they were those already listed or opted out.
    No rule is checked here: the callers have asked the policy (``join_refusal``) or act on a
    refusal as sold out, which is the rule.
    """
    if not students:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            _JOIN_SQL,
            {
                "public_ids": [uuid.uuid4() for _ in students],
                "events": [s[0] for s in students],
                "users": [s[1] for s in students],
                "queue_ids": [s[2] for s in students],
                "status": status,
                "now": now or timezone.now(),
            },
        )
        rows = cursor.fetchall()
    names = _PLACE_COLUMNS.split(", ")
    listed = {}
    for row in rows:
        entry = WaitlistEntry(**dict(zip(names, row[:-1], strict=True)))
        entry._state.adding = False
        entry.waiting_ahead = row[-1]
        listed[(entry.event_id, entry.user_id)] = entry
    return listed


def join_refusal(verdict: Verdict, *, event: Event, now: datetime) -> DomainError | None:
    """Why the student may not join ``event``'s waiting list now, from their claim's verdict
    (``tickets.policy.claim_verdict``); None: they may.

    The list is a second chance after the queue, never a way around it: the student must be
    allowed a seat at all (the verdict's refusals about the student), have no claim of the event
    still in the queue (``InQueue``), and the event must be sold out through the queue or past
    its claim window, and not started (``WaitlistNotOpen``, 425 before claiming opens). Students
    refused as sold out meet all of this and join without asking.
    """
    if verdict.about_the_student:
        return verdict.refusal
    if verdict.entry is not None:
        return InQueue(
            queue_id=str(verdict.entry.public_id), url=reverse("claims:waiting", args=[verdict.entry.public_id])
        )
    if verdict.prequeue or isinstance(verdict.refusal, ClaimNotOpen):
        return WaitlistNotOpen(too_early=True)
    if isinstance(verdict.refusal, (SoldOut, ClaimClosed)) and now < event.starts_at:
        return None
    return WaitlistNotOpen()


def waitlist_set_joined(*, event_id: int, user_id: int, joined: bool, now: datetime | None = None) -> WaitlistEntry:
    """Opt in or out of the event's waiting list (the checkbox). Joining again goes to the end.

    Opting out is always possible (it only records the wish); joining, or joining again after
    opting out, is refused unless ``join_refusal`` lets them. A place already held (waiting,
    offered, claimed) is returned as is. Ticking the box again while the student's claim still
    waits in the queue withdraws the opt-out (so a sold-out answer puts them on the list as
    usual) but gives no place yet: ``InQueue``. Idempotent under concurrency: two joins at once
    give one row (the INSERT does nothing on conflict, then both lock and read the same row).
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
        if event is None:
            raise EventUnavailable()
        user = get_user_model().objects.filter(pk=user_id).first()
        verdict = claim_verdict(standing_of(user=user, event=event) if user else Standing(None), event=event, now=now)
        refusal = join_refusal(verdict, event=event, now=now)
        if isinstance(refusal, InQueue) and entry is not None:
            entry.delete()
            return refusal
        if refusal is not None:
            raise refusal
    queue_public_id = None
    if entry is not None:
        # Joining again after opting out: a new row (new id), so it does not jump the list.
        queue_public_id = entry.queue_public_id
        entry.delete()
    status = WaitlistEntry.Status.WAITING if joined else WaitlistEntry.Status.LEFT
    waitlist_join(students=[(event_id, user_id, queue_public_id)], status=status, now=now)
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
        held = active_ticket_of(event_id=event_id, user_id=entry.user_id) if user is not None else None
        if student_refusal(Standing(user, ticket=held)) is not None:
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
            open_to_list = Event.objects.filter(claim_opens_at__lte=now, starts_at__gt=now).exclude(
                _queue_waiting(event_id)
            )
            if not seats_take(event_id, now=now, among=open_to_list):
                return made
            _make_offer(entry, now)
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
    seats_release(event_id, now=now)


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


def waitlist_offer_freed(event_id: int) -> None:
    """After the commit of a change that freed seats of the event (``events.seats``, step 2): offer
    them at once if anyone waits. One indexed EXISTS when nobody does."""
    if WaitlistEntry.objects.filter(event_id=event_id, status=WaitlistEntry.Status.WAITING).exists():
        waitlist_fill(event_id=event_id)


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
