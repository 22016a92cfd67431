"""Every Prometheus metric ticketwar declares itself, in one block.

The two HTTP families keep the names django-prometheus gave them (the alert rules and the
Grafana dashboard read them); ``monitoring.middleware`` writes them, once per request, through
prometheus_client's public API. django-prometheus adds the database families (``django_db_*``,
its database backend); common declares its breaker and cache counters next to the code that
counts, and the queue its decided claims (``queueing.deciding``: the queue sits below monitoring).
Business gauges (remaining tickets, active users, queue) are computed when /metrics is scraped
(monitoring/collectors.py), so they are never stale and need no multiprocess merging.

In production ``PROMETHEUS_MULTIPROC_DIR`` is set before any process starts: every web worker,
Celery worker child and beat writes its values to files there and /metrics adds them up.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Request latency (seconds): 0.5 s is the p95 target, 3 s the alert threshold (exact in PromQL).
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, float("inf"))
# Buckets in seconds for the database time one request spends; queries per request in units.
_DB_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_DB_QUERY_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 100)

# fmt: off
HTTP_LATENCY = Histogram(
    "django_http_requests_latency_seconds_by_view_method", "Time to answer one HTTP request, by view and method.",
    ["view", "method"], buckets=_LATENCY_BUCKETS,
)
HTTP_RESPONSES = Counter(
    "django_http_responses_total_by_status_view_method", "HTTP answers by status code, view and method.",
    ["status", "view", "method"],
)
DB_QUERIES_PER_REQUEST = Histogram(
    "ticketwar_db_queries_per_request", "Database queries run by one HTTP request, per view.",
    ["view"], buckets=_DB_QUERY_BUCKETS,
)
DB_SECONDS_PER_REQUEST = Histogram(
    "ticketwar_db_seconds_per_request", "Time one HTTP request spent in database queries, per view.",
    ["view"], buckets=_DB_SECONDS_BUCKETS,
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
