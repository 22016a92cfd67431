"""Events whose seats are given away in a ticket war."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# The seat count's check constraints (Meta below): the database's last word on ``remaining``.
REMAINING_NON_NEGATIVE = "events_event_remaining_non_negative"
REMAINING_WITHIN_CAPACITY = "events_event_remaining_within_capacity"
SEAT_CONSTRAINTS = (REMAINING_NON_NEGATIVE, REMAINING_WITHIN_CAPACITY)


def new_draw_seed() -> str:
    """32 random bytes (hex) from the OS's CSPRNG: the secret behind a shuffled opening."""
    return secrets.token_hex(32)


class Event(models.Model):
    class OpeningMode(models.TextChoices):
        FIFO = "fifo", _("first come, first served")
        SHUFFLE_AT_OPEN = "shuffle_at_open", _("pre-queue shuffled at opening")

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        PUBLISHED = "published", _("published")
        CANCELLED = "cancelled", _("cancelled")

    class ClaimState(models.TextChoices):
        NOT_OPEN = "not_open", _("not open yet")
        OPEN = "open", _("open")
        SOLD_OUT = "sold_out", _("sold out")
        CLOSED = "closed", _("closed")
        CANCELLED = "cancelled", _("cancelled")
        DRAFT = "draft", _("draft")

    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    title = models.CharField(_("title"), max_length=200)
    speaker = models.CharField(_("speaker"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    venue = models.CharField(_("venue"), max_length=200)
    starts_at = models.DateTimeField(_("starts at"))
    claim_opens_at = models.DateTimeField(_("claim opens at"))
    claim_closes_at = models.DateTimeField(_("claim closes at"))
    capacity = models.PositiveIntegerField(_("capacity"))
    # Seats still free. Changed only by the conditional UPDATEs with F() of events/seats.py
    # (seats_take, seats_release, seats_resize); the check constraints below are the truth, code
    # checks only make friendlier messages.
    remaining = models.PositiveIntegerField(_("remaining"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    # Fair opening (docs/OPERATIONS.md): with shuffle_at_open, claims made before the window
    # opens wait in a pre-queue, frozen at opening and ordered by a draw from draw_seed and a
    # public random value entered after the freeze.
    opening_mode = models.CharField(
        _("opening mode"), max_length=16, choices=OpeningMode.choices, default=OpeningMode.FIFO
    )
    # The draw (queueing/draw.py; docs/QUEUE.md, "The draw"). Secret until the draw; its SHA-256
    # (draw_commitment) is public from the moment the event is.
    draw_seed = models.CharField(_("draw seed"), max_length=64, default=new_draw_seed, editable=False)
    # The public random value mixed into the draw: where it will be read (naming exactly which
    # value) and when it is published, both announced before opening and fixed by the freeze.
    draw_beacon_source = models.CharField(
        _("public random value: source"),
        max_length=300,
        blank=True,
        help_text=_(
            "For a shuffled opening: where the public random value mixed into the draw will be read, "
            "naming exactly one value published after the claim window opens, e.g. "
            '"drand quicknet round 12345678, its randomness field". '
            "It cannot change once the pre-queue is frozen."
        ),
    )
    draw_beacon_due_at = models.DateTimeField(
        _("public random value: published at"),
        null=True,
        blank=True,
        help_text=_("When that value is published: after the claim window opens (a minute or two after is best)."),
    )
    # Set at opening: the pre-queue's pseudonyms, sorted, and the hash of what was frozen.
    draw_frozen_at = models.DateTimeField(_("pre-queue frozen at"), null=True, blank=True, editable=False)
    draw_entries = models.JSONField(_("frozen pre-queue"), default=list, blank=True, editable=False)
    draw_freeze_hash = models.CharField(_("freeze hash"), max_length=64, blank=True, editable=False)
    # Entered by the organiser once published (after the freeze), with who and when.
    draw_beacon = models.CharField(_("public random value"), max_length=256, blank=True, editable=False)
    draw_beacon_entered_at = models.DateTimeField(
        _("public random value entered at"), null=True, blank=True, editable=False
    )
    draw_beacon_entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name=_("public random value entered by"),
    )
    # The draw itself: the seed revealed and the pseudonyms in drawn order (kept after the queue
    # rows are cleaned up).
    draw_revealed_at = models.DateTimeField(_("draw revealed at"), null=True, blank=True, editable=False)
    draw_order = models.JSONField(_("drawn order"), default=list, blank=True, editable=False)
    # Tickets show a QR code that changes every 30 s instead of a fixed one.
    rotating_qr = models.BooleanField(_("rotating QR code"), default=False)
    # The door (tickets.selectors.door_window): opens DOOR_OPENS_BEFORE_START_MINUTES before the
    # start unless the organiser sets an earlier or later time here (a registration desk that opens
    # in the morning; the development demo, whose door is open from the moment it is seeded).
    door_opens_at = models.DateTimeField(
        _("door opens at"),
        null=True,
        blank=True,
        help_text=_("Leave empty to open the door the usual time before the event starts."),
    )
    # The student card (KTM) as the ticket: its barcode (the NIM) admits that student's ticket.
    door_accepts_student_card = models.BooleanField(
        _("student card admits"),
        default=False,
        help_text=_("At the door, scanning a student card's barcode (the NIM) admits that student's ticket."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(remaining__gte=0), name=REMAINING_NON_NEGATIVE),
            models.CheckConstraint(
                condition=models.Q(remaining__lte=models.F("capacity")), name=REMAINING_WITHIN_CAPACITY
            ),
            models.CheckConstraint(
                condition=models.Q(claim_opens_at__lt=models.F("claim_closes_at")),
                name="events_event_claim_window_order",
            ),
            models.CheckConstraint(
                condition=models.Q(claim_closes_at__lte=models.F("starts_at")),
                name="events_event_claim_closes_before_start",
            ),
            # The draw's steps in their order (queueing/draw.py): the public random value only
            # after the pre-queue is frozen, and a frozen pre-queue drawn only with that value.
            # (Draws made before the freeze existed have no freeze time and no value.)
            models.CheckConstraint(
                condition=models.Q(draw_beacon="")
                | models.Q(draw_frozen_at__isnull=False, draw_beacon_entered_at__gte=models.F("draw_frozen_at")),
                name="events_event_beacon_after_freeze",
            ),
            models.CheckConstraint(
                condition=models.Q(draw_revealed_at__isnull=True)
                | models.Q(draw_frozen_at__isnull=True)
                | ~models.Q(draw_beacon=""),
                name="events_event_draw_needs_beacon",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def draw_commitment(self) -> str:
        """SHA-256 (hex) of the draw seed: published before opening, checked after the reveal."""
        return hashlib.sha256(self.draw_seed.encode("ascii")).hexdigest()

    @property
    def is_shuffled(self) -> bool:
        return self.opening_mode == self.OpeningMode.SHUFFLE_AT_OPEN

    @property
    def prequeue_open(self) -> bool:
        """Claims made before opening join the pre-queue: a shuffled event not frozen nor drawn yet."""
        return self.is_shuffled and self.draw_frozen_at is None and self.draw_revealed_at is None

    @property
    def tickets_issued(self) -> int:
        return self.capacity - self.remaining

    def claim_state(self, now: datetime | None = None, *, remaining: int | None = None) -> str:
        """Where the claim window stands at ``now`` (pass a cached ``remaining`` if known)."""
        now = now or timezone.now()
        remaining = self.remaining if remaining is None else remaining
        if self.status == self.Status.DRAFT:
            return self.ClaimState.DRAFT
        if self.status == self.Status.CANCELLED:
            return self.ClaimState.CANCELLED
        if now < self.claim_opens_at:
            return self.ClaimState.NOT_OPEN
        if now >= self.claim_closes_at:
            return self.ClaimState.CLOSED
        if remaining <= 0:
            return self.ClaimState.SOLD_OUT
        return self.ClaimState.OPEN
