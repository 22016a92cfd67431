"""URLs with views that crash, for the error-reporting tests (not part of the site)."""

from __future__ import annotations

from django.urls import include, path


def explode_in_page(request):
    return {"ratio": 1 / 0}


def explode_in_api(request):
    raise RuntimeError("queue ledger exploded")


urlpatterns = [
    path("crash/", explode_in_page),
    path("api/crash/", explode_in_api),
    path("", include("ticketwar.urls")),
]
