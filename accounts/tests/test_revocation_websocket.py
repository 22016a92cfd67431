"""Websockets follow the same rule as the pages: an ended session opens none, and one left open
hears nothing more of the student's own data."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from django.test import Client

from accounts.revocation import WebsocketAuthMiddleware
from queueing.push import entry_group
from ticketwar.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

APP = SessionMiddlewareStack(WebsocketAuthMiddleware(URLRouter(websocket_urlpatterns)))


def socket(queue_id: str, cookie: str) -> ApplicationCommunicator:
    scope = {
        "type": "websocket",
        "path": f"/ws/queue/{queue_id}/",
        "query_string": b"",
        "headers": [(b"cookie", f"sessionid={cookie}".encode()), (b"host", b"testserver")],
        "subprotocols": [],
    }
    return ApplicationCommunicator(APP, scope)


def test_an_ended_session_opens_no_socket(student, event, enqueue):
    entry = enqueue(student, event)
    browser = Client()
    browser.force_login(student)
    cookie = browser.cookies["sessionid"].value
    browser.post("/accounts/logout/")

    async def scenario() -> dict:
        ws = socket(str(entry.public_id), cookie)
        await ws.send_input({"type": "websocket.connect"})
        assert (await ws.receive_output(5))["type"] == "websocket.accept"
        return await ws.receive_output(5)

    closed = async_to_sync(scenario)()
    assert (closed["type"], closed.get("code")) == ("websocket.close", 4403), closed


def test_a_socket_left_open_by_an_ended_session_hears_no_more(student, event, enqueue):
    entry = enqueue(student, event)
    browser = Client()
    browser.force_login(student)
    cookie = browser.cookies["sessionid"].value

    async def scenario() -> dict:
        ws = socket(str(entry.public_id), cookie)
        await ws.send_input({"type": "websocket.connect"})
        assert (await ws.receive_output(5))["type"] == "websocket.accept"
        assert (await ws.receive_output(5))["type"] == "websocket.send"  # the entry as it stands
        await database_sync_to_async(browser.post)("/accounts/logout/")  # on another process, say
        decided = {"queue_id": str(entry.public_id), "status": "completed", "ticket": {"code": "TW1.secret"}}
        await get_channel_layer().group_send(entry_group(entry.public_id), {"type": "queue.entry", "entry": decided})
        return await ws.receive_output(5)

    closed = async_to_sync(scenario)()
    assert (closed["type"], closed.get("code")) == ("websocket.close", 4403), closed
