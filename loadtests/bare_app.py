"""The reference of the floor benchmark: a bare Django view, no apps, no middleware.

Served by the same server command as ticketwar's web (``loadtests/floor.py`` swaps the WSGI
target), so the difference between the two is what ticketwar's own request path costs.
"""

from __future__ import annotations

from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bare-view-reference-only-not-a-secret",  # noqa: S106 - serves one constant JSON
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        USE_I18N=False,
    )

from django.core.wsgi import get_wsgi_application
from django.http import JsonResponse
from django.urls import path


def ping(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("api/ping/", ping)]
application = get_wsgi_application()
