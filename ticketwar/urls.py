"""URL map. Each app owns its pages and its /api/ routes in its own urls.py."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from accounts import views as accounts_views

from . import views

# The admin is the organisers' desk of this product: its name, not Django's, in its language.
admin.site.site_header = _("ticketwar administration")
admin.site.site_title = _("ticketwar admin")
# No model sidebar: on a 1366-pixel laptop it took the room of three columns of the event and
# ticket lists (the index and the breadcrumbs lead everywhere it did).
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("api/ping/", views.ping, name="ping"),
    # Monitoring pages and the draw's page under /admin/ must come before the admin's catch-all.
    path("", include("monitoring.urls")),
    path("", include("queueing.urls")),
    # The admin's own login view, wrapped: a staff login leaves a device cookie (accounts/limits.py).
    path("admin/login/", accounts_views.admin_login),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("accounts.urls")),
    path("", include("events.urls")),
    path("", include("tickets.urls")),
    path("", include("waitlist.urls")),
    path("", include("claims.urls")),
    path("", include("django_prometheus.urls")),
]

# A database outage met by a middleware (before any view) is a 503 like in the views.
handler500 = "common.errors.server_error"
