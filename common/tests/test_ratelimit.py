"""Rate limits: exact counts in Redis, per-process counts in memory, exact Retry-After, the right keys."""

from __future__ import annotations

import ipaddress
import time
import zlib

import pytest
from django.http import JsonResponse
from django.test import RequestFactory
from django.urls import path

from common.ratelimit import check, client_ip, client_network, process_counters, rate_limited
from tools.testing import RedisMonitor

pytestmark = pytest.mark.django_db


# A URLconf for the decorator on its own (the real claim view is tested in test_claim_limits).
@rate_limited("claim")
def _claim_like(request):
    return JsonResponse({"ok": True}, status=202)


def _status_like(request, queue_id):
    return JsonResponse({"queue_id": queue_id})


urlpatterns = [
    path("api/test/claim/", _claim_like),
    path("api/queue/<str:queue_id>/", _status_like),
]


def seconds_left(value: str, period: int = 60) -> int:
    """django-ratelimit's window end for ``value``, minus now (the window still counts for its
    last whole second, so Retry-After must say one more)."""
    ts = int(time.time())
    window = ts - (ts % period) + (zlib.crc32(value.encode()) % period)
    if window < ts:
        window += period
    return window - ts


def assert_exact_retry_after(response, value: str, before: int) -> None:
    after = seconds_left(value)
    assert response.status_code == 429
    body = response.json()
    assert body["error"] and body["retry_after"] == int(response["Retry-After"])
    # One more than the window's end minus now (its last second still counts); the clock may
    # have ticked over one second between the two readings; nothing else.
    assert body["retry_after"] in {before + 1, after + 1}


@pytest.mark.urls(__name__)
def test_claim_budget_is_three_per_student_per_minute(client, student, other_student, settings):
    settings.RATELIMIT_CLAIM = "3/m"
    client.force_login(student)
    for _ in range(3):
        assert client.post("/api/test/claim/").status_code == 202
    before = seconds_left(f"user:{student.pk}")
    response = client.post("/api/test/claim/")
    assert_exact_retry_after(response, f"user:{student.pk}", before)
    # Another student from the same IP (campus NAT) still has all three attempts.
    client.force_login(other_student)
    for _ in range(3):
        assert client.post("/api/test/claim/").status_code == 202
    assert client.post("/api/test/claim/").status_code == 429


@pytest.mark.urls(__name__)
def test_waiting_exactly_retry_after_is_enough(client, student, settings):
    # A student who presses "claim" the moment the countdown ends must not be refused again.
    settings.RATELIMIT_CLAIM = "1/3s"
    client.force_login(student)
    for _round in range(2):
        responses = []
        while not responses or responses[-1].status_code != 429:  # use up the window
            responses.append(client.post("/api/test/claim/"))
            assert len(responses) <= 3, [r.status_code for r in responses]
        time.sleep(int(responses[-1]["Retry-After"]))
        assert client.post("/api/test/claim/").status_code == 202


def test_the_in_memory_counters_say_the_same_wait():
    for _round in range(2):
        verdict = process_counters.hit("claim", "user:1", (1, 3))
        while not verdict.limited:
            verdict = process_counters.hit("claim", "user:1", (1, 3))
        time.sleep(verdict.retry_after)
        assert not process_counters.hit("claim", "user:1", (1, 3)).limited


def test_the_claim_budget_is_the_same_for_every_process_and_the_api_budget_is_per_process(student, settings):
    """The claim is counted in Redis (exact across replicas); the general API budget in this
    process's memory, and without a Redis command."""
    settings.RATELIMIT_CLAIM = "3/m"
    settings.RATELIMIT_API_USER = "3/m"
    request = RequestFactory().get("/api/x/")
    request.user = student
    for _ in range(3):
        assert not check(request, "claim").limited
    with RedisMonitor() as redis:
        for _ in range(3):
            assert not check(request, "api_user").limited
    assert redis.sent() == []
    process_counters.clear()  # what another process knows of this student
    assert check(request, "claim").limited
    assert not check(request, "api_user").limited


def test_a_claim_in_a_new_window_is_one_redis_command(student):
    request = RequestFactory().post("/api/x/")
    request.user = student
    with RedisMonitor() as redis:
        assert not check(request, "claim").limited
    # django-ratelimit's ADD (SET NX EX): the window's first hit, as a student's one claim is.
    assert [line.split()[1] for line in redis.sent()] == ["SET"], redis.sent()


@pytest.mark.urls(__name__)
def test_claim_limit_follows_the_setting(client, student, settings):
    settings.RATELIMIT_CLAIM = "5/m"
    client.force_login(student)
    codes = [client.post("/api/test/claim/").status_code for _ in range(6)]
    assert codes == [202] * 5 + [429]


def test_anonymous_api_budget_is_per_ip(client, event, settings):
    settings.RATELIMIT_API_ANON = "10/m"
    codes = [client.get("/api/ping/").status_code for _ in range(10)]
    assert codes == [200] * 10
    before = seconds_left("ip:127.0.0.1")
    response = client.get("/api/ping/")
    assert_exact_retry_after(response, "ip:127.0.0.1", before)
    # Another address is counted on its own.
    assert client.get("/api/ping/", REMOTE_ADDR="10.9.8.7").status_code == 200


def test_logged_in_students_behind_one_nat_ip_are_counted_per_user(client, make_user, settings):
    settings.RATELIMIT_API_ANON = "10/m"
    settings.RATELIMIT_API_USER = "12/m"
    # The anonymous budget of the shared IP is used up...
    for _ in range(10):
        client.get("/api/ping/")
    assert client.get("/api/ping/").status_code == 429
    # ...yet each logged-in student behind that IP has their own budget.
    for _ in range(3):
        client.force_login(make_user())
        codes = [client.get("/api/ping/").status_code for _ in range(13)]
        assert codes == [200] * 12 + [429]


def test_staff_are_not_held_by_the_general_api_budget(client, staff, settings):
    settings.RATELIMIT_API_USER = "2/m"
    client.force_login(staff)
    assert {client.get("/api/ping/").status_code for _ in range(5)} == {200}


@pytest.mark.urls(__name__)
def test_queue_polling_has_its_own_budget(client, student, settings):
    settings.RATELIMIT_API_USER = "2/m"
    settings.RATELIMIT_QUEUE_STATUS = "4/m"
    client.force_login(student)
    codes = [client.get("/api/queue/abc/").status_code for _ in range(5)]
    assert codes == [200] * 4 + [429]
    # Polling did not use the general budget.
    codes = [client.post("/api/test/claim/").status_code for _ in range(1)]
    assert codes == [202]


def test_html_pages_are_not_rate_limited(client, event, settings):
    settings.RATELIMIT_API_ANON = "2/m"
    assert {client.get("/").status_code for _ in range(5)} == {200}


def test_rate_limiting_can_be_switched_off(client, settings):
    settings.RATELIMIT_ENABLE = False
    settings.RATELIMIT_API_ANON = "1/m"
    assert {client.get("/api/ping/").status_code for _ in range(3)} == {200}


# --- client IP ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.9", "", [], "203.0.113.9"),
        # Not from a trusted proxy: the header is ignored (anyone could forge it).
        ("203.0.113.9", "1.2.3.4", [], "203.0.113.9"),
        ("203.0.113.9", "1.2.3.4", ["10.0.0.1"], "203.0.113.9"),
        # From the trusted proxy: the last address it saw.
        ("10.0.0.1", "1.2.3.4", ["10.0.0.1"], "1.2.3.4"),
        # A client cannot pick its key by prepending addresses: the rightmost untrusted one wins.
        ("10.0.0.1", "6.6.6.6, 1.2.3.4", ["10.0.0.1"], "1.2.3.4"),
        # Two proxy hops, given as a network.
        ("10.0.0.1", "1.2.3.4, 10.0.0.7", ["10.0.0.0/24"], "1.2.3.4"),
        # Garbage in the header: the proxy's own address, never the garbage.
        ("10.0.0.1", "not-an-ip", ["10.0.0.1"], "10.0.0.1"),
    ],
)
def test_client_ip_trusts_forwarded_for_only_from_configured_proxies(settings, remote, forwarded, trusted, expected):
    settings.TRUSTED_PROXIES = proxies(*trusted)
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def proxies(*items: str) -> tuple:
    """``TRUSTED_PROXIES`` as the settings parse it."""
    return tuple(ipaddress.ip_network(item) for item in items)


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        # IPv6 clients are counted per /64: the phone's next address is the same client.
        ("2001:db8:1:2:aaaa::1", "", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb:cccc:dddd:eeee", "", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "", "2001:db8:1:3::/64"),
        # Forwarded by the proxy, and IPv4 seen through a dual-stack socket.
        ("10.0.0.1", "2001:db8:9:9::77", "2001:db8:9:9::/64"),
        ("::ffff:203.0.113.9", "", "203.0.113.9"),
        ("203.0.113.9", "", "203.0.113.9"),
    ],
)
def test_limits_count_ipv6_clients_per_64(settings, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = proxies("10.0.0.1")
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_network(request) == expected


def test_one_ipv6_phone_cannot_take_a_new_budget_per_address(client, settings):
    settings.RATELIMIT_API_ANON = "2/m"
    statuses = [client.get("/api/ping/", REMOTE_ADDR=f"2001:db8:1:2::{i + 1:x}").status_code for i in range(3)]
    assert statuses == [200, 200, 429]


def test_anonymous_budget_keys_on_the_forwarded_client_behind_a_trusted_proxy(client, settings):
    settings.TRUSTED_PROXIES = proxies("127.0.0.1")
    settings.RATELIMIT_API_ANON = "2/m"
    for _ in range(2):
        assert client.get("/api/ping/", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 200
    assert client.get("/api/ping/", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429
    assert client.get("/api/ping/", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 200


def test_real_claim_endpoint_allows_three_attempts_per_minute(client, student, event, settings):
    settings.RATELIMIT_CLAIM = "3/m"
    client.force_login(student)
    url = f"/api/events/{event.slug}/claim/"
    codes = [client.post(url).status_code for _ in range(3)]
    assert codes == [202, 200, 200]  # queued, then the same entry again
    before = seconds_left(f"user:{student.pk}")
    assert_exact_retry_after(client.post(url), f"user:{student.pk}", before)


def test_anonymous_claims_are_counted_on_the_anonymous_ip_budget(client, event, settings):
    settings.RATELIMIT_API_ANON = "2/m"
    url = f"/api/events/{event.slug}/claim/"
    assert [client.post(url).status_code for _ in range(3)] == [401, 401, 429]
