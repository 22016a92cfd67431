from __future__ import annotations

from django.urls import path

from . import views

app_name = "waitlist"

urlpatterns = [
    path("api/events/<str:slug>/draw/", views.api_draw, name="api-draw"),
    path("events/<str:slug>/draw/", views.draw_page, name="draw"),
    path("api/waitlist/<str:offer_id>/claim/", views.api_offer_claim, name="api-claim"),
    path("waitlist/<str:offer_id>/", views.offer_page, name="offer"),
    path("waitlist/<str:offer_id>/claim/", views.offer_claim, name="claim"),
]
