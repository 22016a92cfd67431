"""Every Prometheus metric ticketwar declares itself, in one block.

django-prometheus adds the HTTP (``django_http_*``, per view and method, latency histograms
with the buckets of settings.PROMETHEUS_LATENCY_BUCKETS), database (``django_db_*``) and cache
families; common declares its breaker and cache counters next to the code that counts.
Business gauges (remaining tickets, active users, queue) are computed when /metrics is scraped
(monitoring/collectors.py), so they are never stale and need no multiprocess merging.

In production ``PROMETHEUS_MULTIPROC_DIR`` is set before any process starts: every web worker,
Celery worker child and beat writes its values to files there and /metrics adds them up.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Buckets in seconds for the database time one request spends; queries per request in units.
_DB_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_DB_QUERY_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 100)

# fmt: off
DB_QUERIES_PER_REQUEST = Histogram(
    "ticketwar_db_queries_per_request", "Database queries run by one HTTP request, per view.",
    ["view"], buckets=_DB_QUERY_BUCKETS,
)
DB_SECONDS_PER_REQUEST = Histogram(
    "ticketwar_db_seconds_per_request", "Time one HTTP request spent in database queries, per view.",
    ["view"], buckets=_DB_SECONDS_BUCKETS,
)
CLAIMS_DECIDED = Counter(
    "ticketwar_claims_decided", "Claims decided by the queue, by result (completed or failed) and reason.",
    ["result", "reason"],
)
REQUEST_LOG_DROPPED = Counter(
    "ticketwar_request_log_dropped",
    "Request-log rows (minute, endpoint, method) dropped because the database stayed away too long.",
)
ERRORS_LOGGED = Counter(
    "ticketwar_errors_logged", "Errors logged with a stack trace (ERROR and above), by logger.", ["logger"],
)
ALERT_NOTIFICATIONS = Counter(
    "ticketwar_alert_notifications", "Alert notifications attempted, by channel and outcome (sent, failed, skipped).",
    ["channel", "outcome"],
)
ALERT_TRANSITIONS = Counter(
    "ticketwar_alert_transitions", "Alerts that started firing or resolved, by rule metric.", ["metric", "state"],
)
# fmt: on


def record_claim_decision(*, result: str, reason: str = "") -> None:
    """Count one decided claim (``result`` 'completed' or 'failed'); ``queueing.deciding`` calls
    this for every decision it has committed."""
    CLAIMS_DECIDED.labels(result=result, reason=reason or "none").inc()
