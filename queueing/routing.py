from __future__ import annotations

from django.urls import path

from .consumers import QueueConsumer

websocket_urlpatterns = [
    path("ws/queue/<str:queue_id>/", QueueConsumer.as_asgi()),
]
