"""Per-request measurements: latency and answers per endpoint, database work, who is active.

``MonitoringMiddleware`` is the outermost middleware: it times the whole request and, once it
is answered, writes four Prometheus values (latency by view and method, the answer by status,
database queries and database time by view, through prometheus_client's public API), adds the
request to the per-minute request log (monitoring.recorder: in memory, flushed in the
background) and marks the student active (monitoring.activity: the same). No network I/O.
"""

from __future__ import annotations

import time

from django.db import connection

from . import activity, recorder
from .metrics import DB_QUERIES_PER_REQUEST, DB_SECONDS_PER_REQUEST, HTTP_LATENCY, HTTP_RESPONSES

# Not part of the application's traffic: static files. (/metrics scrapes are timed, as
# django-prometheus did, but kept out of the request log and the active students.)
_UNMEASURED_PREFIXES = ("/static/", "/favicon")
_UNLOGGED_PREFIXES = ("/metrics",)


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
        if request.path.startswith(_UNMEASURED_PREFIXES):
            return self.get_response(request)
        started = time.perf_counter()
        timer = _QueryTimer()
        with connection.execute_wrapper(timer):
            response = self.get_response(request)
        seconds = time.perf_counter() - started
        view, method = _view_name(request), recorder.method_key(request.method or "")
        latency, queries, database = _children(view, method)
        latency.observe(seconds)
        queries.observe(timer.count)
        database.observe(timer.seconds)
        _answers(response.status_code, view, method).inc()
        if request.path.startswith(_UNLOGGED_PREFIXES):
            return response
        recorder.record_request(
            endpoint=view,
            method=method,
            status=response.status_code,
            duration_ms=seconds * 1000,
            db_queries=timer.count,
            db_ms=timer.seconds * 1000,
        )
        # The user as the inner middleware loaded it; never loaded here (no query for it).
        user = getattr(request, "_cached_user", None)
        if user is not None and user.is_authenticated and not user.is_staff:
            activity.touch(user.pk)
        return response


# Each metric's child per label values, looked up once per process (``labels()`` takes a lock
# and builds its key on every call): the label values are views, methods and statuses, a few dozen.
_per_view: dict[tuple[str, str], tuple] = {}
_per_answer: dict[tuple[int, str, str], object] = {}


def _children(view: str, method: str) -> tuple:
    children = _per_view.get((view, method))
    if children is None:
        children = _per_view[(view, method)] = (
            HTTP_LATENCY.labels(view=view, method=method),
            DB_QUERIES_PER_REQUEST.labels(view=view),
            DB_SECONDS_PER_REQUEST.labels(view=view),
        )
    return children


def _answers(status: int, view: str, method: str):
    child = _per_answer.get((status, view, method))
    if child is None:
        child = _per_answer[(status, view, method)] = HTTP_RESPONSES.labels(
            status=str(status), view=view, method=method
        )
    return child


def _view_name(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unresolved>"
    return match.view_name or match.route or "<unnamed>"
