"""The claim queue: table ``ticket_queue``. The table is the truth; Celery messages are hints."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

LIVE_STATUSES = ("pending", "processing")


class QueueEntry(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        PROCESSING = "processing", _("processing")
        COMPLETED = "completed", _("completed")
        FAILED = "failed", _("failed")

    # Sequential id: FIFO order and the batch scan. Never shown to students.
    id = models.BigAutoField(primary_key=True)
    # What students see (URLs, websocket paths): unguessable.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="queue_entries")
    event = models.ForeignKey("events.Event", on_delete=models.CASCADE, related_name="queue_entries")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # Machine-readable refusal (sold_out, claim_closed, not_eligible, already_has_ticket, error).
    reason = models.CharField(_("reason"), max_length=32, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    ticket = models.OneToOneField(
        "tickets.Ticket", on_delete=models.PROTECT, null=True, blank=True, related_name="queue_entry"
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # Lease: a row in `processing` whose locked_at is older than the lease is taken again.
    locked_at = models.DateTimeField(_("locked at"), null=True, blank=True)
    # Backoff: a retried entry is not taken before this time.
    not_before = models.DateTimeField(_("not before"), null=True, blank=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    # Waiting for a shuffled opening: the batch scan does not take it before the draw.
    prequeue = models.BooleanField(_("pre-queue"), default=False)
    # The language of the claim's request ("" for the default): the ticket e-mail of a claim the
    # worker decides goes out in it (the worker has no request of its own).
    language = models.CharField(_("language"), max_length=8, blank=True, default="", db_default="")
    # Queue order within an event. A trigger (migration 0003) sets it to the id on INSERT;
    # the draw gives pre-queue entries negative ranks so they go first, in drawn order.
    sort_key = models.BigIntegerField(_("sort key"), null=True, blank=True, editable=False)

    # Not a column: the place in the line counted by the enqueue statement itself, so the claim's
    # answer needs no second query (queueing.services.queue_enqueue). None: count it when needed.
    position: int | None = None

    class Meta:
        db_table = "ticket_queue"
        verbose_name = _("queue entry")
        verbose_name_plural = _("queue entries")
        ordering = ["sort_key", "id"]
        constraints = [
            # At most one live claim per student per event: claiming again returns this entry.
            models.UniqueConstraint(
                fields=["user", "event"],
                condition=models.Q(status__in=LIVE_STATUSES),
                name="ticket_queue_one_live_per_student_event",
            ),
            models.CheckConstraint(condition=models.Q(attempts__lte=10), name="ticket_queue_attempts_bounded"),
            models.CheckConstraint(
                condition=~models.Q(status="completed") | models.Q(ticket__isnull=False),
                name="ticket_queue_completed_has_ticket",
            ),
        ]
        indexes = [
            # Serves the position count (live entries ahead of me in this event, by sort key).
            models.Index(
                fields=["event", "sort_key", "id"],
                name="ticket_queue_live_rank_idx",
                condition=models.Q(status__in=LIVE_STATUSES),
            ),
            # Serves the batch scan: WHERE status='pending' AND NOT prequeue ORDER BY sort_key, id
            # ... FOR UPDATE SKIP LOCKED.
            models.Index(
                fields=["sort_key", "id"],
                name="ticket_queue_pending_rank_idx",
                condition=models.Q(status="pending", prequeue=False),
            ),
            # Serves the age of the oldest pending entry (health, monitoring): ORDER BY id.
            models.Index(fields=["id"], name="ticket_queue_pending_idx", condition=models.Q(status="pending")),
            # Serves the reaper: processing rows whose lease ran out.
            models.Index(fields=["locked_at"], name="ticket_queue_lease_idx", condition=models.Q(status="processing")),
            # Serves the hourly cleanup of decided rows.
            models.Index(fields=["status", "processed_at"], name="ticket_queue_decided_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.status}"


class ClaimStat(models.Model):
    """Decided claims per event per minute and outcome: what analytics keep after cleanup.

    Filled by ``queueing.services.queue_cleanup`` in the same statement that deletes the decided
    rows, so a count is never lost nor taken twice. ``outcome`` is ``completed`` or the refusal
    code of a failed entry (sold_out, claim_closed, not_eligible, already_has_ticket, error).
    """

    event = models.ForeignKey("events.Event", on_delete=models.CASCADE, related_name="claim_stats")
    minute = models.DateTimeField(_("minute"))
    outcome = models.CharField(_("outcome"), max_length=32)
    count = models.PositiveIntegerField(_("count"), default=0)

    class Meta:
        verbose_name = _("claim statistic")
        verbose_name_plural = _("claim statistics")
        ordering = ["minute", "event", "outcome"]
        constraints = [
            # The cleanup upserts on this key (INSERT ... ON CONFLICT DO UPDATE).
            models.UniqueConstraint(fields=["event", "minute", "outcome"], name="queueing_claimstat_one_per_minute"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.minute:%Y-%m-%d %H:%M} {self.outcome}: {self.count}"
