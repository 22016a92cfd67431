"""The claim at the floor: one statement to PostgreSQL, no avoidable Redis or Celery work."""

from __future__ import annotations

import pytest
from django.test import Client

from ticketwar.lib.tests.test_sessions import RedisMonitor

pytestmark = pytest.mark.django_db


def _claim(client: Client, slug: str):
    return client.post(f"/api/events/{slug}/claim/", data="{}", content_type="application/json")


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    assert client.get("/api/ping/").status_code == 200  # session and user cached, as after the countdown
    return client


def test_a_claim_is_one_statement_and_no_health_check(make_user, event, django_assert_num_queries):
    from django.db import connection

    _claim(_logged_in(make_user()), event.slug)  # warms the event, its seat count and the drain rate
    client = _logged_in(make_user())
    with django_assert_num_queries(1):
        assert _claim(client, event.slug).status_code == 202
    # No `SELECT 1` before each request's first query either (Django's connection health check).
    assert connection.health_check_enabled is False


def test_a_claim_in_a_burst_asks_redis_only_what_it_needs(make_user, event, monkeypatch):
    from events import cache as events_cache
    from queueing import selectors, services

    # The memos last a second; a slow shared test machine may take longer between two claims.
    monkeypatch.setattr(services, "KICK_MEMO_SECONDS", 30.0)
    monkeypatch.setattr(selectors, "DRAIN_RATE_MEMO_SECONDS", 30.0)
    monkeypatch.setattr(events_cache, "LOCAL_TTL", 30.0)
    first, client = _logged_in(make_user()), _logged_in(make_user())
    with RedisMonitor() as monitor:
        _claim(first, event.slug)  # the burst's first claim reads the event and kicks the worker
        monitor.lines.clear()
        assert _claim(client, event.slug).status_code == 202
    commands = [line.split()[1] for line in monitor.sent()]
    # Session and user (one script), the claim budget (one script): the event and its seat
    # count are kept a second in process, and no kick (SET NX) or drain-rate read while this
    # process did both a moment ago.
    assert commands == ["EVALSHA", "EVALSHA"], monitor.sent()
