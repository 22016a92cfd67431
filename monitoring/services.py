"""Writes of the monitoring app: the per-minute sample and the pruning of old data."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from . import activity, selectors
from .models import ErrorLog, MetricSample, RequestStat


def metric_sample_take(*, now: datetime | None = None) -> MetricSample:
    """Store every dashboard figure for the current minute (idempotent per minute).

    A second run in the same minute (a duplicated beat tick) returns the existing row.
    """
    now = now or timezone.now()
    minute = now.replace(second=0, microsecond=0)
    existing = MetricSample.objects.filter(taken_at=minute).first()
    if existing is not None:
        return existing
    activity.prune(now.timestamp())
    live = selectors.live_metrics(now=now, with_health=False)
    sample, _created = MetricSample.objects.get_or_create(
        taken_at=minute,
        defaults={
            "remaining": live["remaining"],
            "active_users": live["active_users"],
            "claims_per_minute": live["claims_per_minute"],
            "claim_success_rate": live["claim_success_rate"],
            "p95_ms": live["p95_ms"],
            "error_rate": live["error_rate"],
            "cache_hit_ratio": live["cache_hit_ratio"],
            "queue_depth": live["queue_depth"],
            "queue_delay_seconds": live["queue_delay_seconds"],
            "requests": selectors.requests_last_minute(now=now),
            "cache_hits_total": live["cache_hits_total"],
            "cache_misses_total": live["cache_misses_total"],
        },
    )
    return sample


def monitoring_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Delete samples and request statistics past METRICS_RETENTION_DAYS and errors past
    ERROR_LOG_RETENTION_DAYS (or beyond ERROR_LOG_MAX_ROWS). Returns rows deleted per table."""
    now = now or timezone.now()
    metrics_cutoff = now - timedelta(days=settings.METRICS_RETENTION_DAYS)
    errors_cutoff = now - timedelta(days=settings.ERROR_LOG_RETENTION_DAYS)
    deleted = {
        "samples": MetricSample.objects.filter(taken_at__lt=metrics_cutoff).delete()[0],
        "requests": RequestStat.objects.filter(minute__lt=metrics_cutoff).delete()[0],
        "errors": ErrorLog.objects.filter(logged_at__lt=errors_cutoff).delete()[0],
    }
    # A flood of errors must not grow the table without bound either.
    newest_first = ErrorLog.objects.order_by("-logged_at").values_list("logged_at", flat=True)
    keep_after = newest_first[settings.ERROR_LOG_MAX_ROWS :].first()
    if keep_after is not None:
        deleted["errors"] += ErrorLog.objects.filter(logged_at__lte=keep_after).delete()[0]
    return deleted
