"""Websocket routes of every app, gathered in one list."""

from __future__ import annotations

from queueing.routing import websocket_urlpatterns as queueing_routes

websocket_urlpatterns: list = [*queueing_routes]
