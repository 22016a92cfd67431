"""Monitoring data kept in PostgreSQL (so health survives a dead Redis)."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class WorkerHeartbeat(models.Model):
    """Last sign of life of each Celery worker (written every few seconds by the worker)."""

    hostname = models.CharField(_("host name"), max_length=200, primary_key=True)
    seen_at = models.DateTimeField(_("last seen at"))
    queues = models.CharField(_("queues"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")

    def __str__(self) -> str:
        return self.hostname


class AlertRule(models.Model):
    """One alert rule; operators edit thresholds in the admin.

    Units follow the metric: ``error_rate`` in percent of requests answered 5xx, ``response_time``
    in milliseconds (p95 over the window), ``remaining_tickets`` in seats (checked per event whose
    claim window is open, alert key ``remaining_tickets:<slug>``, against ``threshold_for`` its
    capacity), ``concurrent_users`` in students.
    """

    class Metric(models.TextChoices):
        ERROR_RATE = "error_rate", _("error rate (%)")
        RESPONSE_TIME = "response_time", _("p95 response time (ms)")
        REMAINING_TICKETS = "remaining_tickets", _("remaining tickets (per event)")
        CONCURRENT_USERS = "concurrent_users", _("concurrent active users")

    class Comparison(models.TextChoices):
        ABOVE = "gt", _("above")
        BELOW = "lt", _("below")

    metric = models.CharField(_("metric"), max_length=32, choices=Metric.choices, unique=True)
    comparison = models.CharField(_("fires when the value is"), max_length=2, choices=Comparison.choices)
    threshold = models.FloatField(_("threshold"))
    enabled = models.BooleanField(_("enabled"), default=True)
    # Hysteresis against flapping: a firing alert resolves only after its condition has stayed
    # clear this long, so a value hovering at the threshold sends one alert, not one per minute.
    cooldown_seconds = models.PositiveIntegerField(_("clear for (seconds) before resolving"), default=60)
    # Below this many requests in the window, error rate and p95 are noise (one 500 of two
    # requests is not a 50 % outage).
    min_requests = models.PositiveIntegerField(_("minimum requests in the window"), default=20)
    # Remaining tickets only: 50 seats left is "running out" for a 500-seat lecture, not for a
    # 30-seat workshop that has barely started. Empty: the threshold alone.
    capacity_percent = models.FloatField(
        _("share of the seats (%)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text=_(
            "Remaining tickets only: the alert fires below this share of the event's seats when it is lower "
            "than the threshold."
        ),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["metric"]
        constraints = [
            models.CheckConstraint(condition=models.Q(threshold__gte=0), name="monitoring_alertrule_threshold_gte_0"),
            models.CheckConstraint(
                condition=models.Q(capacity_percent__isnull=True)
                | models.Q(capacity_percent__gte=0, capacity_percent__lte=100),
                name="monitoring_alertrule_capacity_percent_0_100",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} {self.get_comparison_display()} {self.threshold:g}"

    def threshold_for(self, *, capacity: int | None = None) -> float:
        """The threshold one key is held to: for an event of ``capacity`` seats, the lower of
        ``threshold`` and ``capacity_percent`` of its seats (3 seats left of 3 are not running out)."""
        if capacity is None or self.capacity_percent is None:
            return self.threshold
        return min(self.threshold, capacity * self.capacity_percent / 100)

    def crossed(self, value: float, threshold: float | None = None) -> bool:
        """Whether ``value`` is past ``threshold`` (the rule's own by default) in the rule's direction."""
        threshold = self.threshold if threshold is None else threshold
        return value > threshold if self.comparison == self.Comparison.ABOVE else value < threshold


class Alert(models.Model):
    """One firing of a rule for one key, from the moment it started to the moment it resolved."""

    class State(models.TextChoices):
        FIRING = "firing", _("firing")
        RESOLVED = "resolved", _("resolved")

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("rule"))
    # "error_rate", "response_time", "concurrent_users" or "remaining_tickets:<slug>".
    key = models.CharField(_("rule key"), max_length=120)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.FIRING)
    value = models.FloatField(_("value when it fired"))
    last_value = models.FloatField(_("last value seen"))
    threshold = models.FloatField(_("threshold when it fired"))
    started_at = models.DateTimeField(_("started at"))
    # Set while a firing alert's condition is clear; it resolves once clear for the cooldown.
    clear_since = models.DateTimeField(_("clear since"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-started_at", "-id"]
        constraints = [
            # The state machine's truth: at most one firing alert per key, so two overlapping
            # evaluations can never send the same alert twice.
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(state="firing"), name="monitoring_alert_one_firing_per_key"
            ),
            models.CheckConstraint(
                condition=models.Q(state="firing", resolved_at__isnull=True)
                | models.Q(state="resolved", resolved_at__isnull=False),
                name="monitoring_alert_resolved_at_matches_state",
            ),
        ]
        indexes = [models.Index(fields=["key", "-started_at"], name="monitoring_alert_key_idx")]

    def __str__(self) -> str:
        return f"{self.key} {self.state}"


class MetricSample(models.Model):
    """Every dashboard figure, sampled once a minute by beat (kept METRICS_RETENTION_DAYS)."""

    taken_at = models.DateTimeField(_("minute"), unique=True)
    remaining = models.JSONField(_("remaining per event"), default=dict)
    active_users = models.PositiveIntegerField(_("active users"), default=0)
    claims_per_minute = models.PositiveIntegerField(_("claims per minute"), default=0)
    claim_success_rate = models.FloatField(_("claim success (%)"), null=True, blank=True)
    p95_ms = models.FloatField(_("p95 latency (ms)"), null=True, blank=True)
    error_rate = models.FloatField(_("error rate (%)"), null=True, blank=True)
    cache_hit_ratio = models.FloatField(_("cache hit ratio (%)"), null=True, blank=True)
    queue_depth = models.PositiveIntegerField(_("queue depth"), default=0)
    queue_delay_seconds = models.FloatField(_("queue delay (s)"), default=0)
    requests = models.PositiveIntegerField(_("requests in the last minute"), default=0)
    # Cumulative cache counters across processes at sampling time: deltas give windowed ratios.
    cache_hits_total = models.FloatField(_("cache hits since start"), default=0)
    cache_misses_total = models.FloatField(_("cache misses since start"), default=0)

    class Meta:
        verbose_name = _("metric sample")
        verbose_name_plural = _("metric samples")
        ordering = ["-taken_at"]
        # The operator role (accounts/roles.py). Exports are separate: they hold tracebacks and
        # which student claimed when, more than the live figures.
        permissions = [
            ("view_dashboard", _("Can see the monitoring dashboard, live metrics, alerts and /metrics")),
            ("export_logs", _("Can export the request, error and claim logs")),
        ]

    def __str__(self) -> str:
        return self.taken_at.isoformat()


class RequestStat(models.Model):
    """Requests aggregated per minute and endpoint (the exportable request log).

    Processes buffer in memory and add their counts here every few seconds, so the hot path
    never writes a row per request.
    """

    minute = models.DateTimeField()
    endpoint = models.CharField(max_length=200)
    method = models.CharField(max_length=10)
    count = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(_("5xx answers"), default=0)
    client_errors = models.PositiveIntegerField(_("4xx answers"), default=0)
    total_ms = models.FloatField(default=0)
    max_ms = models.FloatField(default=0)
    db_queries = models.PositiveIntegerField(default=0)
    db_ms = models.FloatField(default=0)
    # Counts per latency bucket (upper bounds in monitoring.recorder.LATENCY_BUCKETS_MS).
    buckets = ArrayField(models.PositiveIntegerField(), default=list)

    class Meta:
        verbose_name = _("request statistic")
        verbose_name_plural = _("request statistics")
        ordering = ["-minute", "endpoint"]
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "endpoint", "method"], name="monitoring_requeststat_unique_minute"
            )
        ]
        indexes = [models.Index(fields=["minute"], name="monitoring_requeststat_min_idx")]

    def __str__(self) -> str:
        return f"{self.minute:%H:%M} {self.method} {self.endpoint}"


class ErrorLog(models.Model):
    """Recent unhandled errors with their stack traces (pruned; Sentry keeps the long history)."""

    logged_at = models.DateTimeField(_("logged at"), db_index=True)
    logger = models.CharField(_("logger"), max_length=200)
    level = models.CharField(_("level"), max_length=16)
    message = models.TextField(_("message"))
    exception_type = models.CharField(_("exception type"), max_length=200, blank=True)
    traceback = models.TextField(_("stack trace"), blank=True)
    path = models.CharField(_("path"), max_length=500, blank=True)
    process = models.CharField(_("process"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("error log entry")
        verbose_name_plural = _("error log")
        ordering = ["-logged_at"]

    def __str__(self) -> str:
        return f"{self.logged_at:%Y-%m-%d %H:%M:%S} {self.exception_type or self.message[:60]}"
