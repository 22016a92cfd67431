"""Operators' monitoring interfaces: the admin dashboard, its JSON feeds, the exports, /metrics."""

from __future__ import annotations

import hmac
import os
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from common.api import json_api
from common.errors import json_error

from . import exports, selectors
from .collectors import BusinessCollector
from .models import Alert
from .timerange import parse_range

ALERTS_LIMIT = 200


# The operator role's permissions (accounts/roles.py); superusers hold both.
VIEW_DASHBOARD = "monitoring.view_dashboard"
EXPORT_LOGS = "monitoring.export_logs"


def may(user, permission: str) -> bool:
    """Whether ``user`` holds ``permission`` (active accounts only): the one check of this module."""
    return bool(user.is_authenticated and user.is_active and user.has_perm(permission))


def permission_api(permission: str):
    """JSON 401 for anonymous visitors, 403 for users without ``permission``."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return json_error(401, _("Log in as an operator to see monitoring data."), code="unauthenticated")
            if not may(request.user, permission):
                return json_error(403, _("Only operators can see monitoring data."), code="forbidden")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def operator_page(view):
    """Anonymous visitors go to the admin login; users without ``view_dashboard`` get a 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), "admin:login")
        if not (request.user.is_staff and may(request.user, VIEW_DASHBOARD)):
            return HttpResponse(_("Only operators can see the monitoring dashboard."), status=403)
        return view(request, *args, **kwargs)

    return wrapper


@never_cache
@json_api(("GET",))
@permission_api(VIEW_DASHBOARD)
def metrics_api(request):
    return JsonResponse(selectors.live_metrics())


@never_cache
@json_api(("GET",))
@permission_api(VIEW_DASHBOARD)
def alerts_api(request):
    alerts = Alert.objects.select_related("rule").order_by("-started_at", "-id")[:ALERTS_LIMIT]
    return JsonResponse([selectors.alert_as_dict(alert) for alert in alerts], safe=False)


@never_cache
@json_api(("GET",))
@permission_api(VIEW_DASHBOARD)
def history_api(request):
    """Metric samples of a time range (default: the last 24 hours) for the charts."""
    since, until = parse_range(request.GET)
    samples = selectors.history(since=since, until=until)
    slugs = {slug for s in samples for slug in (s.remaining or {})}
    return JsonResponse(
        {
            "since": since.isoformat(),
            "until": until.isoformat(),
            # Seats per event: the chart draws each event against its own capacity, by its title.
            "capacity": selectors.capacity_of(slugs),
            "titles": selectors.titles_of(slugs),
            "samples": [
                {field: getattr(s, field) for field in exports.FIELDS["metrics"]} | {"taken_at": s.taken_at.isoformat()}
                for s in samples
            ],
        }
    )


EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


@never_cache
@json_api(("GET",))
@permission_api(EXPORT_LOGS)
def export(request, kind: str, fmt: str):
    if kind not in exports.FIELDS:
        return json_error(
            404, _("Unknown export: choose requests, errors, claims, claimstats, metrics, door or doorstats.")
        )
    if fmt not in EXPORT_TYPES:
        return json_error(404, _("Unknown format: choose csv or jsonl."))
    since, until = parse_range(request.GET)
    items = exports.rows(kind, since=since, until=until)
    body = exports.as_csv(kind, items) if fmt == "csv" else exports.as_jsonl(items)
    response = StreamingHttpResponse(body, content_type=EXPORT_TYPES[fmt])
    stamp = f"{since:%Y%m%dT%H%M}-{until:%Y%m%dT%H%M}"
    response["Content-Disposition"] = f'attachment; filename="ticketwar-{kind}-{stamp}.{fmt}"'
    return response


@never_cache
@require_GET
@operator_page
def dashboard(request):
    now = timezone.localtime()  # the form's datetime-local fields are read in the server's time zone
    context = {
        **admin.site.each_context(request),
        "title": _("Monitoring dashboard"),
        # The model sidebar would squeeze the charts; the breadcrumbs lead back to the index.
        "is_nav_sidebar_enabled": False,
        "export_kinds": [
            ("requests", _("Request log (per minute and endpoint)")),
            ("errors", _("Error log with stack traces")),
            ("claims", _("Claim log (queue entries of the last hour)")),
            ("claimstats", _("Decided claims per minute and outcome")),
            ("metrics", _("Metric history")),
            ("door", _("Door scans (every scan, online and synced)")),
            ("doorstats", _("Door scans per minute and phone")),
        ],
        "default_since": (now - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M"),
        "default_until": now.strftime("%Y-%m-%dT%H:%M"),
        "thresholds": {
            "error_yellow": selectors.ERROR_RATE_YELLOW,
            "error_red": selectors.ERROR_RATE_RED,
            "p95_yellow": selectors.P95_YELLOW_MS,
            "p95_red": selectors.P95_RED_MS,
        },
    }
    return render(request, "monitoring/dashboard.html", context)


def _bearer_token(request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None without one."""
    scheme, _sep, token = request.headers.get("Authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def scrape_refusal(request) -> HttpResponse | None:
    """Why ``request`` may not read /metrics (a 401 or 403 answer), or None if it may.

    Prometheus presents ``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant time;
    no token configured means no token is accepted); people use an operator's session. A wrong
    token is refused even with a session, so a broken scrape config shows up at once.
    """
    presented = _bearer_token(request)
    if presented is not None:
        expected = settings.METRICS_TOKEN
        if expected and hmac.compare_digest(presented.encode(), expected.encode()):
            return None
        response = json_error(401, _("This metrics token is not valid."), code="invalid_token")
        response["WWW-Authenticate"] = 'Bearer realm="ticketwar", error="invalid_token"'
        return response
    if not request.user.is_authenticated:
        response = json_error(
            401, _("Log in as an operator or send the metrics token to read the metrics."), code="unauthenticated"
        )
        response["WWW-Authenticate"] = 'Bearer realm="ticketwar"'
        return response
    if not may(request.user, VIEW_DASHBOARD):
        return json_error(403, _("Only operators can read the metrics."), code="forbidden")
    return None


@never_cache
@require_GET
def prometheus_metrics(request):
    """Prometheus text format: every process's metrics (multiprocess mode) plus business gauges."""
    refusal = scrape_refusal(request)
    if refusal is not None:
        return refusal

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    business = CollectorRegistry(auto_describe=False)
    business.register(BusinessCollector())
    return HttpResponse(generate_latest(processes) + generate_latest(business), content_type=CONTENT_TYPE_LATEST)
