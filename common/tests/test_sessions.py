"""Sessions read with their user in one Redis round trip; revocation still takes effect at once."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from common.redis import get_client
from tools.testing import RedisMonitor, cached_db_session


def _user_hits() -> float:
    return REGISTRY.get_sample_value("ticketwar_cache_requests_total", {"family": "user", "result": "hit"}) or 0.0


def _warm(client, path: str = "/api/ping/") -> None:
    for _ in range(2):  # the first request stores the user entry; the second reads it with the session
        assert client.get(path).wsgi_request.user.is_authenticated


@pytest.mark.django_db
def test_logged_in_request_reads_session_and_user_in_one_round_trip(client, student):
    client.force_login(student)
    _warm(client)
    hits = _user_hits()
    with RedisMonitor() as monitor:
        response = client.get("/api/ping/")
    assert response.status_code == 200 and response.wsgi_request.user == student
    sent = monitor.sent()
    # The session and its user: one script, no GET of either on its own.
    session_reads = [line for line in sent if "django.contrib.sessions" in line]
    assert len(session_reads) == 1 and session_reads[0].split()[1] == "EVALSHA", sent
    assert not [line for line in sent if line.split()[1] == "GET"], sent
    # The API budget is counted in process memory: one round trip in all.
    assert len(sent) == 1, sent
    assert _user_hits() == hits + 1  # the user came from the cache entry read with the session


@pytest.mark.django_db
def test_password_change_elsewhere_ends_a_warm_session_at_once(client, student):
    client.force_login(student)
    _warm(client)
    student.set_password("a-brand-new-pass!")  # e.g. on another process: only the database and Redis are shared
    student.save()
    assert not client.get("/api/ping/").wsgi_request.user.is_authenticated


@pytest.mark.django_db
def test_deactivation_ends_a_warm_session_at_once(client, student):
    client.force_login(student)
    _warm(client)
    type(student).objects.filter(pk=student.pk).update(is_active=False)
    student.refresh_from_db()
    student.save()  # what the admin does: the save drops the cached user
    assert not client.get("/api/ping/").wsgi_request.user.is_authenticated


@pytest.mark.django_db
def test_logout_ends_the_session_for_every_holder_of_the_cookie(client, student):
    from django.test import Client

    client.force_login(student)
    _warm(client)
    other = Client()  # the same cookie in another tab, served by another process
    other.cookies["sessionid"] = client.cookies["sessionid"].value
    _warm(other)
    client.post("/accounts/logout/")
    assert not other.get("/api/ping/").wsgi_request.user.is_authenticated
    assert not get_client().exists(f"tw:1:sessuid:{other.cookies['sessionid'].value}")


@pytest.mark.django_db
def test_a_session_cached_before_this_engine_still_works(client, student):
    """Sessions written by Django's cached_db (no user-id key yet) are read, then upgraded."""
    session_key = cached_db_session(student)
    client.cookies["sessionid"] = session_key
    assert not get_client().exists(f"tw:1:sessuid:{session_key}")
    with RedisMonitor() as monitor:
        assert client.get("/api/ping/").wsgi_request.user == student
    # Read once (no recursion into load()), upgraded once.
    assert len([line for line in monitor.sent() if "django.contrib.sessions" in line]) == 1, monitor.sent()
    assert len([line for line in monitor.sent() if "sessuid" in line and line.split()[1] == "SET"]) == 1
    _warm(client)
    assert get_client().get(f"tw:1:sessuid:{session_key}") == str(student.pk).encode()


@pytest.mark.django_db
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
