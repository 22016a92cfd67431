from __future__ import annotations

from django.urls import path

from . import views

app_name = "events"

# <str:slug> rather than <slug:slug>: a malformed slug must reach the view and get the
# same clear 404 (JSON on the API) as an unknown one, not the router's generic page.
urlpatterns = [
    path("", views.event_list, name="list"),
    path("api/events/", views.api_event_list, name="api-list"),
    path("api/events/<str:slug>/", views.api_event_detail, name="api-detail"),
]
