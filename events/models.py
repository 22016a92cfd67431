"""Events whose seats are given away in a ticket war."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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
    # Seats still free. Changed only by conditional UPDATEs with F() (tickets.services);
    # the check constraints below are the truth, code checks only make friendlier messages.
    remaining = models.PositiveIntegerField(_("remaining"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    # Fair opening (docs/OPERATIONS.md): with shuffle_at_open, claims made before the window
    # opens wait in a pre-queue whose order is drawn from draw_seed at opening.
    opening_mode = models.CharField(
        _("opening mode"), max_length=16, choices=OpeningMode.choices, default=OpeningMode.FIFO
    )
    # Secret until the draw; its SHA-256 (draw_commitment) is public from the start.
    draw_seed = models.CharField(_("draw seed"), max_length=64, default=new_draw_seed, editable=False)
    draw_revealed_at = models.DateTimeField(_("draw revealed at"), null=True, blank=True, editable=False)
    # Pseudonyms of the pre-queue entries in drawn order, kept after the queue rows are cleaned up.
    draw_entries = models.JSONField(_("draw entries"), default=list, blank=True, editable=False)
    # Tickets show a QR code that changes every 30 s instead of a fixed one.
    rotating_qr = models.BooleanField(_("rotating QR code"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(remaining__gte=0), name="events_event_remaining_non_negative"),
            models.CheckConstraint(
                condition=models.Q(remaining__lte=models.F("capacity")), name="events_event_remaining_within_capacity"
            ),
            models.CheckConstraint(
                condition=models.Q(claim_opens_at__lt=models.F("claim_closes_at")),
                name="events_event_claim_window_order",
            ),
            models.CheckConstraint(
                condition=models.Q(claim_closes_at__lte=models.F("starts_at")),
                name="events_event_claim_closes_before_start",
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
