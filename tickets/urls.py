from __future__ import annotations

from django.urls import path
from django.views.generic import RedirectView

from . import door_views, views

app_name = "tickets"

urlpatterns = [
    path("tickets/", views.ticket_list, name="list"),
    path("tickets/<uuid:ticket_id>/", views.ticket_detail, name="detail"),
    path("tickets/<uuid:ticket_id>/return/", views.ticket_return, name="return"),
    path("tickets/<uuid:ticket_id>/print/", views.ticket_print, name="print"),
    path("tickets/<uuid:ticket_id>/confirm/", views.confirm_page, name="confirm"),
    # Where confirmation e-mails sent before it moved here link to.
    path("waitlist/confirm/<uuid:ticket_id>/", RedirectView.as_view(pattern_name="tickets:confirm", permanent=True)),
    path("tickets/sw.js", views.pocket_worker, name="pocket_worker"),
    path("api/tickets/<uuid:ticket_id>/qr/", views.api_ticket_qr, name="api_qr"),
    path("api/me/tickets/", views.api_my_tickets, name="api_my_tickets"),
    # The door (door_views.py): the scan page, its offline worker and manifest, check-in, door list, sync.
    path("scan/", door_views.scan_page, name="scan"),
    path("scan/sw.js", door_views.scan_worker, name="scan_worker"),
    path("scan/manifest.webmanifest", door_views.scan_manifest, name="scan_manifest"),
    path("api/checkin/", door_views.api_checkin, name="api_checkin"),
    path("api/door/<str:slug>/list/", door_views.api_door_list, name="api_door_list"),
    path("api/door/<str:slug>/sync/", door_views.api_door_sync, name="api_door_sync"),
]
