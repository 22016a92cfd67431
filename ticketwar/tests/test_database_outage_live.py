"""PostgreSQL stopped under a logged-in student: every answer is a 503, DEBUG on or off.

Measured from outside with ``make run``: with PostgreSQL stopped for 15 s, 270 of 360 answers to
40 logged-in students were HTTP 500 (Django's debug page), because the failure happened in a
middleware loading the session or the user, before any view, where ``handler500`` is bypassed
while DEBUG is on. Here the real app runs under uvicorn against a throw-away PostgreSQL server of
its own, which the test stops with ``pg_ctl`` (the run's shared test database is left alone).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
import requests

from tools import devservices, stack

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "outage-pass-123"
SLUG = "outage-drill"

pytestmark = pytest.mark.slow


def _env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, PYTHONUNBUFFERED="1", **extra)
    return env


def _manage(env: dict[str, str], *argv: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]


class ThrowAwayPostgres:
    def __init__(self, pgdata: Path, port: int) -> None:
        self.pgdata, self.port = pgdata, port
        self.url = f"postgres://postgres@127.0.0.1:{port}/{devservices.DB_NAME}"

    def start(self) -> None:
        devservices.pg_start(self.pgdata, self.port, fast=True)

    def stop(self) -> None:
        devservices.pg_stop(self.pgdata)  # pg_ctl stop -m fast, as the drills do


@pytest.fixture(scope="module")
def site():
    """A migrated throw-away PostgreSQL with one event and one verified student."""
    if not os.environ.get("TICKETWAR_TEST_DATA_DIR"):
        pytest.fail("run the tests through `python -m tools.devservices test` (it owns the test Redis)")
    # Not under pytest's base temp: concurrent pytest runs on the machine prune old ones.
    work = Path(tempfile.mkdtemp(prefix="ticketwar-outage-"))
    postgres = ThrowAwayPostgres(work / "pg", devservices.free_port())
    postgres.start()
    # A Redis database of its own: the run's other tests clear theirs between tests.
    redis_url = urlunparse(urlparse(os.environ["REDIS_URL"])._replace(path="/9"))
    env = _env(postgres.url, redis_url)
    try:
        _manage(env, "migrate", "--noinput")
        _manage(env, "create_event", "--slug", SLUG, "--capacity", "5")
        out = work / "students.csv"
        _manage(env, "create_students", "--count", "1", "--prefix", "77", "--password", PASSWORD, "--out", str(out))
        with out.open() as handle:
            nim = next(row for row in csv.DictReader(handle))["nim"]
        yield postgres, redis_url, nim, work
    finally:
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def server(site):
    """Start the ws process (uvicorn) on the throw-away database; yields ``start(debug) -> (base_url, log_path)``."""
    postgres, redis_url, _nim, work = site
    processes: list[subprocess.Popen] = []

    def start(debug: bool) -> tuple[str, Path]:
        postgres.start()
        port = devservices.free_port()
        log_path = work / f"web-{port}.log"
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        # Rate limits off: this is about outages, and the polling below would exhaust them.
        env = _env(
            postgres.url, redis_url, DEBUG="true" if debug else "false", LOG_LEVEL="INFO", RATELIMIT_ENABLE="false"
        )
        process = stack.start("ws", env, output=log_path, WS_PORT=str(port))  # the app's ASGI process
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()[-2000:]
            try:
                requests.get(f"{base}/api/ping/", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
                time.sleep(0.2)
        return base, log_path

    yield start
    stack.stop(*processes, timeout=10)
    postgres.start()  # the next test finds it running


def _log_in(base: str, nim: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/accounts/login/", timeout=10).raise_for_status()
    response = session.post(
        f"{base}/accounts/login/",
        data={"username": nim, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=10,
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:500]
    return session


def _requests(session: requests.Session, base: str) -> list[tuple[str, str]]:
    return [
        ("GET", "/api/events/"),
        ("GET", f"/api/events/{SLUG}/"),
        ("GET", "/"),
        ("GET", f"/events/{SLUG}/"),
        ("POST", f"/api/events/{SLUG}/claim/"),
        ("GET", "/tickets/"),
        ("GET", "/api/me/tickets/"),
    ]


def _send(session: requests.Session, base: str, method: str, path: str) -> requests.Response:
    headers = {"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": f"{base}/"}
    return session.request(method, f"{base}{path}", headers=headers, timeout=15, allow_redirects=False)


def _records(log_path: Path) -> list[dict]:
    records = []
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            records.append({"level": "RAW", "message": line})
    return records


@pytest.mark.parametrize("debug", [True, False], ids=["debug-on", "debug-off"])
def test_a_stopped_database_answers_503_to_a_logged_in_student(site, server, debug):
    postgres, redis_url, nim, _work = site
    base, log_path = server(debug)
    student = _log_in(base, nim)
    anonymous = requests.Session()
    assert _send(student, base, "GET", "/api/events/").status_code == 200

    postgres.stop()
    seen = []
    # Twice with Redis holding the cached reads, then with it emptied, as after a Redis restart
    # (the user of a logged-in request is asked of PostgreSQL by a process in doubt: 503).
    for round_ in range(3):
        if round_ == 2:
            import redis

            redis.Redis.from_url(redis_url).flushdb()
        for who, client in (("student", student), ("anonymous", anonymous)):
            for method, path in _requests(client, base):
                response = _send(client, base, method, path)
                seen.append((round_, who, method, path, response.status_code))
                # A read the cache can still serve may answer 200, an anonymous claim 401 and an
                # anonymous ticket list the login redirect; nothing may be a 500.
                expected = {200, 503} if who == "student" else {200, 302, 401, 503}
                assert response.status_code in expected, (who, method, path, response.status_code, response.text[:300])
                if response.status_code != 503:
                    continue
                assert response.headers.get("Retry-After"), (method, path)
                if path.startswith("/api/"):
                    body = response.json()
                    assert body["code"] == "unavailable" and body["error"], body
                else:
                    assert response.headers["Content-Type"].startswith("text/html")
                    assert "Traceback" not in response.text
    assert len(seen) == 3 * 2 * 7
    unavailable = {(who, method, path) for _r, who, method, path, status in seen if status == 503}
    # Those need the database whatever the cache holds.
    assert ("student", "POST", f"/api/events/{SLUG}/claim/") in unavailable
    assert ("student", "GET", "/tickets/") in unavailable

    # Logged as one warning for the outage, not as an error with a stack trace per request.
    time.sleep(0.5)
    records = _records(log_path)
    errors = [
        r
        for r in records
        if r.get("level") in {"ERROR", "CRITICAL"} or (r.get("level") == "RAW" and "Traceback" in r["message"])
    ]
    assert errors == [], errors[:3]
    assert not any("exc_info" in r for r in records), [r for r in records if "exc_info" in r][:1]
    warnings = [r for r in records if r.get("level") == "WARNING" and r.get("logger") == "ticketwar.errors"]
    assert len(warnings) == 1, warnings

    # And back: the first requests after the restart are answered normally.
    postgres.start()
    deadline = time.monotonic() + 15
    while (response := _send(student, base, "GET", "/api/events/")).status_code != 200:
        assert time.monotonic() < deadline, ("no recovery after PostgreSQL came back", response.text[:300])
        time.sleep(0.2)
