"""Tickets: one seat of one event held by one student."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

# Redeem codes are read aloud at the door: no 0/O, 1/I/L, 2/Z, 5/S, 8/B look-alikes.
REDEEM_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
REDEEM_LENGTH = 8


class Ticket(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        RETURNED = "returned", _("returned")

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    event = models.ForeignKey("events.Event", on_delete=models.PROTECT, related_name="tickets", verbose_name=_("event"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("holder")
    )
    redeem_code = models.CharField(_("redeem code"), max_length=REDEEM_LENGTH, unique=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    issued_at = models.DateTimeField(_("issued at"), auto_now_add=True)
    returned_at = models.DateTimeField(_("returned at"), null=True, blank=True)
    admitted_at = models.DateTimeField(_("admitted at"), null=True, blank=True)
    admitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("admitted by"),
    )

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["issued_at"]
        # The door role (accounts/roles.py): the scan page and POST /api/checkin/, nothing else.
        permissions = [("can_check_in", _("Can check tickets in at the door"))]
        constraints = [
            # One seat per student per event; a returned ticket frees the student to claim again.
            models.UniqueConstraint(
                fields=["event", "user"],
                condition=models.Q(status="active"),
                name="tickets_ticket_one_active_per_student_event",
            ),
            models.CheckConstraint(
                condition=models.Q(redeem_code__regex=rf"^[{REDEEM_ALPHABET}]{{{REDEEM_LENGTH}}}$"),
                name="tickets_ticket_redeem_code_format",
            ),
            models.CheckConstraint(
                condition=models.Q(admitted_at__isnull=True) | models.Q(status="active"),
                name="tickets_ticket_admitted_only_if_active",
            ),
        ]
        indexes = [models.Index(fields=["user", "status"], name="tickets_user_status_idx")]

    def __str__(self) -> str:
        return f"{self.redeem_code} ({self.event_id})"
