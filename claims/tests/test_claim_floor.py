"""The claim at the floor: one statement to PostgreSQL, no avoidable Redis or Celery work."""

from __future__ import annotations

import threading
import time

import pytest
from django.test import Client

from tools.testing import RedisMonitor, wait_until

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
    from common.redis import broker_client
    from events import cache as events_cache
    from queueing import selectors, services

    # The memos last a second; a slow shared test machine may take longer between two claims.
    monkeypatch.setattr(selectors, "DRAIN_RATE_MEMO_SECONDS", 30.0)
    monkeypatch.setattr(events_cache, "LOCAL_TTL", 30.0)
    first, client = _logged_in(make_user()), _logged_in(make_user())
    with django_capture_on_commit_callbacks(execute=True):
        _claim(first, event.slug)  # the burst's first claim reads the event and wakes a worker
    broker = broker_client()
    wait_until(lambda: broker.llen("claims"), timeout=5, message="the first claim's kick was not sent")
    kicks = []
    monkeypatch.setattr(services.queue_kicker, "request", lambda: kicks.append(1))
    with RedisMonitor() as monitor, django_capture_on_commit_callbacks(execute=True):
        assert _claim(client, event.slug).status_code == 202
    commands = [line.split()[1] for line in monitor.sent()]
    # The claim budget only (the student's first claim of the minute: django-ratelimit's SET NX
    # EX). Session and user come from the cookie and process memory; the event and its seat
    # count are kept a second in process, the drain rate too; the worker's wake-up is noted for
    # the process's kicker thread, which sends it after the answer (below).
    assert commands == ["SET"] and "rl:" in monitor.sent()[0], monitor.sent()
    assert kicks == [1]


def test_a_claim_committed_after_a_drain_started_sends_the_next_kick(
    make_user, event, django_capture_on_commit_callbacks
):
    from common.redis import get_client
    from queueing.services import KICK_KEY

    first, second = _logged_in(make_user()), _logged_in(make_user())
    with django_capture_on_commit_callbacks(execute=True):
        assert _claim(first, event.slug).status_code == 202
    wait_until(lambda: get_client().exists(KICK_KEY), timeout=5, message="no kick")  # by the kicker thread
    get_client().delete(KICK_KEY)  # what a drain does before its scan
    with django_capture_on_commit_callbacks(execute=True):
        assert _claim(second, event.slug).status_code == 202
    wait_until(lambda: get_client().exists(KICK_KEY), timeout=5, message="not kicked again")  # not left for the beat


def test_a_burst_of_claims_sends_a_kick_per_run_of_the_kicker_not_per_claim(monkeypatch):
    """The kicker's runs, not the claims, are what reach the broker; none is lost."""
    from queueing import services

    runs = []
    gate = threading.Event()

    def slow_kick() -> None:
        runs.append(1)
        gate.wait(5)  # the broker answers slowly: claims pile up meanwhile

    monkeypatch.setattr(services, "queue_kick", slow_kick)
    kicker = services.QueueKicker()
    kicker.request()
    wait_until(lambda: runs, timeout=5)
    for _ in range(50):
        kicker.request()  # fifty claims committed while the first kick is under way
    gate.set()
    wait_until(lambda: len(runs) == 2, timeout=5, message="the claims after the first run got no kick")
    time.sleep(0.2)
    assert len(runs) == 2
