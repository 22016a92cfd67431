"""Admin: editable alert rules, alert history, error log, samples and worker heartbeats."""

from __future__ import annotations

from django.contrib import admin
from django.db import models

from .models import Alert, AlertRule, ErrorLog, MetricSample, WorkerHeartbeat


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is written by the system; staff read and export it."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    # Thresholds written as the page's language writes them (50,5 in Indonesian), read back alike.
    formfield_overrides = {models.FloatField: {"localize": True}}
    list_display = (
        "metric", "comparison", "threshold", "capacity_percent", "enabled", "cooldown_seconds", "min_requests",
        "updated_at",
    )  # fmt: skip
    list_editable = ("threshold", "capacity_percent", "enabled", "cooldown_seconds")
    readonly_fields = ("metric", "updated_at")

    def has_add_permission(self, request):
        # The four rules are seeded; the evaluator knows how to read exactly these metrics.
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("key", "state", "value", "last_value", "threshold", "started_at", "resolved_at")
    list_filter = ("state", "rule__metric")
    search_fields = ("key",)
    date_hierarchy = "started_at"


@admin.register(ErrorLog)
class ErrorLogAdmin(ReadOnlyAdmin):
    list_display = ("logged_at", "level", "exception_type", "message", "path", "logger")
    list_filter = ("level", "logger")
    search_fields = ("message", "exception_type", "path")
    date_hierarchy = "logged_at"


@admin.register(MetricSample)
class MetricSampleAdmin(ReadOnlyAdmin):
    list_display = (
        "taken_at", "active_users", "claims_per_minute", "claim_success_rate", "p95_ms", "error_rate",
        "cache_hit_ratio", "queue_depth", "queue_delay_seconds",
    )  # fmt: skip
    date_hierarchy = "taken_at"


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("hostname", "seen_at", "queues")
