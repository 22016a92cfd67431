from __future__ import annotations

from django.urls import path

from . import views

app_name = "tickets"

urlpatterns = [
    path("tickets/", views.ticket_list, name="list"),
    path("tickets/<uuid:ticket_id>/", views.ticket_detail, name="detail"),
    path("tickets/<uuid:ticket_id>/return/", views.ticket_return, name="return"),
    path("tickets/<uuid:ticket_id>/print/", views.ticket_print, name="print"),
    path("tickets/sw.js", views.pocket_worker, name="pocket_worker"),
    path("api/tickets/<uuid:ticket_id>/qr/", views.api_ticket_qr, name="api_qr"),
    path("scan/", views.scan_page, name="scan"),
    path("api/me/tickets/", views.api_my_tickets, name="api_my_tickets"),
    path("api/checkin/", views.api_checkin, name="api_checkin"),
]
