from __future__ import annotations

from django.urls import path

from . import views

app_name = "claims"

# <str:...> so that a malformed slug or id reaches the view and gets the same clear 404 (JSON on
# the API) as an unknown one, not the router's generic page.
urlpatterns = [
    path("events/<str:slug>/", views.event_page, name="event"),
    path("events/<str:slug>/claim/", views.claim_form, name="claim"),
    path("api/events/<str:slug>/claim/", views.api_claim, name="api-claim"),
    path("queue/<str:queue_id>/", views.waiting_page, name="waiting"),
    path("api/queue/<str:queue_id>/", views.api_queue_status, name="api-status"),
    path("events/<str:slug>/waitlist/", views.waitlist_choice, name="waitlist"),
    path("api/events/<str:slug>/waitlist/", views.api_waitlist, name="api-waitlist"),
]
