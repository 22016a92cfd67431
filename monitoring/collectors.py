"""Business gauges computed when /metrics is scraped (no per-process merge).

Computing them runs a handful of small indexed queries. Prometheus scrapes every 15-30 s, but
several scrapers (or a misconfigured one) may ask far more often: the families are kept in
process memory for ``METRICS_CACHE_SECONDS`` (10 s), and one scrape computes while concurrent
ones wait for its result, so any number of scrapes costs at most one computation per 10 s per
process.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily

from . import activity, selectors
from .models import Alert

logger = logging.getLogger("ticketwar.monitoring")

_lock = threading.Lock()
_cached: tuple[float, list] | None = None  # (time.monotonic() computed at, families)


class BusinessCollector:
    def collect(self):
        return iter(business_families())


def business_families() -> list:
    """The business gauge families, computed at most once per ``METRICS_CACHE_SECONDS``."""
    global _cached
    # Held while computing: concurrent scrapes wait for this result instead of querying too.
    with _lock:
        now = time.monotonic()
        if _cached is not None and now - _cached[0] < settings.METRICS_CACHE_SECONDS:
            return _cached[1]
        families = list(_compute())
        _cached = (time.monotonic(), families)
        return families


def forget_cached() -> None:
    """Drop the cached families (tests; the next scrape computes them again)."""
    global _cached
    with _lock:
        _cached = None


def _compute():
    try:
        seats = selectors.seats_per_event()
        claims = selectors.claims_summary()
        queue = selectors.queue_figures()
        firing = list(Alert.objects.filter(state=Alert.State.FIRING).values_list("key", flat=True))
    except Exception:  # database down: export what needs no database, /healthz says why
        logger.warning("business metrics unavailable", exc_info=True)
        seats, claims, queue, firing = {}, None, None, []
    remaining = GaugeMetricFamily(
            "ticketwar_event_remaining_tickets", "Seats left per event with an open or future claim window.",
            labels=["event"],
        )  # fmt: skip
    # With the two below, a Prometheus rule can hold each event to its own size and window.
    capacity = GaugeMetricFamily(
        "ticketwar_event_capacity_seats", "Seats per event with an open or future claim window.", labels=["event"]
    )
    window_open = GaugeMetricFamily(
        "ticketwar_event_claim_window_open", "1 once the event's claim window has opened (0 before).", labels=["event"]
    )
    for slug, figures in seats.items():
        remaining.add_metric([slug], figures["remaining"])
        capacity.add_metric([slug], figures["capacity"])
        window_open.add_metric([slug], int(figures["claim_open"]))
    yield from (remaining, capacity, window_open)
    active, _source = activity.count()
    yield GaugeMetricFamily(
            "ticketwar_active_users", "Distinct students active (request or websocket) in the last 5 minutes.",
            value=active,
        )  # fmt: skip
    if claims is not None:
        yield GaugeMetricFamily(
                "ticketwar_claims_last_minute", "Claims received in the last 60 seconds.",
                value=claims["claims_per_minute"],
            )  # fmt: skip
        decided = GaugeMetricFamily(
                "ticketwar_claims_decided_last_5m", "Claims decided in the last 5 minutes, by result.",
                labels=["result"],
            )  # fmt: skip
        decided.add_metric(["completed"], claims["claims_completed"])
        decided.add_metric(["failed"], claims["claims_failed"])
        yield decided
    if queue is not None:
        yield GaugeMetricFamily(
            "ticketwar_queue_depth", "Claims waiting or being processed.", value=queue["queue_depth"]
        )
        yield GaugeMetricFamily(
            "ticketwar_queue_delay_seconds", "Age of the oldest waiting claim.", value=queue["queue_delay_seconds"]
        )
    alerts = GaugeMetricFamily("ticketwar_alert_firing", "1 for each alert key firing now.", labels=["rule"])
    for key in firing:
        alerts.add_metric([key], 1)
    yield alerts
