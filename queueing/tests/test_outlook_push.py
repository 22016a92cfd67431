"""The pushes carry the seats left and the outlook: the waiting page's sentence keeps up."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync

from queueing.push import PROGRESS_INTERVAL_SECONDS
from queueing.tests.test_websocket import communicator_for, decide_and_push  # the websocket tests' helpers

pytestmark = pytest.mark.django_db(transaction=True)


def test_progress_pushes_carry_seats_left_and_the_outlook(make_user, make_event, enqueue, settings):
    settings.WAITLIST_EXPECTED_GIVEBACK_RATE = 0.0
    event = make_event(capacity=3)
    for _ in range(4):
        enqueue(make_user(), event)
    me = make_user()
    entry = enqueue(me, event)  # fifth for three seats: the waiting list, at first

    async def scenario() -> list[dict]:
        client = communicator_for(entry.public_id, me)
        assert (await client.connect())["type"] == "websocket.accept"
        seen = [await client.receive_json(timeout=5)]
        await decide_and_push(2)  # two tickets: 1 seat left, and I am third
        seen.append(await client.receive_json(timeout=5))
        await client.disconnect()
        return seen

    time.sleep(PROGRESS_INTERVAL_SECONDS + 0.1)
    first, after = async_to_sync(scenario)()
    assert first["position"] == 5
    assert after["position"] == 3 and after["seats_left"] == 1 and after["outlook"] == "waiting_list"


def test_the_waiting_page_has_the_sentences_for_the_script(client, student, event, enqueue):
    entry = enqueue(student, event)
    client.force_login(student)
    html = client.get(f"/queue/{entry.public_id}/").content.decode()
    assert '"outlook": {"one": {"likely": "Anda nomor %(pos)s untuk %(seats)s kursi yang tersisa."' in html
