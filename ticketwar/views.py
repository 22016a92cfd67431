"""Project-level views: health, and a do-nothing view to measure the framework's floor."""

from __future__ import annotations

from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.cache import never_cache

from common.api import json_api
from common.errors import is_api_request, json_error
from monitoring.health import RED, health_report


@never_cache
@json_api(("GET",))
def healthz(request):
    report = health_report()
    return JsonResponse(report, status=503 if report["status"] == RED else 200)


@never_cache
@json_api(("GET",))
def ping(request):
    """The cheapest JSON answer the stack can give: no database, no Redis in the view.

    Load tests compare the cached event endpoint with it (docs/BENCHMARKS.md).
    """
    return JsonResponse({"ok": True})


def csrf_failure(request, reason: str = ""):
    """A refused CSRF check: JSON on the API (clients read `error`), Django's page elsewhere."""
    if is_api_request(request):
        return json_error(
            403,
            _("The request was refused: the CSRF token is missing or wrong (send X-CSRFToken)."),
            code="csrf_failed",
        )
    return html_csrf_failure(request, reason=reason)
