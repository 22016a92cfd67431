"""Cached reads against the real Redis: hits, invalidation, query counts, stampedes."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client import REGISTRY

from common.cache import cache_delete, cache_get_or_compute
from events import cache as events_cache
from events import selectors, services
from events.models import Event
from tickets.services import ticket_return
from tools.testing import issue_ticket


def requests_total(family: str, result: str) -> float:
    return REGISTRY.get_sample_value("ticketwar_cache_requests_total", {"family": family, "result": result}) or 0.0


@pytest.mark.django_db
def test_hits_and_misses_are_counted_per_family(client, event):
    misses, hits = requests_total("event", "miss"), requests_total("event", "hit")
    remaining_hits = requests_total("remaining", "hit")
    client.get(f"/api/events/{event.slug}/")
    client.get(f"/api/events/{event.slug}/")
    client.get(f"/api/events/{event.slug}/")
    assert requests_total("event", "miss") == misses + 1
    assert requests_total("event", "hit") == hits + 2
    # The seat count was stored from the row read on the miss: three hits, no query.
    assert requests_total("remaining", "hit") == remaining_hits + 3


@pytest.mark.django_db
def test_warm_api_and_pages_need_no_query(client, event, django_assert_num_queries):
    client.get("/api/events/")
    client.get(f"/api/events/{event.slug}/")
    with django_assert_num_queries(0):
        assert client.get("/api/events/").status_code == 200
        assert client.get(f"/api/events/{event.slug}/").status_code == 200


@pytest.mark.django_db
def test_logged_in_page_view_needs_no_query_for_session_user_or_event(
    client, student, event, django_assert_num_queries
):
    client.force_login(student)
    client.get(f"/events/{event.slug}/")  # warms the session, the user and the event
    with django_assert_num_queries(1) as captured:
        response = client.get(f"/events/{event.slug}/")
    assert response.status_code == 200
    assert response.wsgi_request.user == student
    # The one query is the page's own: does this student hold a ticket of the event (the page
    # links it instead of offering the claim).
    assert "tickets_ticket" in captured.captured_queries[0]["sql"]


@pytest.mark.django_db
def test_changed_password_ends_other_sessions_despite_the_cached_user(client, student):
    client.force_login(student)
    assert client.get("/api/events/").wsgi_request.user.is_authenticated
    student.set_password("a-brand-new-pass!")
    student.save()
    assert not client.get("/api/events/").wsgi_request.user.is_authenticated


@pytest.mark.django_db
def test_deactivated_user_is_logged_out_at_once(client, student):
    client.force_login(student)
    assert client.get("/api/events/").wsgi_request.user.is_authenticated
    student.is_active = False
    student.save()
    assert not client.get("/api/events/").wsgi_request.user.is_authenticated


# --- invalidation ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_service_edit_publish_cancel_are_seen_at_once(client, event, django_capture_on_commit_callbacks):
    url = f"/api/events/{event.slug}/"
    assert client.get(url).json()["title"] == event.title
    assert [e["slug"] for e in client.get("/api/events/").json()] == [event.slug]
    with django_capture_on_commit_callbacks(execute=True):
        services.event_update(event_id=event.pk, title="Kuliah Umum (new room)")
    assert client.get(url).json()["title"] == "Kuliah Umum (new room)"
    assert client.get("/api/events/").json()[0]["title"] == "Kuliah Umum (new room)"
    with django_capture_on_commit_callbacks(execute=True):
        services.event_cancel(event_id=event.pk)
    assert client.get(url).json()["status"] == "cancelled"
    with django_capture_on_commit_callbacks(execute=True):
        services.event_set_status(event_id=event.pk, status=Event.Status.DRAFT)
    assert client.get(url).status_code == 404
    assert client.get("/api/events/").json() == []
    with django_capture_on_commit_callbacks(execute=True):
        services.event_publish(event_id=event.pk)
    assert client.get(url).json()["status"] == "open"


@pytest.mark.django_db
def test_capacity_change_is_seen_at_once(client, event, django_capture_on_commit_callbacks):
    url = f"/api/events/{event.slug}/"
    assert client.get(url).json()["remaining"] == 500
    with django_capture_on_commit_callbacks(execute=True):
        services.event_update(event_id=event.pk, capacity=400)
    assert client.get(url).json()["remaining"] == 400


@pytest.mark.django_db
def test_slug_change_drops_the_old_address(client, event, django_capture_on_commit_callbacks):
    old = event.slug
    assert client.get(f"/api/events/{old}/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        services.event_update(event_id=event.pk, slug="renamed-event")
    assert client.get(f"/api/events/{old}/").status_code == 404
    assert client.get("/api/events/renamed-event/").json()["slug"] == "renamed-event"


@pytest.mark.django_db
def test_admin_save_is_seen_at_once(admin_client, client, event, django_capture_on_commit_callbacks):
    from django.test import Client

    public = Client()
    url = f"/api/events/{event.slug}/"
    assert public.get(url).json()["venue"] == event.venue
    assert f">{event.title}<" in public.get(f"/events/{event.slug}/").content.decode()
    local = timezone.localtime
    form = {
        "slug": event.slug,
        "title": "Edited in the admin",
        "speaker": event.speaker,
        "description": "",
        "venue": "Gedung E",
        "starts_at_0": local(event.starts_at).strftime("%Y-%m-%d"),
        "starts_at_1": local(event.starts_at).strftime("%H:%M:%S"),
        "claim_opens_at_0": local(event.claim_opens_at).strftime("%Y-%m-%d"),
        "claim_opens_at_1": local(event.claim_opens_at).strftime("%H:%M:%S"),
        "claim_closes_at_0": local(event.claim_closes_at).strftime("%Y-%m-%d"),
        "claim_closes_at_1": local(event.claim_closes_at).strftime("%H:%M:%S"),
        "capacity": str(event.capacity),
        "status": "published",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/events/event/{event.pk}/change/", form)
    assert response.status_code == 302
    body = public.get(url).json()
    assert (body["title"], body["venue"]) == ("Edited in the admin", "Gedung E")
    assert "Edited in the admin" in public.get(f"/events/{event.slug}/").content.decode()


@pytest.mark.django_db
def test_ticket_issued_and_returned_update_the_cached_count(client, event, student, django_capture_on_commit_callbacks):
    url = f"/api/events/{event.slug}/"
    assert client.get(url).json()["remaining"] == 500
    with django_capture_on_commit_callbacks(execute=True):
        ticket = issue_ticket(event_id=event.pk, user_id=student.pk)
    assert client.get(url).json()["remaining"] == 499
    assert client.get("/api/events/").json()[0]["remaining"] == 499
    with django_capture_on_commit_callbacks(execute=True):
        ticket_return(ticket_id=ticket.id, user_id=student.pk)
    assert client.get(url).json()["remaining"] == 500


@pytest.mark.django_db
def test_sold_out_is_seen_at_once(client, make_event, student, django_capture_on_commit_callbacks):
    event = make_event(capacity=1)
    assert client.get(f"/api/events/{event.slug}/").json()["status"] == "open"
    with django_capture_on_commit_callbacks(execute=True):
        issue_ticket(event_id=event.pk, user_id=student.pk)
    assert client.get(f"/api/events/{event.slug}/").json()["status"] == "sold_out"


@pytest.mark.django_db
def test_seat_count_expires_after_its_lifetime(client, event, settings):
    settings.CACHE_TTL_REMAINING = 1
    url = f"/api/events/{event.slug}/"
    assert client.get(url).json()["remaining"] == 500
    Event.objects.filter(pk=event.pk).update(remaining=321)  # behind the cache's back
    assert client.get(url).json()["remaining"] == 500
    time.sleep(1.1)
    # Expired: this reader takes the lock and recomputes (no stale copy is served to it).
    assert client.get(url).json()["remaining"] == 321


@pytest.mark.django_db
def test_recompute_racing_an_invalidation_does_not_store_the_old_value(event):
    """A value read before a change must not overwrite the invalidation that follows it."""
    reads = []

    def load():
        reads.append(1)
        value = "old"
        cache_delete("event", "race-key")  # the change commits while we were computing
        return value

    assert cache_get_or_compute("event", "race-key", load, ttl=60) == "old"
    assert cache_get_or_compute("event", "race-key", lambda: "new", ttl=60) == "new"


# --- stampede --------------------------------------------------------------------------------


def _race(n: int, fn) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


@pytest.fixture
def counted_event_reads(monkeypatch):
    """Counts the database reads of one event row; each takes 50 ms, like a busy database."""
    calls = []
    lock = threading.Lock()
    original = selectors.event_get_public

    def slow_read(slug):
        with lock:
            calls.append(slug)
        time.sleep(0.05)
        return original(slug)

    monkeypatch.setattr(selectors, "event_get_public", slow_read)
    return calls


@pytest.mark.django_db(transaction=True)
def test_cold_key_under_a_crowd_is_computed_once(make_event, counted_event_reads):
    event = make_event()
    results = _race(40, lambda: events_cache.cached_event_payload(event.slug))
    assert len(counted_event_reads) == 1
    assert {r["slug"] for r in results} == {event.slug}


def test_a_request_that_takes_the_lock_after_a_recompute_finished_uses_its_value(monkeypatch):
    """The crowd's race, made certain: this request read the stale copy, then another request
    recomputed, stored and let the lock go before this one asked for the lock."""
    from django.core.cache import cache

    from common import cache as lib_cache

    cache.set("race-key", ("stale", time.time() - 1), timeout=60)
    take_lock = lib_cache._lock

    def lock_after_the_other_recompute(key):
        cache.set(key, ("fresh", time.time() + 30), timeout=60)  # the other request's store
        return take_lock(key)

    monkeypatch.setattr(lib_cache, "_lock", lock_after_the_other_recompute)
    computed = []
    value = cache_get_or_compute("test", "race-key", lambda: computed.append(1) or "again", ttl=30)
    assert (value, computed) == ("fresh", [])
    assert cache.get("lock:race-key") is None  # the lock it took is let go at once
    cache.delete("race-key")


@pytest.mark.django_db(transaction=True)
def test_expired_key_under_a_crowd_is_recomputed_once_while_others_serve_the_stale_copy(
    make_event, counted_event_reads, settings
):
    settings.CACHE_TTL_EVENT = 1
    event = make_event()
    events_cache.cached_event(event.slug)
    assert len(counted_event_reads) == 1
    time.sleep(1.1)
    started = time.monotonic()
    results = _race(40, lambda: events_cache.cached_event(event.slug).slug)
    assert len(counted_event_reads) == 2  # one recompute for the whole crowd
    assert set(results) == {event.slug}
    # Nobody waited for the recompute: they had the stale copy.
    assert time.monotonic() - started < 2


@pytest.mark.django_db(transaction=True)
def test_invalidated_key_under_a_crowd_is_recomputed_once_and_fresh(
    make_event, counted_event_reads, django_capture_on_commit_callbacks
):
    event = make_event()
    events_cache.cached_event(event.slug)
    services.event_update(event_id=event.pk, title="Fresh title")  # autocommit: hooks ran
    results = _race(40, lambda: events_cache.cached_event(event.slug).title)
    assert len(counted_event_reads) == 2
    assert set(results) == {"Fresh title"}


@pytest.mark.django_db
def test_unknown_slug_is_cached_as_missing(client, counted_event_reads):
    assert client.get("/api/events/no-such-event/").status_code == 404
    assert client.get("/api/events/no-such-event/").status_code == 404
    assert len(counted_event_reads) == 1


@pytest.mark.django_db
def test_event_window_opening_is_not_frozen_by_the_cache(client, make_event):
    """The status is computed per request from the cached row: it changes on time."""
    event = make_event(opens_in=1)
    assert client.get(f"/api/events/{event.slug}/").json()["status"] == "not_open"
    time.sleep(1.1)
    assert client.get(f"/api/events/{event.slug}/").json()["status"] == "open"
    assert Event.objects.get(pk=event.pk).claim_opens_at < timezone.now() + timedelta(seconds=1)


@pytest.mark.django_db
def test_failed_recompute_releases_its_lock():
    def broken():
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        cache_get_or_compute("event", "fail-key", broken, ttl=60)
    started = time.monotonic()
    # The next reader takes the lock at once (it does not wait for the 2 s lock to expire).
    assert cache_get_or_compute("event", "fail-key", lambda: "ok", ttl=60) == "ok"
    assert time.monotonic() - started < 0.3
    assert cache_get_or_compute("event", "fail-key", lambda: "recomputed", ttl=60) == "ok"
