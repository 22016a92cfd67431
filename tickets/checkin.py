"""The door: checking a ticket in, from a scan answered online or from a door phone's offline scans.

One function decides every scan, ``_apply``; ``ticket_check_in`` (``POST /api/checkin/``) calls it
for one scan at the server's time, ``door_sync`` (``POST /api/door/<slug>/sync/``) for a phone's
batch of scans it admitted offline, at their own times, earliest first. Each scan is logged as a
``DoorScan``; a scan sent with a ``nonce`` is applied once, however often it is sent.

First scan wins: a ticket's admission (``admitted_at``, ``admitted_by``, ``admitted_device``) is
its earliest scan. A scan synced late but made before the recorded admission takes its place, and
the displaced one becomes a *door conflict* (the later of two phones let the same ticket in),
reported to the phone that made it (tickets.doorlist) and on the dashboard.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import PermissionDenied
from common.timefmt import short_local
from events.models import Event

from .codes import QR_PREFIX, normalize_redeem_code, ticket_id_from_qr
from .exceptions import CheckInEventUnknown, OutsideDoorWindow
from .models import DoorDevice, DoorScan, Ticket
from .rotating import ROTATING_PREFIX, ticket_id_from_rotating
from .selectors import door_window, may_check_in

# Longest input worth looking at: a QR payload is ~80 characters, a redeem code 8 (+ dashes).
CHECK_IN_MAX_CODE_LENGTH = 200
# A student card's barcode (Code 128) holds the NIM: 9 digits (accounts.models.nim_validator).
STUDENT_CARD_RE = re.compile(r"^[0-9]{9}$")
# What a phone may call itself and its scans (DoorScan's columns).
DEVICE_NAME_MAX = 40
DEVICE_ID_MAX = 64
NONCE_MAX = 64
METHODS = ("qr", "code", "card", "lookup", "")


class CheckIn:
    ADMITTED = DoorScan.Result.ADMITTED.value
    ALREADY_ADMITTED = DoorScan.Result.ALREADY_ADMITTED.value
    INVALID = DoorScan.Result.INVALID.value
    WRONG_EVENT = DoorScan.Result.WRONG_EVENT.value
    # A rotating-QR event's fixed code (redeem code, its barcode) may be a screenshot passed on:
    # it admits only once staff have compared the holder's name and NIM with the student ID.
    NEEDS_IDENTITY_CHECK = DoorScan.Result.NEEDS_IDENTITY_CHECK.value


class Reason:
    """Why a scan is ``invalid`` (the ``reason`` of the answer): the phone says it in words."""

    UNKNOWN = "unknown"
    RETURNED = "returned"
    CARD_NOT_ACCEPTED = "card_not_accepted"
    CARD_NO_TICKET = "card_no_ticket"
    OUTSIDE_DOOR_WINDOW = "outside_door_window"


@dataclass(frozen=True)
class Scan:
    """Where a scan comes from: the phone's id for it (``nonce``), the phone, and how it was read.

    ``scanned_at`` and ``offline`` are set for a scan the phone decided offline and syncs later.
    """

    nonce: str | None = None
    device_id: str = ""
    device_name: str = ""
    method: str = ""
    scanned_at: datetime | None = None
    offline: bool = False


@dataclass(frozen=True)
class CheckInResult:
    """What the door learns from one scan. ``ticket`` is None when no ticket was found."""

    result: str
    ticket: Ticket | None = None
    reason: str = ""
    # The phone let the holder in offline, but the ticket's admission is another scan or the
    # ticket was not valid: a door conflict.
    conflict: bool = False
    nonce: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def admitted_at(self) -> datetime | None:
        return self.ticket.admitted_at if self.ticket is not None else None

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer of ``POST /api/checkin/`` and of each synced scan (see docs/API.md)."""
        ticket = self.ticket
        admitted_at = self.admitted_at.isoformat() if self.admitted_at else None
        answer: dict[str, Any] = {
            "result": self.result,
            "reason": self.reason,
            "conflict": self.conflict,
            "ticket": None,
            "admitted_at": admitted_at,
        }
        if self.nonce is not None:
            answer["nonce"] = self.nonce
        if ticket is not None:
            holder = ticket.user
            by = ticket.admitted_by
            answer["ticket"] = {
                "redeem_code": ticket.redeem_code,
                "event": ticket.event.slug,
                "event_title": ticket.event.title,
                "holder_name": holder.full_name or holder.get_username(),
                "nim": holder.nim,
                "admitted_at": admitted_at,
                "admitted_by": (by.full_name or by.get_username()) if by is not None else None,
                "admitted_device": ticket.admitted_device or None,
            }
        return answer | self.extra


def _door_closed_message(event: Event, opens: datetime, closes: datetime, now: datetime) -> str:
    values = {"title": event.title, "opens": short_local(opens), "closes": short_local(closes)}
    if now < opens:
        return _("The door of %(title)s opens at %(opens)s (until %(closes)s).") % values
    return _("The door of %(title)s closed at %(closes)s.") % values


def door_event(event_slug: str) -> Event:
    """The published event at this door, or ``CheckInEventUnknown``."""
    event = (
        Event.objects.filter(slug=event_slug, status=Event.Status.PUBLISHED)
        .only("slug", "title", "starts_at", "door_opens_at", "rotating_qr", "door_accepts_student_card")
        .first()
    )
    if event is None:
        raise CheckInEventUnknown()
    return event


def check_door_staff(staff_user) -> None:
    if not may_check_in(staff_user):
        raise PermissionDenied(_("Only door staff can check tickets in."))


def _tickets():
    return Ticket.objects.select_related("event", "user", "admitted_by")


def _locked():
    """The ticket row, locked until the transaction ends (``_decide``): the scan's checks and its
    UPDATE see the same row, and a concurrent scan or give-back of the ticket waits for it."""
    return _tickets().select_for_update(of=("self",))


def _lookup(code: str, event: Event, now: datetime, *, trust_rotating: bool) -> tuple[Ticket | None, str, str]:
    """``(ticket, kind, reason)``: the ticket a scanned or typed code names (or None and why), and
    what the code was: ``qr`` (the fixed QR), ``rotating``, ``code`` (redeem code) or ``card``.
    The ticket row is locked (``_locked``): call inside a transaction.

    A forged QR costs no query. For an event with ``rotating_qr`` the fixed QR is refused (it may be
    a screenshot passed on). ``trust_rotating``: a rotating QR that staff matched with the student
    ID offline is found by its ticket id even when its 30-second code has since expired.
    """
    code = code.strip() if isinstance(code, str) else ""
    if not code or len(code) > CHECK_IN_MAX_CODE_LENGTH:
        return None, "", Reason.UNKNOWN
    if code.startswith(f"{ROTATING_PREFIX}."):
        ticket_id = ticket_id_from_rotating(code, now)
        if ticket_id is None and trust_rotating:
            ticket_id = _rotating_ticket_id(code)
        found = _locked().filter(pk=ticket_id, event__rotating_qr=True).first() if ticket_id else None
        return found, "rotating", "" if found else Reason.UNKNOWN
    if code.startswith(f"{QR_PREFIX}."):
        ticket_id = ticket_id_from_qr(code)
        found = _locked().filter(pk=ticket_id, event__rotating_qr=False).first() if ticket_id else None
        return found, "qr", "" if found else Reason.UNKNOWN
    if STUDENT_CARD_RE.match(code):
        if not event.door_accepts_student_card:
            return None, "card", Reason.CARD_NOT_ACCEPTED
        found = _locked().filter(event=event, user__nim=code, status=Ticket.Status.ACTIVE).first()
        return found, "card", "" if found else Reason.CARD_NO_TICKET
    redeem_code = normalize_redeem_code(code)
    found = _locked().filter(redeem_code=redeem_code).first() if redeem_code is not None else None
    return found, "code", "" if found else Reason.UNKNOWN


def _rotating_ticket_id(code: str) -> uuid.UUID | None:
    parts = code.split(".")
    try:
        return uuid.UUID(hex=parts[1]) if len(parts) == 3 else None
    except ValueError:
        return None


def ticket_check_in(
    *,
    code: str,
    staff_user,
    event_slug: str,
    identity_checked: bool = False,
    now: datetime | None = None,
    scan: Scan | None = None,
) -> CheckInResult:
    """Admit the holder of ``code`` (QR payload, redeem code or student card) at the door of
    ``event_slug``, exactly once.

    The door is bound to one event: a ticket of another event is ``wrong_event`` and is not
    admitted. Raises ``PermissionDenied`` unless ``staff_user`` holds ``tickets.can_check_in``
    (door staff, superusers), ``CheckInEventUnknown`` (no published event with that slug) or
    ``OutsideDoorWindow`` (``now`` outside ``selectors.door_window``: a ticket for next week's
    talk is not let in today, even at the right door) before looking at the code.

    Of any number of scanners racing on the same ticket exactly one gets ``admitted``, the others
    ``already_admitted`` (with when, by whom, on which phone): the ticket row is locked, and the
    admission is a conditional ``UPDATE ... WHERE status = 'active' AND admitted_at IS NULL``
    whose row count decides. A concurrent ``ticket_return`` holding the row lock is waited for
    (the ticket is then ``invalid``). Runs in autocommit: no outer transaction needed.

    For an event with ``rotating_qr`` the redeem code (typed, or read from its barcode) is
    ``needs_identity_check`` (holder's name and NIM, not admitted) unless ``identity_checked``:
    staff compared them with the student ID card and scan again confirming it. With
    ``door_accepts_student_card`` the card's barcode (the NIM) admits that student's ticket.
    ``scan.nonce``: a scan sent again with the same nonce gets the first answer, applied once.
    """
    check_door_staff(staff_user)
    now = now or timezone.now()
    event = door_event(event_slug)
    opens, closes = door_window(event)
    if not opens <= now < closes:
        raise OutsideDoorWindow(
            _door_closed_message(event, opens, closes, now),
            door_opens_at=opens.isoformat(),
            door_closes_at=closes.isoformat(),
        )
    return _apply(
        event=event, code=code, staff_user=staff_user, identity_checked=identity_checked, scan=scan or Scan(), now=now
    )


@dataclass(frozen=True)
class SyncedScan:
    """One scan a phone admitted offline, as it uploads it."""

    nonce: str
    code: str
    scanned_at: datetime
    method: str = ""
    identity_checked: bool = False


def door_sync(
    *,
    event_slug: str,
    staff_user,
    scans: Iterable[SyncedScan],
    device_id: str,
    device_name: str,
    clock_offset: timedelta = timedelta(0),
    waiting: int = 0,
    now: datetime | None = None,
) -> list[CheckInResult]:
    """Apply the scans a door phone admitted offline, in scan-time order; their answers, in that order.

    Each scan is applied at its own time (``scanned_at + clock_offset``, the phone's clock corrected
    by how far it was off when it sent the batch; never later than ``now``): first scan wins
    (``_apply``). A scan made outside the door window is ``invalid`` (reason
    ``outside_door_window``). Every scan the server does not answer ``admitted`` is a conflict: the
    phone let someone in whom the door should not have. One short transaction per scan, so a
    batch never holds many ticket locks at once; a batch cut off half-way is simply sent again
    (each scan's ``nonce`` makes that a no-op for those already applied).
    """
    check_door_staff(staff_user)
    now = now or timezone.now()
    event = door_event(event_slug)
    opens, closes = door_window(event)
    ordered = sorted(scans, key=lambda s: (s.scanned_at, s.nonce))
    # A retried batch: the scans already applied are answered from the log, in one query.
    known = {logged.nonce: logged for logged in _logged().filter(nonce__in=[s.nonce for s in ordered])}
    results = []
    for synced in ordered:
        if synced.nonce in known:
            results.append(_answer_of(known[synced.nonce]))
            continue
        scanned_at = min(synced.scanned_at + clock_offset, now)
        scan = Scan(
            nonce=synced.nonce,
            device_id=device_id,
            device_name=device_name,
            method=synced.method,
            scanned_at=scanned_at,
            offline=True,
        )
        outside = None if opens <= scanned_at < closes else Reason.OUTSIDE_DOOR_WINDOW
        results.append(
            _apply(
                event=event,
                code=synced.code,
                staff_user=staff_user,
                identity_checked=synced.identity_checked,
                scan=scan,
                now=now,
                refuse=outside,
                known_new=True,
            )
        )
    door_device_seen(
        event=event, device_id=device_id, name=device_name, staff_user=staff_user, waiting=waiting, now=now
    )
    return results


def door_device_seen(*, event: Event, device_id: str, name: str, staff_user, waiting: int, now: datetime) -> None:
    """Remember that this phone is at this door and how many scans wait on it (one upsert)."""
    if not device_id:
        return
    DoorDevice.objects.bulk_create(
        [
            DoorDevice(
                event=event, device_id=device_id, name=name or staff_user.get_username(), staff=staff_user,
                last_seen_at=now, waiting=max(0, waiting),
            )
        ],
        update_conflicts=True,
        unique_fields=["event", "device_id"],
        update_fields=["name", "staff", "last_seen_at", "waiting"],
    )  # fmt: skip


def _logged():
    return DoorScan.objects.select_related("ticket__event", "ticket__user", "ticket__admitted_by")


def _answer_of(logged: DoorScan) -> CheckInResult:
    """The answer given to a scan already applied (a retry), as it stands now."""
    return CheckInResult(logged.result, logged.ticket, logged.reason, logged.conflict, logged.nonce)


def _stored(nonce: str) -> CheckInResult | None:
    logged = _logged().filter(nonce=nonce).first()
    return _answer_of(logged) if logged is not None else None


def _apply(
    *,
    event: Event,
    code: str,
    staff_user,
    identity_checked: bool,
    scan: Scan,
    now: datetime,
    refuse: str | None = None,
    known_new: bool = False,
) -> CheckInResult:
    """Decide one scan at ``scan.scanned_at`` (or ``now``), admit if it should, log it; once per nonce.

    ``known_new``: the caller has just looked the nonce up in the log (a sync's batch).
    """
    if scan.nonce and not known_new:
        stored = _stored(scan.nonce)
        if stored is not None:
            return stored
    try:
        with transaction.atomic():
            outcome = _decide(
                event=event, code=code, staff_user=staff_user, identity_checked=identity_checked, scan=scan,
                now=now, refuse=refuse,
            )  # fmt: skip
            DoorScan.objects.create(
                event=event, ticket=outcome.ticket, staff=staff_user, device_id=scan.device_id,
                device_name=scan.device_name or staff_user.get_username()[:DEVICE_NAME_MAX], nonce=scan.nonce,
                method=scan.method, offline=scan.offline, scanned_at=scan.scanned_at or now, recorded_at=now,
                result=outcome.result, reason=outcome.reason, conflict=outcome.conflict, changed_at=now,
            )  # fmt: skip
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""
        # The same scan sent twice at once: the other request applied it first.
        if scan.nonce and constraint == "tickets_doorscan_nonce_unique":
            stored = _stored(scan.nonce)
            if stored is not None:
                return stored
        raise
    return outcome


def _decide(
    *,
    event: Event,
    code: str,
    staff_user,
    identity_checked: bool,
    scan: Scan,
    now: datetime,
    refuse: str | None,
) -> CheckInResult:
    """The answer to one scan; admits the ticket if that is the answer. Runs in ``_apply``'s transaction."""
    at = scan.scanned_at or now
    ticket, kind, reason = _lookup(code, event, at, trust_rotating=scan.offline and identity_checked)
    conflict = scan.offline  # until the ticket is admitted by this scan
    if ticket is None or ticket.status != Ticket.Status.ACTIVE:
        return CheckInResult(CheckIn.INVALID, None, reason or Reason.RETURNED, conflict, scan.nonce)
    if ticket.event_id != event.pk:
        return CheckInResult(CheckIn.WRONG_EVENT, ticket, "", conflict, scan.nonce)
    if refuse:
        return CheckInResult(CheckIn.INVALID, ticket, refuse, conflict, scan.nonce)
    needs_identity = event.rotating_qr and kind == "code" and not identity_checked
    if needs_identity and ticket.admitted_at is None:
        return CheckInResult(CheckIn.NEEDS_IDENTITY_CHECK, ticket, "", False, scan.nonce)
    # Online, the scan's time is now: whoever got here first holds the admission. A scan synced
    # late may have happened before the admission recorded so far (a phone that was offline).
    if ticket.admitted_at is not None and (not scan.offline or ticket.admitted_at <= at):
        return CheckInResult(CheckIn.ALREADY_ADMITTED, ticket, "", conflict, scan.nonce)
    if ticket.admitted_at is not None:
        # This scan came first: the admission recorded so far was the second time the ticket
        # went through a door.
        DoorScan.objects.filter(ticket_id=ticket.pk, result=CheckIn.ADMITTED).update(
            result=CheckIn.ALREADY_ADMITTED, conflict=True, changed_at=now
        )
    device = (scan.device_name or "")[:DEVICE_NAME_MAX]
    admitted = (
        Ticket.objects.filter(pk=ticket.pk, status=Ticket.Status.ACTIVE)
        .filter(Q(admitted_at__isnull=True) | Q(admitted_at__gt=at))
        .update(admitted_at=at, admitted_by=staff_user, admitted_device=device, changed_at=now)
    )
    assert admitted == 1, "the ticket row is locked: nothing else can have changed it"
    ticket.admitted_at, ticket.admitted_by, ticket.admitted_device, ticket.changed_at = at, staff_user, device, now
    return CheckInResult(CheckIn.ADMITTED, ticket, "", False, scan.nonce)
