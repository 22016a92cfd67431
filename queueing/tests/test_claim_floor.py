"""The claim at the floor: one statement to PostgreSQL, no avoidable Redis or Celery work."""

from __future__ import annotations

import pytest
from django.test import Client

from tools.testing import RedisMonitor

pytestmark = pytest.mark.django_db


def _claim(client: Client, slug: str):
    return client.post(f"/api/events/{slug}/claim/", data="{}", content_type="application/json")


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    assert client.get("/api/ping/").status_code == 200  # the user kept in process, as after the countdown
    return client


def test_a_claim_is_one_statement_and_no_health_check(make_user, event):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _claim(_logged_in(make_user()), event.slug)  # warms the event, its seat count and the drain rate
    client = _logged_in(make_user())
    with CaptureQueriesContext(connection) as captured:
        assert _claim(client, event.slug).status_code == 202
    # The test's own transaction makes the enqueue wrap its statement in a savepoint (so a refused
    # double click can be rolled back alone); a web request runs in autocommit and makes none.
    statements = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 1, statements
    # No `SELECT 1` before each request's first query either (Django's connection health check).
    assert connection.health_check_enabled is False


def test_a_claim_in_a_burst_asks_redis_only_what_it_needs(
    make_user, event, monkeypatch, django_capture_on_commit_callbacks
):
    from events import cache as events_cache
    from queueing import selectors

    # The memos last a second; a slow shared test machine may take longer between two claims.
    monkeypatch.setattr(selectors, "DRAIN_RATE_MEMO_SECONDS", 30.0)
    monkeypatch.setattr(events_cache, "LOCAL_TTL", 30.0)
    first, client = _logged_in(make_user()), _logged_in(make_user())
    with django_capture_on_commit_callbacks(execute=True):
        _claim(first, event.slug)  # the burst's first claim reads the event and kicks the worker
    with RedisMonitor() as monitor, django_capture_on_commit_callbacks(execute=True):
        assert _claim(client, event.slug).status_code == 202
    commands = [line.split()[1] for line in monitor.sent()]
    # The claim budget (the student's first claim of the minute: django-ratelimit's SET NX EX)
    # and the worker kick (SET NX, refused while a kick is pending: no Celery message). Session
    # and user come from the cookie and process memory; the event and its seat count are kept
    # a second in process, the drain rate too.
    assert commands == ["SET", "SET"], monitor.sent()
    assert "rl:" in monitor.sent()[0] and "queue:kick" in monitor.sent()[1]


def test_a_claim_committed_after_a_drain_started_sends_the_next_kick(
    make_user, event, django_capture_on_commit_callbacks
):
    from common.redis import get_client
    from queueing.services import KICK_KEY

    first, second = _logged_in(make_user()), _logged_in(make_user())
    with django_capture_on_commit_callbacks(execute=True):
        assert _claim(first, event.slug).status_code == 202
    assert get_client().exists(KICK_KEY)  # kicked
    get_client().delete(KICK_KEY)  # what a drain does before its scan
    with django_capture_on_commit_callbacks(execute=True):
        assert _claim(second, event.slug).status_code == 202
    assert get_client().exists(KICK_KEY)  # kicked again at once, not left for the beat
