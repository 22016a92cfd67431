from __future__ import annotations

from django.contrib import admin
from django.urls import path

from . import views

app_name = "queueing"

# Under the event's admin page; included before the admin's own URLs (ticketwar/urls.py).
urlpatterns = [
    path(
        "admin/events/event/<int:event_id>/draw-value/",
        admin.site.admin_view(views.draw_beacon),
        name="draw-beacon",
    ),
]
