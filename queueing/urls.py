from __future__ import annotations

from django.urls import path

from . import views

app_name = "queueing"

# <str:...> so that a malformed id reaches the view and gets the same clear 404.
urlpatterns = [
    path("api/events/<str:slug>/claim/", views.api_claim, name="api-claim"),
    path("api/queue/<str:queue_id>/", views.api_queue_status, name="api-status"),
    path("queue/<str:queue_id>/", views.waiting_page, name="waiting"),
    path("events/<str:slug>/claim/", views.claim_form, name="claim"),
]
