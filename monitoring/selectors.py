"""Reads behind the dashboard, the metrics API, the samples and the alert rules.

Windows: error rate and p95 over the last WINDOW_SECONDS of the request log (all processes,
flushed every few seconds); claims per minute over the last 60 s; claim success rate over the
decisions of the last WINDOW_SECONDS.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from django.db.models import Count, Q, Sum
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from events.models import Event
from monitoring import health as health_checks
from queueing import selectors as queue_selectors
from queueing.models import QueueEntry
from tickets.doorlist import door_figures
from tickets.selectors import door_window, events_for_door

from . import activity
from .models import Alert, AlertRule, MetricSample, RequestStat
from .recorder import LATENCY_BUCKETS_MS

WINDOW_SECONDS = 300
CACHE_COUNTER = "ticketwar_cache_requests"

# Health colours for the two request figures (documented in docs/MONITORING.md).
ERROR_RATE_YELLOW = 1.0  # percent of requests answered 5xx
ERROR_RATE_RED = 10.0
P95_YELLOW_MS = 500.0  # the target: API p95 < 500 ms
P95_RED_MS = 3000.0


# --- request log ----------------------------------------------------------------------


def request_window(*, now: datetime | None = None, seconds: int = WINDOW_SECONDS) -> dict:
    """Requests, 5xx share (percent) and p95 (ms) over the window, from the request log."""
    now = now or timezone.now()
    since = (now - timedelta(seconds=seconds)).replace(second=0, microsecond=0)
    rows = RequestStat.objects.filter(minute__gte=since, minute__lte=now).values_list("count", "errors", "buckets")
    total = errors = 0
    buckets = [0] * len(LATENCY_BUCKETS_MS)
    for count, errs, row_buckets in rows:
        total += count
        errors += errs
        for index, value in enumerate(row_buckets[: len(buckets)]):
            buckets[index] += value
    return {
        "requests": total,
        "errors": errors,
        "error_rate": round(100.0 * errors / total, 2) if total else None,
        "p95_ms": percentile_from_buckets(buckets, 0.95),
    }


def percentile_from_buckets(buckets: list[int], quantile: float) -> float | None:
    """Estimate a percentile by linear interpolation inside the bucket that holds it."""
    total = sum(buckets)
    if not total:
        return None
    rank = quantile * total
    seen = 0
    lower = 0.0
    for bound, count in zip(LATENCY_BUCKETS_MS, buckets, strict=True):
        if count and seen + count >= rank:
            upper = bound if bound != float("inf") else lower * 2 or 10000.0
            return round(lower + (upper - lower) * (rank - seen) / count, 1)
        seen += count
        lower = bound if bound != float("inf") else lower
    return round(lower, 1)


# --- business -------------------------------------------------------------------------


def remaining_per_event(*, now: datetime | None = None) -> dict[str, int]:
    """Seats left per published event whose claim window has not closed (live from the DB)."""
    return {slug: seats["remaining"] for slug, seats in seats_per_event(now=now).items()}


def seats_per_event(*, now: datetime | None = None) -> dict[str, dict]:
    """``{slug: {title, remaining, capacity, claim_open, running_out}}`` per published event whose
    claim window has not closed, soonest first (one query for the events, one for the rule).

    ``claim_open``: the window has opened too. ``running_out``: the remaining-tickets alert rule
    is crossed for it (only while its window is open: a small event is not "running out" before
    anyone could claim, nor with all its seats left; ``AlertRule.threshold_for``).
    """
    now = now or timezone.now()
    rule = AlertRule.objects.filter(metric=AlertRule.Metric.REMAINING_TICKETS).first()
    rows = (
        Event.objects.filter(status=Event.Status.PUBLISHED, claim_closes_at__gt=now)
        .order_by("claim_opens_at", "slug")
        .values_list("slug", "title", "remaining", "capacity", "claim_opens_at")
    )
    seats = {}
    for slug, title, remaining, capacity, opens_at in rows:
        claim_open = opens_at <= now
        threshold = rule.threshold_for(capacity=capacity) if rule is not None else None
        seats[slug] = {
            "title": title,
            "remaining": remaining,
            "capacity": capacity,
            "claim_open": claim_open,
            "threshold": threshold,
            "running_out": bool(claim_open and rule is not None and rule.crossed(remaining, threshold)),
        }
    return seats


def claims_summary(*, now: datetime | None = None) -> dict:
    """Claims received in the last minute and the success share of recent decisions."""
    now = now or timezone.now()
    last_minute = now - timedelta(seconds=60)
    window = now - timedelta(seconds=WINDOW_SECONDS)
    received = QueueEntry.objects.filter(created_at__gt=last_minute).count()
    decided = QueueEntry.objects.filter(processed_at__gt=window).aggregate(
        completed=Count("id", filter=Q(status=QueueEntry.Status.COMPLETED)),
        failed=Count("id", filter=Q(status=QueueEntry.Status.FAILED)),
    )
    done = decided["completed"] + decided["failed"]
    return {
        "claims_per_minute": received,
        "claims_completed": decided["completed"],
        "claims_failed": decided["failed"],
        "claim_success_rate": round(100.0 * decided["completed"] / done, 2) if done else None,
    }


def queue_figures() -> dict:
    """Queue depth (waiting + being processed) and delay (age of the oldest waiting claim), as
    the queue itself measures them (the same figures as /healthz)."""
    return {
        "queue_depth": int(queue_selectors.queue_depth()),
        "queue_delay_seconds": round(float(queue_selectors.queue_delay_seconds()), 2),
    }


def door_figures_now(*, now: datetime | None = None) -> dict[str, dict]:
    """The door's figures (tickets.doorlist) of each event whose door is open now, by slug."""
    now = now or timezone.now()
    events = [event for event in events_for_door(now) if door_window(event)[0] <= now < door_window(event)[1]]
    return {event.slug: {"title": event.title, **door_figures(event=event, now=now)} for event in events}


# --- cache ----------------------------------------------------------------------------


def cache_counters() -> tuple[float, float]:
    """Cumulative cache (hits, misses) added up over every process since start."""
    hits = misses = 0.0
    for metric in _collect_families():
        if metric.name != CACHE_COUNTER:
            continue
        for sample in metric.samples:
            if not sample.name.endswith("_total"):
                continue
            result = sample.labels.get("result", "")
            if result == "hit":
                hits += sample.value
            elif result == "miss":
                misses += sample.value
    return hits, misses


def _collect_families():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry.collect()
    return REGISTRY.collect()


def cache_hit_ratio(*, hits: float, misses: float, since: MetricSample | None) -> float | None:
    """Hit share (percent) since an older sample when there is one, else since start."""
    if since is not None and hits >= since.cache_hits_total and misses >= since.cache_misses_total:
        d_hits, d_misses = hits - since.cache_hits_total, misses - since.cache_misses_total
        if d_hits + d_misses > 0:
            return round(100.0 * d_hits / (d_hits + d_misses), 2)
    if hits + misses > 0:
        return round(100.0 * hits / (hits + misses), 2)
    return None


# --- everything the dashboard shows -------------------------------------------------------


def colour_error_rate(value: float | None) -> str:
    if value is None or value < ERROR_RATE_YELLOW:
        return health_checks.GREEN
    return health_checks.YELLOW if value < ERROR_RATE_RED else health_checks.RED


def colour_latency(value: float | None) -> str:
    if value is None or value < P95_YELLOW_MS:
        return health_checks.GREEN
    return health_checks.YELLOW if value < P95_RED_MS else health_checks.RED


def live_metrics(*, now: datetime | None = None, with_health: bool = True) -> dict:
    """The dashboard's live figures (the /api/monitoring/metrics/ body)."""
    now = now or timezone.now()
    window = request_window(now=now)
    active, active_source = activity.count(now.timestamp())
    hits, misses = cache_counters()
    reference = MetricSample.objects.filter(taken_at__lte=now - timedelta(seconds=WINDOW_SECONDS)).first()
    seats = seats_per_event(now=now)
    data = {
        "remaining": {slug: s["remaining"] for slug, s in seats.items()},
        # The dashboard's tiles: each event by its title, red while it is running out (the rule).
        "events": {
            slug: {key: s[key] for key in ("title", "capacity", "claim_open", "running_out")}
            for slug, s in seats.items()
        },
        "active_users": active,
        "active_users_source": active_source,
        **claims_summary(now=now),
        "p95_ms": window["p95_ms"],
        "error_rate": window["error_rate"],
        "requests_in_window": window["requests"],
        "cache_hit_ratio": cache_hit_ratio(hits=hits, misses=misses, since=reference),
        "cache_hits_total": hits,
        "cache_misses_total": misses,
        **queue_figures(),
        "door": door_figures_now(now=now),
        "window_seconds": WINDOW_SECONDS,
        "time": now.isoformat(),
    }
    if with_health:
        report = health_checks.health_report()
        health = {name: check["status"] for name, check in report["checks"].items()}
        health["error_rate"] = colour_error_rate(data["error_rate"])
        health["latency"] = colour_latency(data["p95_ms"])
        data["health"] = health
        data["health_detail"] = report["checks"]
    return data


def requests_last_minute(*, now: datetime) -> int:
    minute = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    return RequestStat.objects.filter(minute=minute).aggregate(n=Sum("count"))["n"] or 0


def capacity_of(slugs) -> dict[str, int]:
    """``{slug: capacity}`` of these events (one query)."""
    return dict(Event.objects.filter(slug__in=list(slugs)).values_list("slug", "capacity"))


def titles_of(slugs) -> dict[str, str]:
    """``{slug: title}`` of these events (one query)."""
    return dict(Event.objects.filter(slug__in=list(slugs)).values_list("slug", "title"))


def history(*, since: datetime, until: datetime) -> list[MetricSample]:
    return list(MetricSample.objects.filter(taken_at__gte=since, taken_at__lte=until).order_by("taken_at"))


def alert_as_dict(alert: Alert) -> dict:
    """The /api/monitoring/alerts/ shape (contract) plus a few helpful fields."""
    return {
        "rule": alert.key,
        "state": alert.state,
        "value": alert.value,
        "last_value": alert.last_value,
        "threshold": alert.threshold,
        "metric": alert.rule.metric,
        "comparison": alert.rule.comparison,
        "started_at": alert.started_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }
