"""Writes of the events app: every change to an event goes through here.

Caches and pushes hang off ``events.signals.event_changed``: one signal, sent after commit.
``remaining`` is never set from outside; it moves only through ``events.seats`` (``seats_take``,
``seats_release``, ``seats_resize``: conditional UPDATEs with F() expressions, and what follows).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .exceptions import (
    CapacityBelowIssued,
    DrawLocked,
    DrawSettingsInvalid,
    EventError,
    EventNotFound,
    InvalidClaimWindow,
    OpeningModeLocked,
    SlugTaken,
)
from .models import SEAT_CONSTRAINTS, Event
from .seats import seats_resize
from .selectors import has_prequeue
from .signals import event_changed

# Every field an organiser sets, in the admin form's order (events/forms.py).
ORGANISER_FIELDS = (
    "slug",
    "title",
    "speaker",
    "description",
    "venue",
    "starts_at",
    "claim_opens_at",
    "claim_closes_at",
    "capacity",
    "status",
    "opening_mode",
    "draw_beacon_source",
    "draw_beacon_due_at",
    "rotating_qr",
    "door_opens_at",
    "door_accepts_student_card",
)
# What the freeze of a shuffled pre-queue fixes (queueing.draw.draw_freeze): its hash covers them.
DRAW_FIELDS = ("opening_mode", "draw_beacon_source", "draw_beacon_due_at")
# Those ``event_update`` sets directly: ``capacity`` moves ``remaining`` with it and ``status``
# has its own transitions (publish, cancel); ``remaining`` is managed here.
EDITABLE_FIELDS = tuple(name for name in ORGANISER_FIELDS if name not in ("capacity", "status"))


def _notify_event_changed(event_id: int) -> None:
    """Send ``event_changed`` after commit (nothing is queued when no receiver listens)."""
    if event_changed.has_listeners():
        transaction.on_commit(lambda: event_changed.send(sender=Event, event_id=event_id))


def validate_event_window(*, claim_opens_at: datetime, claim_closes_at: datetime, starts_at: datetime) -> None:
    """Raise ``InvalidClaimWindow`` unless opens < closes <= starts (mirrors the check constraints)."""
    if claim_opens_at >= claim_closes_at:
        raise InvalidClaimWindow(_("The claim window must open before it closes."))
    if claim_closes_at > starts_at:
        raise InvalidClaimWindow(_("The claim window must close no later than the event starts."))


def _to_the_second(moment: datetime | None) -> datetime | None:
    # The draw publishes (and hashes) this time to the second: keep it as published.
    return moment.replace(microsecond=0) if moment else None


def validate_event_draw(
    *, opening_mode: str, draw_beacon_source: str, draw_beacon_due_at: datetime | None, claim_opens_at: datetime
) -> None:
    """Raise ``DrawSettingsInvalid`` unless a shuffled opening names its public random value:
    a source, and a publication time after the claim window opens (so after the freeze)."""
    if opening_mode != Event.OpeningMode.SHUFFLE_AT_OPEN:
        return
    if not (draw_beacon_source or "").strip() or draw_beacon_due_at is None:
        raise DrawSettingsInvalid(
            _("A shuffled opening needs the public random value's source and the time it is published.")
        )
    if draw_beacon_due_at <= claim_opens_at:
        raise DrawSettingsInvalid(
            _("The public random value must be published after the claim window opens, not before.")
        )


def _raise_for_integrity(exc: IntegrityError) -> None:
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""
    if "slug" in constraint:
        raise SlugTaken(_("An event with this slug already exists.")) from None
    if "claim_window" in constraint or "closes_before_start" in constraint:
        raise InvalidClaimWindow(_("The claim window must open before it closes, and close by the start.")) from None
    if constraint in SEAT_CONSTRAINTS:
        raise CapacityBelowIssued(_("The capacity cannot be lower than the tickets already issued.")) from None
    raise exc


def event_create(
    *,
    slug: str,
    title: str,
    speaker: str,
    venue: str,
    starts_at: datetime,
    claim_opens_at: datetime,
    claim_closes_at: datetime,
    capacity: int,
    description: str = "",
    status: str = Event.Status.DRAFT,
    opening_mode: str = Event.OpeningMode.FIFO,
    draw_beacon_source: str = "",
    draw_beacon_due_at: datetime | None = None,
    rotating_qr: bool = False,
    door_opens_at: datetime | None = None,
    door_accepts_student_card: bool = False,
) -> Event:
    """Create an event with all its seats free (``remaining = capacity``)."""
    if capacity is None or capacity < 0:
        raise EventError(_("The capacity must be zero or more."))
    if status not in Event.Status.values:
        raise EventError(_("Unknown event status."))
    validate_event_window(claim_opens_at=claim_opens_at, claim_closes_at=claim_closes_at, starts_at=starts_at)
    validate_event_draw(
        opening_mode=opening_mode,
        draw_beacon_source=draw_beacon_source,
        draw_beacon_due_at=draw_beacon_due_at,
        claim_opens_at=claim_opens_at,
    )
    try:
        with transaction.atomic():
            event = Event.objects.create(
                slug=slug,
                title=title,
                speaker=speaker,
                description=description,
                venue=venue,
                starts_at=starts_at,
                claim_opens_at=claim_opens_at,
                claim_closes_at=claim_closes_at,
                capacity=capacity,
                remaining=capacity,
                status=status,
                opening_mode=opening_mode,
                draw_beacon_source=draw_beacon_source.strip(),
                draw_beacon_due_at=_to_the_second(draw_beacon_due_at),
                rotating_qr=rotating_qr,
                door_opens_at=door_opens_at,
                door_accepts_student_card=door_accepts_student_card,
            )
            _notify_event_changed(event.pk)
    except IntegrityError as exc:
        _raise_for_integrity(exc)
    return event


def event_update(*, event_id: int, capacity: int | None = None, **fields: Any) -> Event:
    """Change an event's details and/or capacity.

    A capacity change moves ``remaining`` by the same delta in ONE conditional UPDATE:
    ``SET capacity = new, remaining = remaining + new - capacity WHERE remaining >= capacity - new``.
    PostgreSQL re-checks the WHERE on the latest row version after waiting for a concurrent
    ticket issue to commit, so a seat taken at the same moment is never lost and the
    capacity never drops below the tickets already issued (refused with CapacityBelowIssued).
    """
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise EventError(_("These fields cannot be changed here: %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    now = timezone.now()
    try:
        with transaction.atomic():
            current = Event.objects.filter(pk=event_id).first()
            if current is None:
                raise EventNotFound()
            window = {
                key: fields.get(key, getattr(current, key))
                for key in ("claim_opens_at", "claim_closes_at", "starts_at")
            }
            validate_event_window(**window)
            if "draw_beacon_source" in fields:
                fields["draw_beacon_source"] = (fields["draw_beacon_source"] or "").strip()
            if "draw_beacon_due_at" in fields:
                fields["draw_beacon_due_at"] = _to_the_second(fields["draw_beacon_due_at"])
            draw = {key: fields.get(key, getattr(current, key)) for key in DRAW_FIELDS}
            if draw != {key: getattr(current, key) for key in DRAW_FIELDS}:
                # Locked first: claims whose INSERT is under way (they hold a key-share lock on
                # the row) commit before the check below reads the pre-queue, and a freeze under
                # way commits before the check of draw_frozen_at.
                current = Event.objects.select_for_update().get(pk=event_id)
                if current.draw_frozen_at is not None or current.draw_revealed_at is not None:
                    raise DrawLocked()
                if draw["opening_mode"] != current.opening_mode and has_prequeue(event_id):
                    raise OpeningModeLocked()
            if {"claim_opens_at", *DRAW_FIELDS} & set(fields) and current.draw_frozen_at is None:
                validate_event_draw(**draw, claim_opens_at=window["claim_opens_at"])
            if fields:
                Event.objects.filter(pk=event_id).update(updated_at=now, **fields)
            if capacity is not None and capacity != current.capacity:
                if capacity < 0:
                    raise EventError(_("The capacity must be zero or more."))
                if not seats_resize(event_id, capacity, now=now):
                    issued = Event.objects.filter(pk=event_id).values_list("capacity", "remaining").first()
                    issued_count = issued[0] - issued[1] if issued else 0
                    raise CapacityBelowIssued(
                        _(
                            "The capacity cannot be lower than the %(issued)d tickets already issued "
                            "(asked for %(capacity)d)."
                        )
                        % {"issued": issued_count, "capacity": capacity},
                        issued=issued_count,
                    )
            _notify_event_changed(event_id)
    except IntegrityError as exc:
        _raise_for_integrity(exc)
    return Event.objects.get(pk=event_id)


def event_set_status(*, event_id: int, status: str) -> Event:
    """Set an event's status (draft, published or cancelled)."""
    if status not in Event.Status.values:
        raise EventError(_("Unknown event status."))
    with transaction.atomic():
        changed = Event.objects.filter(pk=event_id).update(status=status, updated_at=timezone.now())
        if changed != 1:
            raise EventNotFound()
        _notify_event_changed(event_id)
    return Event.objects.get(pk=event_id)


def event_publish(*, event_id: int) -> Event:
    """Make an event visible to students (a cancelled event can be published again)."""
    return event_set_status(event_id=event_id, status=Event.Status.PUBLISHED)


def event_cancel(*, event_id: int) -> Event:
    """Cancel an event: it stays visible as cancelled and no more claims are accepted."""
    return event_set_status(event_id=event_id, status=Event.Status.CANCELLED)
