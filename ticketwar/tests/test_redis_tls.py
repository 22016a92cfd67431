"""The whole app over TLS to Redis, as Upstash serves it: stunnel4 in front of a real Redis,
a throw-away CA, certificate verification on (docs/DEPLOYMENT.md, "Managed Redis")."""

from __future__ import annotations

import json

import pytest

from tools import devservices
from tools.stack import Processes
from tools.testing import RedisServers, Student, free_port, probe_redis_roles, read_until, redis_keys, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def tls_redis(tmp_path):
    """A real Redis behind stunnel: ``(rediss URL, plain URL, certificates, another CA)``."""
    servers = RedisServers(tmp_path)
    plain = servers.start("tls")
    certs = devservices.make_test_ca(tmp_path / "certs")
    other = devservices.make_test_ca(tmp_path / "certs", "other")
    port = free_port()
    tunnel = devservices.stunnel_start(
        tmp_path / "stunnel", port, int(plain.rsplit(":", 1)[1].split("/")[0]), cert=certs["cert"], key=certs["key"]
    )
    yield f"rediss://127.0.0.1:{port}/0", plain, certs, other
    devservices.stop_process(tunnel)
    servers.stop()


def _env(url: str, ca, **extra: str) -> dict[str, str]:
    from django.db import connection

    return subprocess_env(connection.settings_dict, REDIS_URL=url, REDIS_CA_FILE=str(ca), **extra)


def test_cache_rate_limits_broker_and_pushes_over_verified_tls(tls_redis, make_event, make_user):
    url, plain, certs, _other = tls_redis
    event = make_event(capacity=3)
    app = Processes(_env(url, certs["ca"], RATELIMIT_CLAIM="2/m"))
    try:
        student = Student.login(app.serve("ws"), make_user())  # the ASGI process: HTTP and websockets
        status, body = student.claim(event.slug)
        assert status == 202, body
        # The budget's counter is in Redis, over TLS. The three clicks follow each other at once:
        # spread over the decision's seconds, they could straddle the end of a fixed window.
        assert student.claim(event.slug)[0] == 200  # already queued: the same entry
        status, limited = student.claim(event.slug)  # the third claim in a minute: over the limit
        assert status == 429, limited
        ws = student.websocket(body["queue_id"])
        assert json.loads(ws.recv())["status"] == "pending"
        app.start("worker", WORKER_CONCURRENCY="1")  # the kick waits in the broker, over TLS
        decided = read_until(ws, lambda m: m.get("status") == "completed", timeout=60)  # pushed over TLS
        assert decided["ticket"]["event"] == event.slug
        ws.close()
        status, body = student.request("GET", f"/api/events/{event.slug}/")
        assert status == 200, body
    finally:
        app.stop()
    # What went through the tunnel is in the Redis behind it.
    keys = redis_keys(plain)
    assert any(k.startswith("tw:1:event:") for k in keys), keys
    assert any(":rl:" in k or k.startswith("tw:1:rl") for k in keys), keys
    assert "_kombu.binding.claims" in keys, keys


def test_every_role_refuses_a_server_its_ca_did_not_sign(tls_redis):
    url, _plain, certs, other = tls_redis
    trusted = probe_redis_roles(_env(url, certs["ca"]))
    assert set(trusted.values()) == {"ok"}, trusted
    refused = probe_redis_roles(_env(url, other["ca"]))
    # Django's cache reads a refused Redis as a miss (IGNORE_EXCEPTIONS); its client says why.
    assert refused.pop("cache").startswith("AssertionError: cache miss"), refused
    for role, outcome in refused.items():
        assert "certificate verify failed" in outcome.lower(), (role, refused)
