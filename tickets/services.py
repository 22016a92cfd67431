"""Writes of the tickets app. ``ticket_issue`` (and its batch twin ``ticket_issue_many``) is the
one place a seat becomes a ticket."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import PermissionDenied
from events.models import Event

from .codes import QR_PREFIX, normalize_redeem_code, ticket_id_from_qr
from .exceptions import (
    CheckInEventUnknown,
    EventUnavailable,
    OutsideDoorWindow,
    ReturnClosed,
    SoldOut,
    TicketAlreadyReturned,
    TicketAlreadyUsed,
    TicketError,
    TicketNotFound,
)
from .models import Ticket
from .rotating import ROTATING_PREFIX, ticket_id_from_rotating
from .rows import insert_ticket, insert_tickets
from .rules import check_may_receive_id, claim_refusal_for, student_refusal, window_refusal
from .selectors import door_window, may_check_in
from .signals import seats_changed


def notify_seats_changed(event_id: int) -> None:
    """Send ``seats_changed`` after commit; every seat change calls this once (nothing is
    queued when no receiver listens)."""
    if seats_changed.has_listeners():
        transaction.on_commit(lambda: seats_changed.send(sender=Ticket, event_id=event_id))


def ticket_issue(*, event_id: int, user_id: int, now: datetime | None = None, keep: int = 0) -> Ticket:
    """Issue one ticket of ``event_id`` to ``user_id``, or raise why not.

    One short transaction: a conditional ``UPDATE ... SET remaining = remaining - 1 WHERE
    remaining > 0`` takes the seat (its row lock serialises concurrent issuers for the
    microseconds of the statement), then the ticket row is inserted. The partial unique
    constraint ``tickets_ticket_one_active_per_student_event`` rejects a second active
    ticket; the whole transaction, seat included, then rolls back. Safe to call from any
    number of threads, processes or workers at once. Must not be called inside an outer
    transaction that does network I/O. ``keep``: seats that must stay free for claims ranked
    ahead (a shuffled event's pre-queue, ``queueing.draw.prequeue_hold``); beyond them, sold out.
    """
    now = now or timezone.now()
    with transaction.atomic():
        event = Event.objects.filter(pk=event_id).first()
        if event is None:
            raise EventUnavailable()
        refusal = claim_refusal_for(event=event, user=get_user_model().objects.filter(pk=user_id).first(), now=now)
        if refusal is not None:
            raise refusal
        seats = Event.objects.filter(claim_opens_at__lte=now, claim_closes_at__gt=now)
        if not seats.take_seats(event_id, now=now, keep=keep):
            raise SoldOut()
        ticket = insert_ticket(event_id=event_id, user_id=user_id)
        notify_seats_changed(event_id)
    return ticket


def ticket_issue_many(
    *, event_id: int, user_ids: Sequence[int], now: datetime | None = None, keep: int = 0
) -> dict[int, Ticket | TicketError]:
    """Issue tickets of ``event_id`` to many students at once: the batch twin of ``ticket_issue``.

    Returns, per user id, the new ``Ticket`` or the refusal ``ticket_issue`` would have raised
    for that student alone, as an instance (not raised; instances may be shared): the
    ``tickets.rules`` of ``ticket_issue`` over the batch (``student_refusal`` per student, then the
    event's ``window_refusal``), or ``SoldOut`` beyond the seats left. Seats go in the order of
    ``user_ids`` (earlier first); duplicates count once.

    Four statements for any number of students: the event under a row lock, the students with
    whether each holds an active ticket, one conditional UPDATE taking ``min(remaining,
    eligible)`` seats (only while published and open, as in ``ticket_issue``; ``remaining``
    less the ``keep`` seats held for claims ranked ahead, as there), one INSERT.
    Seats-changed callbacks are registered once per call. Runs in the caller's transaction
    (its own if none) without a savepoint: if it raises, e.g. ``IntegrityError`` from
    ``tickets_ticket_one_active_per_student_event`` (a ticket inserted without the event lock,
    such as a waiting-list seat, for one of these students after the check), the caller must
    roll everything back, seats included.
    """
    now = now or timezone.now()
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return {}
    with transaction.atomic(savepoint=False):
        # Row lock until the caller commits: concurrent issuers of this event wait here, so
        # the seats counted below are still there when the UPDATE takes them. NO KEY: the lock
        # an UPDATE takes anyway, which lets claims and tickets referencing the event be
        # inserted meanwhile (their foreign-key check only needs KEY SHARE).
        event = Event.objects.select_for_update(no_key=True).filter(pk=event_id).first()
        if event is None:
            return dict.fromkeys(wanted, EventUnavailable())
        holds = Ticket.objects.filter(event_id=event_id, user_id=OuterRef("pk"), status=Ticket.Status.ACTIVE)
        users = {
            user.pk: user
            for user in get_user_model()
            .objects.filter(pk__in=wanted)
            .only("id", "is_active", "nim", "email_verified_at")
            .annotate(holds_ticket=Exists(holds))
        }
        outcomes: dict[int, Ticket | TicketError] = {}
        for user_id in wanted:
            user = users.get(user_id)
            refusal = student_refusal(user, held=user is not None and user.holds_ticket)
            if refusal is not None:
                outcomes[user_id] = refusal
        eligible = [user_id for user_id in wanted if user_id not in outcomes]
        refusal = window_refusal(event=event, now=now)
        if refusal is not None:
            return outcomes | dict.fromkeys(eligible, refusal)
        seats = max(0, min(event.remaining - keep, len(eligible)))
        taken = bool(seats) and Event.objects.filter(claim_opens_at__lte=now, claim_closes_at__gt=now).take_seats(
            event_id, seats, now=now, keep=keep
        )
        winners = eligible[:seats] if taken else []
        if winners:
            outcomes |= insert_tickets(event_id=event_id, user_ids=winners)
            notify_seats_changed(event_id)
        sold_out = SoldOut()
        outcomes |= {user_id: sold_out for user_id in eligible if user_id not in outcomes}
    return outcomes


def ticket_issue_held(*, event_id: int, user_id: int) -> Ticket:
    """Turn a seat already held for ``user_id`` (a waiting-list offer) into a ticket.

    The seat was taken from ``remaining`` when the offer was made (``Event.objects.take_seats``,
    as in ``ticket_issue``); this only checks the student and inserts the ticket. Call
    inside the caller's ``transaction.atomic`` that locks the offer row, so the held seat is
    used at most once. Raises ``NotEligible`` or ``AlreadyHasTicket``.
    """
    assert connection.in_atomic_block, "ticket_issue_held runs in the transaction that locks the offer"
    check_may_receive_id(event_id=event_id, user_id=user_id)
    ticket = insert_ticket(event_id=event_id, user_id=user_id)
    notify_seats_changed(event_id)
    return ticket


def ticket_return(*, ticket_id: uuid.UUID, user_id: int, now: datetime | None = None) -> Ticket:
    """Give a ticket back before the event starts: its seat returns to the pool.

    Only the holder (``user_id``) may return it, only while it is active, not yet used at the
    door and the event has not started. The row lock (``SELECT ... FOR UPDATE``) orders this
    against a concurrent door check-in of the same ticket: whichever commits first wins and
    the other sees its result (``ticket_check_in``'s conditional UPDATE waits for the lock and
    then finds the ticket returned; or this sees ``admitted_at`` set and refuses).
    Raises ``TicketNotFound``, ``TicketAlreadyReturned``, ``TicketAlreadyUsed`` or ``ReturnClosed``.
    """
    now = now or timezone.now()
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("event")
            .filter(pk=ticket_id, user_id=user_id)
            .first()
        )
        if ticket is None:
            raise TicketNotFound()
        if ticket.status != Ticket.Status.ACTIVE:
            raise TicketAlreadyReturned()
        if ticket.admitted_at is not None:
            raise TicketAlreadyUsed()
        if now >= ticket.event.starts_at:
            raise ReturnClosed()
        ticket.status = Ticket.Status.RETURNED
        ticket.returned_at = now
        ticket.save(update_fields=["status", "returned_at"])
        # The ticket row is locked and now returned, so this +1 runs exactly once per ticket;
        # the named check constraint keeps remaining <= capacity whatever happens.
        Event.objects.release_seats(ticket.event_id, now=now)
        notify_seats_changed(ticket.event_id)
    return ticket


# --- door check-in ---------------------------------------------------------------------


def _door_closed_message(event: Event, opens: datetime, closes: datetime, now: datetime) -> str:
    values = {
        "title": event.title,
        "opens": timezone.localtime(opens).strftime("%d.%m. %H:%M"),
        "closes": timezone.localtime(closes).strftime("%d.%m. %H:%M"),
    }
    if now < opens:
        return _("The door of %(title)s opens at %(opens)s (until %(closes)s).") % values
    return _("The door of %(title)s closed at %(closes)s.") % values


# Longest input worth looking at: a QR payload is ~80 characters, a redeem code 8 (+ dashes).
CHECK_IN_MAX_CODE_LENGTH = 200


class CheckIn:
    ADMITTED = "admitted"
    ALREADY_ADMITTED = "already_admitted"
    INVALID = "invalid"
    WRONG_EVENT = "wrong_event"
    # A rotating-QR event's fixed code (redeem code, its barcode) may be a screenshot passed on:
    # it admits only once staff have compared the holder's name and NIM with the student ID.
    NEEDS_IDENTITY_CHECK = "needs_identity_check"


@dataclass(frozen=True)
class CheckInResult:
    """What the door learns from one scan. ``ticket`` is None for ``invalid``."""

    result: str
    ticket: Ticket | None = None

    @property
    def admitted_at(self) -> datetime | None:
        return self.ticket.admitted_at if self.ticket is not None else None

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer of ``POST /api/checkin/`` (see docs/API.md)."""
        ticket = self.ticket
        admitted_at = self.admitted_at.isoformat() if self.admitted_at else None
        if ticket is None:
            return {"result": self.result, "ticket": None, "admitted_at": None}
        holder = ticket.user
        by = ticket.admitted_by
        return {
            "result": self.result,
            "ticket": {
                "redeem_code": ticket.redeem_code,
                "event": ticket.event.slug,
                "event_title": ticket.event.title,
                "holder_name": holder.full_name or holder.get_username(),
                "nim": holder.nim,
                "admitted_at": admitted_at,
                "admitted_by": (by.full_name or by.get_username()) if by is not None else None,
            },
            "admitted_at": admitted_at,
        }


def _lookup_for_check_in(code: str, now: datetime) -> tuple[Ticket | None, bool]:
    """``(ticket, fixed)``: the ticket a scanned or typed code names (or None), and whether the
    code is the ticket's fixed redeem code. A forged QR costs no query.

    For an event with ``rotating_qr`` the fixed QR is refused (it may be a screenshot passed
    on); the redeem code is found, and ``ticket_check_in`` asks for an identity check.
    """
    if not isinstance(code, str) or not code.strip() or len(code) > CHECK_IN_MAX_CODE_LENGTH:
        return None, False
    tickets = Ticket.objects.select_related("event", "user", "admitted_by")
    if code.strip().startswith(f"{ROTATING_PREFIX}."):
        ticket_id = ticket_id_from_rotating(code, now)
        found = tickets.filter(pk=ticket_id, event__rotating_qr=True).first() if ticket_id is not None else None
        return found, False
    if code.strip().startswith(f"{QR_PREFIX}."):
        ticket_id = ticket_id_from_qr(code)
        found = tickets.filter(pk=ticket_id, event__rotating_qr=False).first() if ticket_id is not None else None
        return found, False
    redeem_code = normalize_redeem_code(code)
    return (tickets.filter(redeem_code=redeem_code).first() if redeem_code is not None else None), True


def ticket_check_in(
    *, code: str, staff_user, event_slug: str, identity_checked: bool = False, now: datetime | None = None
) -> CheckInResult:
    """Admit the holder of ``code`` (QR payload or redeem code) at the door of ``event_slug``, exactly once.

    The door is bound to one event: a ticket of another event is ``wrong_event`` and is not
    admitted. Raises ``CheckInEventUnknown`` (no published event with that slug) or
    ``OutsideDoorWindow`` (``now`` outside ``selectors.door_window``: a ticket for next week's
    talk is not let in today, even at the right door) before looking at the code.

    Admission is one conditional ``UPDATE ... SET admitted_at, admitted_by WHERE id = ? AND
    status = 'active' AND admitted_at IS NULL`` whose row count decides: of any number of
    scanners racing on the same ticket exactly one gets ``admitted``, the others
    ``already_admitted`` (with when and by whom). It also waits for a concurrent
    ``ticket_return`` holding the row lock and then finds the ticket returned (``invalid``).
    Raises ``PermissionDenied`` unless ``staff_user`` holds ``tickets.can_check_in`` (door
    staff, superusers). Runs in autocommit: no outer transaction needed.

    For an event with ``rotating_qr`` the redeem code (typed, or read from its barcode) is
    ``needs_identity_check`` (holder's name and NIM, not admitted) unless ``identity_checked``:
    staff compared them with the student ID card and scan again confirming it.
    """
    if not may_check_in(staff_user):
        raise PermissionDenied("Only door staff can check tickets in.")
    now = now or timezone.now()
    event = (
        Event.objects.filter(slug=event_slug, status=Event.Status.PUBLISHED).only("slug", "title", "starts_at").first()
    )
    if event is None:
        raise CheckInEventUnknown()
    opens, closes = door_window(event)
    if not opens <= now < closes:
        raise OutsideDoorWindow(
            _door_closed_message(event, opens, closes, now),
            door_opens_at=opens.isoformat(),
            door_closes_at=closes.isoformat(),
        )
    ticket, fixed = _lookup_for_check_in(code, now)
    if ticket is None or ticket.status != Ticket.Status.ACTIVE:
        return CheckInResult(CheckIn.INVALID)
    if ticket.event_id != event.pk:
        return CheckInResult(CheckIn.WRONG_EVENT, ticket)
    if fixed and ticket.event.rotating_qr and not identity_checked and ticket.admitted_at is None:
        return CheckInResult(CheckIn.NEEDS_IDENTITY_CHECK, ticket)
    admitted = Ticket.objects.filter(pk=ticket.pk, status=Ticket.Status.ACTIVE, admitted_at__isnull=True).update(
        admitted_at=now, admitted_by=staff_user
    )
    # Re-read after the UPDATE: the winner sees its own write, a loser sees the winner's
    # (time and staff) or the return that beat it.
    ticket = Ticket.objects.select_related("event", "user", "admitted_by").get(pk=ticket.pk)
    if admitted == 1:
        return CheckInResult(CheckIn.ADMITTED, ticket)
    if ticket.status != Ticket.Status.ACTIVE:
        return CheckInResult(CheckIn.INVALID)
    return CheckInResult(CheckIn.ALREADY_ADMITTED, ticket)
