"""Live updates: the Channels consumer against the real Redis channel layer, and the real page."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from django.contrib.auth.models import AnonymousUser

from queueing.processing import queue_process_batch
from queueing.push import PROGRESS_INTERVAL_SECONDS, flush_pushes, push_batch
from tickets.selectors import format_redeem_code
from ticketwar.routing import websocket_urlpatterns
from tools.testing import WebsocketClient

pytestmark = pytest.mark.django_db(transaction=True)


def communicator_for(queue_id: str, user) -> WebsocketClient:
    return WebsocketClient(URLRouter(websocket_urlpatterns), f"/ws/queue/{queue_id}/", user)


@database_sync_to_async
def decide_and_push(limit: int):
    result = queue_process_batch(limit=limit)
    push_batch(result.decisions)
    flush_pushes()
    return result


def test_a_waiting_client_sees_its_position_fall_and_its_ticket_arrive(make_user, make_event, enqueue):
    event = make_event(capacity=10)
    for _ in range(4):
        enqueue(make_user(), event)
    me = make_user()
    entry = enqueue(me, event)

    async def scenario() -> list[dict]:
        communicator = communicator_for(str(entry.public_id), me)
        assert (await communicator.connect())["type"] == "websocket.accept"
        seen = [await communicator.receive_json(timeout=5)]
        for _round in range(2):
            await decide_and_push(2)
            seen.append(await communicator.receive_json(timeout=5))
            time.sleep(PROGRESS_INTERVAL_SECONDS + 0.1)  # the next progress message is due
        await decide_and_push(10)
        seen.append(await communicator.receive_json(timeout=5))
        while seen[-1]["status"] == "pending":  # the event's progress (seats left) may come first
            seen.append(await communicator.receive_json(timeout=5))
        await communicator.disconnect()
        return seen

    seen = async_to_sync(scenario)()
    assert [m["position"] for m in seen[:3]] == [5, 3, 1]
    assert all(m["status"] == "pending" and m["eta_seconds"] is not None for m in seen[:3])
    assert set(seen[0]) >= {"queue_id", "status", "position", "eta_seconds", "ticket"}
    final = seen[-1]
    assert final["status"] == "completed" and final["position"] is None
    entry.refresh_from_db()
    assert final["ticket"]["redeem_code"] == entry.ticket.redeem_code


def test_a_refused_client_hears_the_reason(make_user, make_event, enqueue):
    event = make_event(capacity=1)
    enqueue(make_user(), event)
    me = make_user()
    entry = enqueue(me, event)

    async def scenario() -> dict:
        communicator = communicator_for(str(entry.public_id), me)
        await communicator.connect()
        await communicator.receive_json(timeout=5)
        await decide_and_push(10)
        message = await communicator.receive_json(timeout=5)
        while message["status"] == "pending":  # a progress message may come first
            message = await communicator.receive_json(timeout=5)
        await communicator.disconnect()
        return message

    message = async_to_sync(scenario)()
    assert message["status"] == "failed" and message["reason_code"] == "sold_out" and message["reason"]


@pytest.mark.parametrize("who", ["other", "anonymous", "malformed"])
def test_websocket_is_owner_only(who, student, other_student, event, enqueue):
    entry = enqueue(student, event)
    user = {"other": other_student, "anonymous": AnonymousUser(), "malformed": student}[who]
    queue_id = "not-a-uuid" if who == "malformed" else str(entry.public_id)

    async def scenario() -> dict:
        communicator = communicator_for(queue_id, user)
        assert (await communicator.connect())["type"] == "websocket.accept"
        return await communicator.receive_output(timeout=5)

    output = async_to_sync(scenario)()
    assert output["type"] == "websocket.close"
    assert output["code"] == (4403 if who == "anonymous" else 4404)


def test_client_messages_change_nothing(student, event, enqueue):
    entry = enqueue(student, event)

    async def scenario() -> None:
        communicator = communicator_for(str(entry.public_id), student)
        await communicator.connect()
        await communicator.receive_json(timeout=5)
        await communicator.send_json({"status": "completed"})
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()

    async_to_sync(scenario)()
    entry.refresh_from_db()
    assert entry.status == "pending"


@pytest.mark.browser
def test_waiting_page_shows_the_ticket_without_reload(
    live_split_server, celery_worker_process, phone_page, make_user, make_event, enqueue
):
    """As under `make run`: the page from the web process, its websocket on the ws process."""
    from django.test import Client

    from claims.tasks import process_queue

    event = make_event(capacity=5)
    for _ in range(2):
        enqueue(make_user(), event)
    me = make_user()
    entry = enqueue(me, event)
    client = Client()
    client.force_login(me)
    live = live_split_server.url
    phone_page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live}])
    sockets = []
    phone_page.on("websocket", lambda ws: sockets.append(ws.url))
    phone_page.goto(f"{live}/queue/{entry.public_id}/")
    assert phone_page.locator("#queue-position").inner_text() == "3"
    assert phone_page.locator("#queue-ticket").is_hidden()
    phone_page.evaluate("window.__sameDocument = true")
    phone_page.wait_for_function("document.getElementById('queue-eta').textContent.length > 0")
    celery_worker_process(concurrency=1)
    process_queue.apply_async()
    phone_page.locator("#queue-ticket").wait_for(state="visible", timeout=20000)
    entry.refresh_from_db()
    # Shown as the ticket page shows it (one format everywhere): ABCD-EFGH.
    assert phone_page.locator("#queue-redeem").inner_text() == format_redeem_code(entry.ticket.redeem_code)
    assert phone_page.locator("#queue-ticket-link").get_attribute("href") == f"/tickets/{entry.ticket_id}/"
    assert phone_page.evaluate("window.__sameDocument") is True  # no reload
    assert phone_page.locator("#queue-mode").is_hidden()  # the websocket did it, not the polling fallback
    # On the ws process's own port, not the page's (WEBSOCKET_ORIGIN, passed by the page).
    assert f"{live_split_server.ws_origin}/ws/queue/{entry.public_id}/" in sockets
    assert all(url.startswith(live_split_server.ws_origin + "/") for url in sockets), sockets


def test_an_open_websocket_counts_its_student_as_active(student, event, enqueue):
    from monitoring import activity
    from monitoring.websockets import ActiveStudentsMiddleware

    activity.forget_all()
    entry = enqueue(student, event)

    async def scenario() -> None:
        # As ticketwar/asgi.py stacks it: the consumer itself knows nothing of monitoring.
        app = ActiveStudentsMiddleware(URLRouter(websocket_urlpatterns))
        communicator = WebsocketClient(app, f"/ws/queue/{entry.public_id}/", student)
        assert (await communicator.connect())["type"] == "websocket.accept"
        await communicator.receive_json(timeout=5)
        await communicator.disconnect()

    assert activity.count()[0] == 0
    async_to_sync(scenario)()
    active, source = activity.count()
    assert (active, source) == (1, "redis")
