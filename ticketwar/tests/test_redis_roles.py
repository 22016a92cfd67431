"""Cache, broker and channel layer each on the Redis their setting names (docs/DEPLOYMENT.md).

Three real Redis servers, the web and a worker as real processes; ``REDIS_URL`` points at a
port where nothing listens, so anything still built from it would show up as a missing key.
"""

from __future__ import annotations

import json

import pytest

from tools.stack import Processes
from tools.testing import RedisServers, Student, free_port, read_until, redis_keys, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def redis_servers(tmp_path):
    servers = RedisServers(tmp_path)
    yield servers
    servers.stop()


def test_each_redis_role_talks_to_its_own_server(redis_servers, make_event, make_user):
    from django.db import connection

    urls = {role: redis_servers.start(role) for role in ("cache", "broker", "channels")}
    env = subprocess_env(
        connection.settings_dict,
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        CACHE_REDIS_URL=urls["cache"],
        CELERY_BROKER_URL=urls["broker"],
        CHANNEL_REDIS_URL=urls["channels"],
    )
    event = make_event(capacity=3)
    app = Processes(env)
    try:
        student = Student.login(app.serve("ws"), make_user())  # the ASGI process: HTTP and websockets
        status, body = student.claim(event.slug)
        assert status == 202, body
        ws = student.websocket(body["queue_id"])
        assert json.loads(ws.recv())["status"] == "pending"  # no worker yet: the kick waits in the broker
        app.start("worker", WORKER_CONCURRENCY="1")
        decided = read_until(ws, lambda m: m.get("status") == "completed", timeout=60)
        assert decided["ticket"]["event"] == event.slug
        keys = {role: redis_keys(url) for role, url in urls.items()}
        ws.close()

        # Cache: the event rows, the rate limits' counters, the queue's figures; nothing of the others.
        assert any(k.startswith("tw:1:event:") for k in keys["cache"]), keys["cache"]
        assert any(":rl:" in k or k.startswith("tw:1:rl") for k in keys["cache"]), keys["cache"]
        assert any(k.startswith("tw:queue:decided:") for k in keys["cache"]), keys["cache"]
        # Broker: Celery's queues (and the worker kick, cleared by the worker it woke).
        assert "_kombu.binding.claims" in keys["broker"], keys["broker"]
        # Channel layer: the websocket's groups.
        assert any(k.startswith("asgi:group:queue.entry.") for k in keys["channels"]), keys["channels"]
        foreign = {"cache": ("_kombu", "asgi"), "broker": ("tw:", "asgi"), "channels": ("tw:", "_kombu")}
        for role, prefixes in foreign.items():
            assert not [k for k in keys[role] if k.startswith(prefixes)], (role, keys[role])

        # The health check pings each role's own server: stop the broker's, it says so.
        status, health = student.request("GET", "/healthz")
        assert health["checks"]["redis"]["status"] == "green", health
        redis_servers.stop_one(1)
        status, health = student.request("GET", "/healthz")
        assert status == 503
        assert health["checks"]["redis"]["status"] == "red", health
        assert health["checks"]["redis"]["detail"].startswith("broker redis unreachable"), health
    finally:
        app.stop()
