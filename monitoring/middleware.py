"""Per-request measurements: latency and database work per endpoint, and who is active.

django-prometheus already times every request per view; this middleware adds the database
query count and time per request (Prometheus histograms), feeds the per-minute request log
(monitoring.recorder, in memory, flushed in the background) and marks the student active.
"""

from __future__ import annotations

import time

from django.db import connection

from . import activity, recorder
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
        DB_QUERIES_PER_REQUEST.labels(view=view).observe(timer.count)
        DB_SECONDS_PER_REQUEST.labels(view=view).observe(timer.seconds)
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
