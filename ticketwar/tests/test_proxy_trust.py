"""Who may say where a request comes from: the edge nginx (deploy/nginx/nginx.conf) and the
Procfile's processes, real ones, with a forged X-Forwarded-For. And what the edge does not show.
"""

from __future__ import annotations

import http.client
import json

import pytest

from tools.stack import Processes, run_nginx
from tools.testing import subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def get(port: int, path: str, **headers: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def processes():
    """``start(name, **env)``: a Procfile process on the test database; yields its port."""
    from django.db import connection

    started = Processes(subprocess_env(connection.settings_dict, LOG_LEVEL="WARNING"))
    try:
        yield lambda name, **env: int(started.serve(name, **env).rsplit(":", 1)[1])
    finally:
        started.stop()


def test_behind_nginx_a_client_cannot_pick_its_own_rate_limit_key(processes, tmp_path):
    """The anonymous budget (3 a minute here) counts one client however it forges the header:
    nginx overwrites X-Forwarded-For with the address it sees, the app believes it from nginx.
    One web worker: the API budgets are counted in each process's memory (docs/CACHING.md)."""
    env = {"TRUSTED_PROXIES": "127.0.0.1", "RATELIMIT_API_ANON": "3/m", "WEB_CONCURRENCY": "1"}
    web, ws = processes("web", **env), processes("ws", **env)
    with run_nginx(tmp_path, web_port=web, ws_port=ws) as (port, _internal):
        statuses = [get(port, "/api/ping/", **{"X-Forwarded-For": f"198.51.100.{i}"})[0] for i in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_the_ws_process_believes_no_forwarded_for_from_anyone(processes):
    """Straight at the ws process from the loopback (uvicorn's default trusts the header from
    127.0.0.1): a forged X-Forwarded-For does not make a new client."""
    ws = processes("ws", RATELIMIT_API_ANON="3/m", TRUSTED_PROXIES="")
    statuses = [get(ws, "/api/ping/", **{"X-Forwarded-For": f"198.51.100.{i}"})[0] for i in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_health_and_metrics_answer_only_on_the_internal_listener(processes, tmp_path):
    web, ws = processes("web"), processes("ws")
    with run_nginx(tmp_path, web_port=web, ws_port=ws) as (port, internal):
        for path in ("/healthz", "/metrics"):
            assert get(port, path)[0] == 404, path
        status, body = get(internal, "/healthz", Host="localhost")
        assert status in (200, 503) and json.loads(body)["checks"].keys() >= {"database", "redis"}
        assert get(internal, "/metrics", Host="localhost")[0] in (401, 403)  # Django's own answer: no token
        assert get(internal, "/api/ping/", Host="localhost")[0] == 404  # nothing else there
        assert get(port, "/api/ping/")[0] == 200  # the site itself is unchanged
