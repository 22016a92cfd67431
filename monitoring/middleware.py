"""Per-request measurements: latency and database work per endpoint, and who is active.

django-prometheus times every request per view (its two middlewares, subclassed here so that
their increments go through monitoring.metricbuffer: in process memory, written once a second);
MonitoringMiddleware adds the database query count and time per request (Prometheus
histograms, buffered the same way), feeds the per-minute request log (monitoring.recorder, in
memory, flushed in the background) and marks the student active.
"""

from __future__ import annotations

import time

from django.db import connection
from django_prometheus import middleware as django_prometheus

from . import activity, metricbuffer, recorder
from .metrics import DB_QUERIES_PER_REQUEST, DB_SECONDS_PER_REQUEST

# Not part of the application's traffic: scrapes, static files, the dashboard's own polling.
_SKIPPED_PREFIXES = ("/metrics", "/static/", "/favicon")


class _QueryTimer:
    __slots__ = ("count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - started


class MonitoringMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(_SKIPPED_PREFIXES):
            return self.get_response(request)
        started = time.perf_counter()
        timer = _QueryTimer()
        with connection.execute_wrapper(timer):
            response = self.get_response(request)
        duration_ms = (time.perf_counter() - started) * 1000
        view = _view_name(request)
        metricbuffer.child(DB_QUERIES_PER_REQUEST, view=view).observe(timer.count)
        metricbuffer.child(DB_SECONDS_PER_REQUEST, view=view).observe(timer.seconds)
        recorder.record_request(
            endpoint=view,
            method=request.method or "",
            status=response.status_code,
            duration_ms=duration_ms,
            db_queries=timer.count,
            db_ms=timer.seconds * 1000,
        )
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not user.is_staff:
            activity.touch(user.pk)
        return response


def _view_name(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unresolved>"
    return match.view_name or match.route or "<unnamed>"


class PrometheusBeforeMiddleware(django_prometheus.PrometheusBeforeMiddleware):
    """django-prometheus' outer middleware, its values buffered (monitoring.metricbuffer)."""

    def process_request(self, request):
        metricbuffer.child(self.metrics.requests_total).inc()
        request.prometheus_before_middleware_event = django_prometheus.Time()

    def process_response(self, request, response):
        metricbuffer.child(self.metrics.responses_total).inc()
        if hasattr(request, "prometheus_before_middleware_event"):
            latency = django_prometheus.TimeSince(request.prometheus_before_middleware_event)
            metricbuffer.child(self.metrics.requests_latency_before).observe(latency)
        else:
            metricbuffer.child(self.metrics.requests_unknown_latency_before).inc()
        metricbuffer.request_done()  # the outermost middleware: this request is finished
        return response


class PrometheusAfterMiddleware(django_prometheus.PrometheusAfterMiddleware):
    """django-prometheus' inner middleware, its values buffered (monitoring.metricbuffer).

    Its latency by view and method takes the method as the client sent it: a client inventing a
    method per request would add a time series each time. Named as the request log names it.
    """

    def label_metric(self, metric, request, response=None, **labels):
        if "method" in labels:
            labels["method"] = recorder.method_key(labels["method"] or "")
        return metricbuffer.child(metric, **labels)
