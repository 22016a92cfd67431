"""The event read at the opening: answered from this process's memory, no round trip."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tools.testing import RedisMonitor

pytestmark = pytest.mark.django_db


def _warm(client, path: str) -> None:
    for _ in range(2):
        assert client.get(path).status_code == 200


def test_a_warm_logged_in_event_read_asks_neither_postgresql_nor_redis(client, student, event):
    client.force_login(student)
    url = f"/api/events/{event.slug}/"
    _warm(client, url)
    with CaptureQueriesContext(connection) as queries, RedisMonitor() as monitor:
        response = client.get(url)
    assert response.status_code == 200 and response.wsgi_request.user == student
    assert queries.captured_queries == []
    assert monitor.sent() == []


def test_event_row_and_seat_count_are_kept_a_second_in_process(
    client, student, event, django_capture_on_commit_callbacks
):
    """A read within the second needs no Redis; an edit here is seen at once, elsewhere within 1 s."""
    from django.core.cache import cache

    from events import services
    from events.cache import LOCAL_TTL, event_key

    client.force_login(student)
    url = f"/api/events/{event.slug}/"
    _warm(client, url)
    with RedisMonitor() as monitor:
        assert client.get(url).json()["title"] == event.title
    assert not [line for line in monitor.sent() if "event:" in line or "remaining:" in line], monitor.sent()

    with django_capture_on_commit_callbacks(execute=True):
        services.event_update(event_id=event.pk, title="Kuliah Umum (new room)")
    assert client.get(url).json()["title"] == "Kuliah Umum (new room)"  # an edit in this process: at once

    client.get(url)  # kept in this process again
    # Another process's write reaches Redis only: this process's copy ages out within LOCAL_TTL.
    cached, fresh_until = cache.get(event_key(event.slug))
    cached.title = "Changed elsewhere"
    cache.set(event_key(event.slug), (cached, fresh_until), timeout=600)
    time.sleep(LOCAL_TTL + 0.1)
    assert client.get(url).json()["title"] == "Changed elsewhere"
