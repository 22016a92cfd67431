"""Tickets: one seat of one event held by one student."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
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
    # The door phone that let the holder in ("pintu2"): what the other phones show.
    admitted_device = models.CharField(_("admitted by device"), max_length=40, blank=True, default="")
    # Last time the door needs to hear about this ticket (issued, admitted, given back): the door
    # list's deltas (tickets.doorlist) read the rows changed since a phone's last look.
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now, editable=False)

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
        indexes = [
            models.Index(fields=["user", "status"], name="tickets_user_status_idx"),
            # The door list's delta: one event's tickets changed since a cursor.
            models.Index(fields=["event", "changed_at"], name="tickets_event_changed_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.redeem_code} ({self.event_id})"


class TicketMail(models.Model):
    """The ticket's e-mail (code, QR, calendar file): its delivery state, one row per ticket.

    Written only by ``tickets.delivery``. A run may send only after claiming the row with a
    conditional UPDATE (``sent_at IS NULL AND next_try_at <= now``, which also moves
    ``next_try_at`` on by a lease), so two runs of the same task, or the task and the sweep,
    never both send. After a failure ``next_try_at`` is the next try (growing delays).
    """

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, primary_key=True, related_name="mail")
    # The language the ticket was issued in (a student's request), "" for the default.
    language = models.CharField(_("language"), max_length=8, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_try_at = models.DateTimeField(_("next try at"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("ticket e-mail")
        verbose_name_plural = _("ticket e-mails")

    def __str__(self) -> str:
        return f"mail of {self.ticket_id}"


class DoorScan(models.Model):
    """One scan at a door: answered online, or decided offline by a door phone and synced later.

    The door's log and the ledger behind exactly-once admission of synced scans: ``nonce`` (a
    random id the phone gives each scan) makes a retried upload a no-op, and at most one scan of
    a ticket holds the result ``admitted`` (the ticket's ``admitted_at`` is that scan's time).
    """

    class Result(models.TextChoices):
        ADMITTED = "admitted", _("admitted")
        ALREADY_ADMITTED = "already_admitted", _("already admitted")
        INVALID = "invalid", _("invalid")
        WRONG_EVENT = "wrong_event", _("wrong event")
        NEEDS_IDENTITY_CHECK = "needs_identity_check", _("needs an identity check")

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey("events.Event", on_delete=models.PROTECT, related_name="door_scans")
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, null=True, blank=True, related_name="door_scans")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    device_id = models.CharField(_("device id"), max_length=64, blank=True, default="")
    device_name = models.CharField(_("device"), max_length=40, blank=True, default="")
    nonce = models.CharField(_("nonce"), max_length=64, null=True, blank=True)  # noqa: DJ001 - NULL: scans sent without one
    # How the code came in: qr, code (typed or a barcode), card (student card), lookup (by NIM/name).
    method = models.CharField(_("method"), max_length=16, blank=True, default="")
    offline = models.BooleanField(_("decided offline"), default=False)
    scanned_at = models.DateTimeField(_("scanned at"))
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    result = models.CharField(_("result"), max_length=24, choices=Result.choices)
    reason = models.CharField(_("reason"), max_length=40, blank=True, default="")
    # The phone let someone in, but the ticket's admission is another scan (earlier, elsewhere) or
    # the ticket was no longer valid: a door conflict, reported back to the phone and the dashboard.
    conflict = models.BooleanField(_("conflict"), default=False)
    # When result or conflict last changed: the phone's feed of its own conflicts reads it.
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("door scan")
        verbose_name_plural = _("door scans")
        constraints = [
            # A retried upload (same nonce) is the same scan, applied once.
            models.UniqueConstraint(
                fields=["nonce"], condition=models.Q(nonce__isnull=False), name="tickets_doorscan_nonce_unique"
            ),
            # Exactly one admission per ticket, whatever order the phones sync in.
            models.UniqueConstraint(
                fields=["ticket"],
                condition=models.Q(result="admitted"),
                name="tickets_doorscan_one_admission_per_ticket",
            ),
        ]
        indexes = [
            # Door figures: an event's scans by time (arrivals per minute, per phone).
            models.Index(fields=["event", "scanned_at"], name="tickets_doorscan_event_time"),
            # A phone's conflict feed and the dashboard's conflict list.
            models.Index(
                fields=["event", "changed_at"], condition=models.Q(conflict=True), name="tickets_doorscan_conflicts"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.result} {self.scanned_at:%H:%M:%S} {self.device_name}"


class DoorDevice(models.Model):
    """A door phone as it last reported itself: how many offline scans wait on it to sync."""

    event = models.ForeignKey("events.Event", on_delete=models.CASCADE, related_name="door_devices")
    device_id = models.CharField(_("device id"), max_length=64)
    name = models.CharField(_("device"), max_length=40)
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    last_seen_at = models.DateTimeField(_("last seen at"))
    waiting = models.PositiveIntegerField(_("scans waiting to sync"), default=0)

    class Meta:
        verbose_name = _("door device")
        verbose_name_plural = _("door devices")
        constraints = [models.UniqueConstraint(fields=["event", "device_id"], name="tickets_doordevice_unique")]

    def __str__(self) -> str:
        return self.name


class ConfirmationRequest(models.Model):
    """The organiser asks every ticket holder to confirm attendance before ``deadline``; the tickets
    not confirmed by then are given back (``tickets.confirmations``), their seats offered to the
    waiting list."""

    event = models.ForeignKey(
        "events.Event", on_delete=models.CASCADE, related_name="confirmation_requests", verbose_name=_("event")
    )
    deadline = models.DateTimeField(_("deadline"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    # Set once the unconfirmed tickets have been released (exactly once: row lock).
    closed_at = models.DateTimeField(_("released at"), null=True, blank=True)
    released = models.PositiveIntegerField(_("tickets released"), default=0)

    class Meta:
        # Made in the waiting-list app, moved here with its rows (migration 0007): the table keeps its name.
        db_table = "waitlist_confirmationrequest"
        verbose_name = _("attendance confirmation request")
        verbose_name_plural = _("attendance confirmation requests")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event} before {self.deadline:%Y-%m-%d %H:%M}"


class TicketConfirmation(models.Model):
    """One holder's answer to a confirmation request (``confirmed_at`` None: not yet)."""

    request = models.ForeignKey(
        ConfirmationRequest, on_delete=models.CASCADE, related_name="confirmations", verbose_name=_("request")
    )
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="confirmations", verbose_name=_("ticket"))
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)

    class Meta:
        db_table = "waitlist_ticketconfirmation"
        verbose_name = _("ticket confirmation")
        verbose_name_plural = _("ticket confirmations")
        constraints = [
            models.UniqueConstraint(fields=["request", "ticket"], name="waitlist_one_confirmation_per_ticket")
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id} {'confirmed' if self.confirmed_at else 'unconfirmed'}"
