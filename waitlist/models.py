"""Second chances: the waiting list of a sold-out event and its seat offers.

Seat accounting (docs/OPERATIONS.md): an *offered* entry holds one seat taken from
``Event.remaining`` by the same conditional UPDATE the issuing path uses, so at every moment
``active tickets + live offers + remaining == capacity``: never more tickets than seats.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class WaitlistEntry(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting", _("waiting")
        OFFERED = "offered", _("offered a seat")
        CLAIMED = "claimed", _("claimed the seat")
        EXPIRED = "expired", _("offer expired")
        LEFT = "left", _("opted out")

    # Sequential id: the order of the list (students join in queue order). Never shown.
    id = models.BigAutoField(_("ID"), primary_key=True)
    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    event = models.ForeignKey(
        "events.Event", on_delete=models.CASCADE, related_name="waitlist", verbose_name=_("event")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="waitlist_entries", verbose_name=_("student")
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.WAITING)
    # The refused claim's queue id: its waiting page (websocket group) hears about an offer.
    queue_public_id = models.UUIDField(_("queue entry"), null=True, blank=True)
    created_at = models.DateTimeField(_("joined at"), default=timezone.now)
    offered_at = models.DateTimeField(_("offered at"), null=True, blank=True)
    offer_expires_at = models.DateTimeField(_("offer expires at"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    ticket = models.OneToOneField(
        "tickets.Ticket",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="waitlist_entry",
        verbose_name=_("ticket"),
    )

    # Not a column: the students waiting ahead, when the statement that read the row counted them
    # (waitlist.standing, waitlist.services.waitlist_join); None: counted when needed.
    waiting_ahead: int | None = None

    class Meta:
        verbose_name = _("waiting list entry")
        verbose_name_plural = _("waiting list")
        ordering = ["event", "id"]
        constraints = [
            # One place per student per event; an opt-out is a row too, so it is remembered.
            models.UniqueConstraint(fields=["event", "user"], name="waitlist_one_per_student_event"),
            models.CheckConstraint(
                condition=~models.Q(status="offered") | models.Q(offer_expires_at__isnull=False),
                name="waitlist_offer_has_deadline",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="claimed") | models.Q(ticket__isnull=False),
                name="waitlist_claimed_has_ticket",
            ),
        ]
        indexes = [
            # Serves "next student on the list": WHERE event_id = ? AND status = 'waiting' ORDER BY id.
            models.Index(fields=["event", "id"], name="waitlist_waiting_idx", condition=models.Q(status="waiting")),
            # Serves the expiry sweep: WHERE status = 'offered' AND offer_expires_at <= now.
            models.Index(fields=["offer_expires_at"], name="waitlist_offer_idx", condition=models.Q(status="offered")),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.user_id} {self.status}"
