"""Reads of the door: the door list a phone keeps for deciding offline, and the door's figures.

The door list holds, per active ticket of one event, what a phone needs to recognise its codes
offline and to show who it is: the first 16 hex digits of the ticket id (the QR payloads carry the
id; 64 bits tell 5,000 tickets apart and cannot be guessed), the redeem code (typed, or read from
its Code 128 barcode), the holder's NIM (the student card) and name, and the admission (time and
phone). Rows are arrays, not objects, so 500 tickets weigh about 40 KB (docs/BENCHMARKS.md).

Deltas: a phone sends back the ``cursor`` of its last answer and gets the tickets changed since
(``Ticket.changed_at``), ``DELTA_OVERLAP`` earlier: a ticket written by a transaction that began
before the cursor but committed after it is still sent. Rows are idempotent (the phone replaces
a ticket by id), so sending one twice costs nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q
from django.utils import timezone

from events.models import Event

from .models import DoorDevice, DoorScan, Ticket
from .selectors import door_window

# Covers the longest transaction that writes a ticket (a claim batch, a check-in: milliseconds)
# and the clock differences between web servers, many times over.
DELTA_OVERLAP = timedelta(seconds=30)
TICKET_ID_DIGITS = 16
FIELDS = ["id", "code", "nim", "name", "admitted_at", "admitted_by"]
RECENT_CONFLICTS = 20


def cursor_of(now: datetime) -> str:
    """The cursor a phone sends back: the server's time in milliseconds."""
    return str(int(now.timestamp() * 1000))


def parse_cursor(value: str | None) -> datetime | None:
    """The time a cursor stands for; None for none or nonsense (the phone then gets the full list)."""
    if not value or not value.isdigit() or len(value) > 16:
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.get_current_timezone())
    except (OverflowError, OSError, ValueError):
        return None


def event_for_door(event: Event) -> dict[str, Any]:
    opens, closes = door_window(event)
    return {
        "slug": event.slug,
        "title": event.title,
        "starts_at": event.starts_at.isoformat(),
        "door_opens_at": opens.isoformat(),
        "door_closes_at": closes.isoformat(),
        "rotating_qr": event.rotating_qr,
        "accepts_student_card": event.door_accepts_student_card,
    }


def _row(values: tuple) -> list:
    ticket_id, code, nim, full_name, username, admitted_at, device, staff_name, staff_username = values
    return [
        ticket_id.hex[:TICKET_ID_DIGITS],
        code,
        nim or "",
        full_name or username,
        int(admitted_at.timestamp()) if admitted_at else 0,
        (device or staff_name or staff_username or "") if admitted_at else "",
    ]


def door_list(*, event: Event, since: datetime | None, device_id: str = "", now: datetime | None = None) -> dict:
    """The door list of ``event`` (``since`` None), or what changed since ``since``.

    A delta lists changed active tickets under ``tickets`` and given-back ones under ``gone``;
    ``conflicts`` are this phone's (``device_id``) scans that turned out to be door conflicts.
    """
    now = now or timezone.now()
    tickets = Ticket.objects.filter(event=event)
    if since is None:
        tickets = tickets.filter(status=Ticket.Status.ACTIVE)
    else:
        tickets = tickets.filter(changed_at__gte=since - DELTA_OVERLAP)
    columns = ("id", "redeem_code", "user__nim", "user__full_name", "user__username", "admitted_at",
               "admitted_device", "admitted_by__full_name", "admitted_by__username", "status")  # fmt: skip
    rows, gone = [], []
    for values in tickets.order_by("issued_at").values_list(*columns):
        if values[-1] == Ticket.Status.ACTIVE:
            rows.append(_row(values[:-1]))
        else:
            gone.append(values[0].hex[:TICKET_ID_DIGITS])
    return {
        "event": event_for_door(event),
        "cursor": cursor_of(now),
        "full": since is None,
        "fields": FIELDS,
        "tickets": rows,
        "gone": gone,
        "conflicts": device_conflicts(event=event, device_id=device_id, since=since),
        "server_time": now.isoformat(),
    }


def conflict_as_dict(scan: DoorScan) -> dict[str, Any]:
    ticket = scan.ticket
    holder = ticket.user if ticket is not None else None
    return {
        "nonce": scan.nonce,
        "device": scan.device_name,
        "scanned_at": scan.scanned_at.isoformat(),
        "reason": scan.reason,
        "holder_name": (holder.full_name or holder.get_username()) if holder else None,
        "nim": holder.nim if holder else None,
        "admitted_at": ticket.admitted_at.isoformat() if ticket and ticket.admitted_at else None,
        "admitted_by": (ticket.admitted_device or None) if ticket and ticket.admitted_at else None,
    }


def _conflicts(event: Event):
    return (
        DoorScan.objects.filter(event=event, conflict=True)
        .select_related("ticket__user")
        .order_by("-changed_at", "-id")
    )


def device_conflicts(*, event: Event, device_id: str, since: datetime | None) -> list[dict[str, Any]]:
    """The door conflicts of one phone's own scans (changed since ``since``, if given)."""
    if not device_id:
        return []
    scans = _conflicts(event).filter(device_id=device_id)
    if since is not None:
        scans = scans.filter(changed_at__gte=since - DELTA_OVERLAP)
    return [conflict_as_dict(scan) for scan in scans[:200]]


def door_figures(*, event: Event, now: datetime | None = None) -> dict[str, Any]:
    """The door's live figures: admitted vs issued, arrivals per minute, per phone, scans waiting
    to sync (as each phone last reported), conflicts. Four queries."""
    now = now or timezone.now()
    counts = Ticket.objects.filter(event=event, status=Ticket.Status.ACTIVE).aggregate(
        issued=Count("id"),
        admitted=Count("id", filter=Q(admitted_at__isnull=False)),
        last_minute=Count("id", filter=Q(admitted_at__gt=now - timedelta(minutes=1), admitted_at__lte=now)),
        last_five=Count("id", filter=Q(admitted_at__gt=now - timedelta(minutes=5), admitted_at__lte=now)),
    )
    phones: dict[str, dict[str, Any]] = {}
    blank = {"scans": 0, "admitted": 0, "offline": 0, "conflicts": 0, "waiting": 0, "last_scan_at": None,
             "last_seen_at": None}  # fmt: skip
    per_device = (
        DoorScan.objects.filter(event=event)
        .values("device_id", "device_name")
        .annotate(
            scans=Count("id"),
            admitted=Count("id", filter=Q(result=DoorScan.Result.ADMITTED)),
            offline=Count("id", filter=Q(offline=True)),
            conflicts=Count("id", filter=Q(conflict=True)),
            last_scan_at=Max("scanned_at"),
        )
        .order_by("device_name")
    )
    for row in per_device:
        key = row["device_id"] or row["device_name"]
        phone = phones.setdefault(key, {"name": row["device_name"], **blank})
        for name in ("scans", "admitted", "offline", "conflicts"):
            phone[name] += row[name]
        last = row["last_scan_at"].isoformat()
        phone["last_scan_at"] = max(phone["last_scan_at"] or last, last)
    for device in DoorDevice.objects.filter(event=event).only("device_id", "name", "waiting", "last_seen_at"):
        phone = phones.setdefault(device.device_id, {"name": device.name, **blank})
        phone.update(name=device.name, waiting=device.waiting, last_seen_at=device.last_seen_at.isoformat())
    recent = [conflict_as_dict(scan) for scan in _conflicts(event)[:RECENT_CONFLICTS]]
    return {
        "issued": counts["issued"],
        "admitted": counts["admitted"],
        "arrivals_last_minute": counts["last_minute"],
        "arrivals_per_minute_5": round(counts["last_five"] / 5, 1),
        "waiting_to_sync": sum(phone.get("waiting", 0) for phone in phones.values()),
        "conflicts": sum(phone["conflicts"] for phone in phones.values()),
        "phones": sorted(phones.values(), key=lambda phone: phone["name"]),
        "recent_conflicts": recent,
        "time": now.isoformat(),
    }
