"""Redis dead (SIGKILL) or hung (SIGSTOP) while requests keep coming, then back again.

These tests stop the run's real Redis (fixture ``redis_server``) and always restore it.
"""

from __future__ import annotations

import time

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from common.breaker import get_breaker
from common.cache import pending_invalidations
from events import services as event_services

P95_BOUND_SECONDS = 0.5


def requests_total(family: str, result: str) -> float:
    return REGISTRY.get_sample_value("ticketwar_cache_requests_total", {"family": family, "result": result}) or 0.0


def p95(durations: list[float]) -> float:
    ordered = sorted(durations)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


def run_reads(anon: Client, student_client: Client, slug: str, n: int = 50) -> tuple[list[int], list[float]]:
    urls = [
        (anon, "/api/events/"),
        (anon, f"/api/events/{slug}/"),
        (student_client, "/api/events/"),
        (student_client, f"/events/{slug}/"),
        (anon, "/"),
    ]
    statuses, durations = [], []
    for i in range(n):
        client, url = urls[i % len(urls)]
        started = time.perf_counter()
        response = client.get(url)
        durations.append(time.perf_counter() - started)
        statuses.append(response.status_code)
    return statuses, durations


def wait_closed(timeout: float = 5.0) -> None:
    from common.redis import ping

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ping()
        if get_breaker("redis").state == "closed":
            return
        time.sleep(0.05)
    raise AssertionError(f"the redis breaker did not close: {get_breaker('redis').snapshot()}")


@pytest.fixture
def clients(student):
    anon, logged_in = Client(), Client()
    logged_in.force_login(student)  # the session is written to PostgreSQL and to the cache
    return anon, logged_in


@pytest.fixture
def fast_probe():
    """Probe a dead Redis again after 0.3 s instead of 5 s, to keep the test short."""
    breaker = get_breaker("redis")
    saved = breaker.reset_timeout
    breaker.reset_timeout = 0.3
    yield breaker
    breaker.reset_timeout = saved


@pytest.mark.django_db
@pytest.mark.parametrize("failure", ["dead", "hung"])
def test_reads_keep_answering_from_postgresql(redis_server, clients, event, settings, failure):
    # Generous budgets: this test is about outages, not about limits (which must not misfire).
    settings.RATELIMIT_API_ANON = "1000/m"
    anon, logged_in = clients
    statuses, _ = run_reads(anon, logged_in, event.slug, n=10)  # warm the cache
    assert set(statuses) == {200}

    redis_server.kill() if failure == "dead" else redis_server.hang()
    statuses, durations = run_reads(anon, logged_in, event.slug, n=53)
    assert set(statuses) == {200}, statuses  # no 500, no wrongful 429, nobody logged out
    breaker = get_breaker("redis")
    assert breaker.state == "open"
    # The first requests may pay a few socket timeouts (that is what opens the breaker)...
    assert sum(durations[:3]) < 3 * 4 * settings.REDIS_SOCKET_TIMEOUT + 1
    # ...after that, no request waits for Redis.
    assert p95(durations[3:]) < P95_BOUND_SECONDS, sorted(durations)[-5:]
    # Still logged in, from the database copy of the session.
    assert logged_in.get("/api/events/").wsgi_request.user.is_authenticated
    health = Client().get("/healthz").json()["checks"]["redis"]
    assert health["status"] == "red" and health["breakers"]["redis"]["state"] == "open"


@pytest.mark.django_db
@pytest.mark.parametrize("failure", ["dead", "hung"])
def test_breaker_closes_and_caching_resumes_when_redis_is_back(
    redis_server, clients, event, fast_probe, settings, failure
):
    anon, logged_in = clients
    redis_server.kill() if failure == "dead" else redis_server.hang()
    for _ in range(5):
        assert anon.get(f"/api/events/{event.slug}/").status_code == 200
    assert fast_probe.state == "open"

    redis_server.restart() if failure == "dead" else redis_server.resume()
    time.sleep(fast_probe.reset_timeout + 0.05)
    assert anon.get(f"/api/events/{event.slug}/").status_code == 200  # the probe
    wait_closed()
    hits = requests_total("event", "hit")
    anon.get(f"/api/events/{event.slug}/")
    anon.get(f"/api/events/{event.slug}/")
    assert requests_total("event", "hit") >= hits + 1  # cached again
    # Sessions live in their cookies: a Redis that was killed logged nobody out.
    assert logged_in.get("/api/events/").wsgi_request.user.is_authenticated
    assert Client().get("/healthz").json()["checks"]["redis"]["status"] == "green"


@pytest.mark.django_db
def test_login_works_and_sessions_survive_with_redis_dead(redis_server, make_user, event):
    user = make_user(password="correct horse battery")
    already = Client()
    already.force_login(user)
    redis_server.kill()
    # An existing session is read from its cookie, its user from this process's memory.
    assert already.get(f"/events/{event.slug}/").wsgi_request.user == user
    # A new login works and its session is usable on the next request.
    fresh = Client()
    response = fresh.post("/accounts/login/", {"username": user.nim, "password": "correct horse battery"})
    assert response.status_code == 302
    assert fresh.get("/api/events/").wsgi_request.user == user


@pytest.mark.django_db
@pytest.mark.parametrize("failure", ["dead", "hung"])
def test_rate_limits_fall_back_to_process_memory(
    redis_server, client, student, other_student, event, settings, failure
):
    """Not everyone blocked, not everyone free: the exact budgets are kept per process, and
    the per-process ones never needed Redis."""
    from django.urls import reverse

    settings.RATELIMIT_CLAIM = "2/m"
    settings.RATELIMIT_API_USER = "5/m"
    client.force_login(student)
    redis_server.kill() if failure == "dead" else redis_server.hang()
    fallback = REGISTRY.get_sample_value("ticketwar_ratelimit_fallback_total", {"budget": "claim"}) or 0
    claim = f"/api/events/{event.slug}/claim/"
    assert [client.post(claim).status_code for _ in range(3)] == [202, 200, 429]
    assert REGISTRY.get_sample_value("ticketwar_ratelimit_fallback_total", {"budget": "claim"}) == fallback + 3
    codes = [client.get(reverse("ping")).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    other = Client()
    other.force_login(other_student)
    assert other.get(reverse("ping")).status_code == 200
    assert other.post(claim).status_code == 202


@pytest.mark.django_db
def test_invalidation_missed_during_a_hang_is_applied_when_redis_answers(
    redis_server, client, event, fast_probe, django_capture_on_commit_callbacks
):
    url = f"/api/events/{event.slug}/"
    assert client.get(url).json()["title"] == event.title  # cached
    redis_server.hang()
    for _ in range(4):
        client.get(url)  # opens the breaker
    with django_capture_on_commit_callbacks(execute=True):
        event_services.event_update(event_id=event.pk, title="Changed during the outage")
    # The hook ran but could not reach Redis: it is remembered.
    assert any(key.startswith("event:") for key in pending_invalidations())
    assert client.get(url).json()["title"] == "Changed during the outage"  # from PostgreSQL
    redis_server.resume()
    time.sleep(fast_probe.reset_timeout + 0.05)
    wait_closed()
    assert client.get(url).json()["title"] == "Changed during the outage"
    assert pending_invalidations() == set()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("failure", ["dead", "hung"])
def test_claims_are_accepted_during_the_outage_and_completed_after(
    redis_server, make_user, make_event, celery_worker_process, fast_probe, failure
):
    from queueing.models import QueueEntry
    from queueing.services import queue_kick
    from tickets.models import Ticket

    event = make_event(capacity=10)
    students = [make_user() for _ in range(4)]
    redis_server.kill() if failure == "dead" else redis_server.hang()
    durations = []
    for student in students:
        client = Client()
        client.force_login(student)
        started = time.perf_counter()
        response = client.post(f"/api/events/{event.slug}/claim/")
        durations.append(time.perf_counter() - started)
        assert response.status_code == 202, response.content
    assert QueueEntry.objects.filter(event=event, status=QueueEntry.Status.PENDING).count() == 4
    assert max(durations[2:]) < P95_BOUND_SECONDS  # breakers open: claims do not wait for Redis

    redis_server.restart() if failure == "dead" else redis_server.resume()
    time.sleep(fast_probe.reset_timeout + 0.05)
    wait_closed()
    get_breaker("broker").reset()  # as after its own delay; keeps the test short
    celery_worker_process()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        queue_kick()
        if Ticket.objects.filter(event=event).count() == 4:
            break
        time.sleep(0.5)
    assert Ticket.objects.filter(event=event).count() == 4
    assert not QueueEntry.objects.filter(event=event, status=QueueEntry.Status.PENDING).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("failure", ["dead", "hung"])
def test_door_check_in_works_with_redis_down(redis_server, staff, student, door_event, failure):
    import json

    from tools.testing import issue_ticket

    ticket = issue_ticket(event_id=door_event.pk, user_id=student.pk)
    door = Client()
    door.force_login(staff)
    redis_server.kill() if failure == "dead" else redis_server.hang()
    answers = [
        door.post(
            "/api/checkin/", json.dumps({"code": code, "event": door_event.slug}), content_type="application/json"
        )
        for code in ("ZZZZZZZZ", "YYYYYYYY", "XXXXXXXX", ticket.redeem_code)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert answers[-1].json()["result"] == "admitted"


def test_open_breaker_keeps_every_redis_user_off_the_network():
    """Cache API, raw client and ping all answer at once while the breaker is open."""
    from django.core.cache import cache

    from common.redis import CircuitOpen, get_client, ping

    breaker = get_breaker("redis")
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    assert ping() == (False, "redis circuit breaker open (recent calls failed)")
    with pytest.raises(CircuitOpen):
        get_client().get("anything")
    assert cache.get("anything", "default") == "default"  # a miss, not an error
    breaker.reset()
    assert ping() == (True, "")
    cache.set("anything", 1)
    assert cache.get("anything") == 1


def test_an_error_reply_is_not_a_redis_failure():
    import redis.exceptions

    from common.redis import get_client

    breaker = get_breaker("redis")
    for _ in range(breaker.failure_threshold + 1):
        with pytest.raises(redis.exceptions.ResponseError):
            get_client().execute_command("NO-SUCH-COMMAND")
    assert breaker.state == "closed" and breaker.failures == 0
