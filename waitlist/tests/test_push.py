"""An offer reaches the waiting page's websocket (real Redis channel layer, real consumer)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter

from claims.services import claims_decide_batch
from tickets.models import Ticket
from tickets.services import ticket_return
from ticketwar.routing import websocket_urlpatterns
from tools.testing import WebsocketClient
from waitlist.models import WaitlistEntry

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_freed_seat_is_pushed_to_the_next_students_open_waiting_page(make_user, make_event, enqueue):
    event = make_event(capacity=1)
    holder, me = make_user(), make_user()
    enqueue(holder, event)
    mine = enqueue(me, event)
    while claims_decide_batch().taken:
        pass
    mine.refresh_from_db()
    assert mine.reason == "sold_out"
    listed = WaitlistEntry.objects.get(event=event, user=me)
    assert listed.queue_public_id == mine.public_id

    @database_sync_to_async
    def give_back():
        ticket = Ticket.objects.get(event=event, user=holder)
        ticket_return(ticket_id=ticket.id, user_id=holder.id)  # commits: the hooks run

    async def scenario() -> dict:
        client = WebsocketClient(URLRouter(websocket_urlpatterns), f"/ws/queue/{mine.public_id}/", me)
        assert (await client.connect())["type"] == "websocket.accept"
        first = await client.receive_json(timeout=5)
        assert first["status"] == "failed"
        await give_back()
        message = await client.receive_json(timeout=5)
        await client.disconnect()
        return message

    message = async_to_sync(scenario)()
    listed.refresh_from_db()
    assert listed.status == "offered"
    assert message["offer"]["url"] == f"/waitlist/{listed.public_id}/"
    assert message["offer"]["status"] == "offered" and message["offer"]["offer_expires_at"]
