"""What the waiting page's status read costs when the page polls (its websocket down).

The normal case is the websocket: the page reads the status once, then the server pushes. Polling
is the fallback, at most once a second per page and backing off; a poll reads the entry, and for
a live entry its place and the waiting list. Pinned here so the fallback never grows.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from queueing.processing import queue_process_batch
from tools.testing import RedisMonitor

pytestmark = pytest.mark.django_db


def _status(client: Client, queue_id: str) -> tuple[dict, list[str], list[str]]:
    with CaptureQueriesContext(connection) as queries, RedisMonitor() as redis:
        response = client.get(f"/api/queue/{queue_id}/")
    assert response.status_code == 200
    return response.json(), [q["sql"] for q in queries.captured_queries], redis.sent()


def test_a_poll_of_a_waiting_entry_reads_it_its_place_and_the_waiting_list(student, event, monkeypatch):
    from queueing import selectors

    monkeypatch.setattr(selectors, "DRAIN_RATE_MEMO_SECONDS", 30.0)  # read at most once a second
    client = Client()
    client.force_login(student)
    queue_id = client.post(f"/api/events/{event.slug}/claim/").json()["queue_id"]
    body, queries, redis = _status(client, queue_id)
    assert body["status"] == "pending" and body["position"] == 1
    assert len(queries) == 3, queries  # the entry (with event and ticket), its place, the waiting list
    assert redis == []  # the session, the user, the budget and the drain rate: in process


def test_a_poll_of_a_decided_entry_is_one_query(student, event):
    client = Client()
    client.force_login(student)
    queue_id = client.post(f"/api/events/{event.slug}/claim/").json()["queue_id"]
    queue_process_batch(limit=10)
    body, queries, redis = _status(client, queue_id)
    assert body["status"] == "completed" and body["ticket"]
    assert len(queries) == 1, queries  # a ticket holder has no use for the waiting list
    assert redis == []
