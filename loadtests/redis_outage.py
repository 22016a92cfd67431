"""API latency with Redis up, dead (SIGKILL) and hung (SIGSTOP): the circuit breaker at work.

    .venv/bin/python -m ticketwar.devservices test -- .venv/bin/python loadtests/redis_outage.py

Runs under the private throw-away servers of ``devservices test``; starts uvicorn (one process)
on them, logs 50 students in (sessions created directly), then drives GET /api/events/,
GET /api/events/<slug>/ and the event page from 16 threads for each phase. Latencies of the
first 2 s after a failure are reported apart (that is when the breaker opens). Prints a
Markdown table (docs/CACHING.md quotes it). The load generator shares the machine.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketwar.settings")

THREADS = 16
PHASE_SECONDS = 10.0
SETTLE_SECONDS = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup_data(n_students: int = 50) -> tuple[str, list[str]]:
    import django

    django.setup()
    from datetime import timedelta

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.core.management import call_command
    from django.utils import timezone

    from events.models import Event

    call_command("migrate", "--noinput", verbosity=0)
    now = timezone.now()
    slug = "outage-bench"
    Event.objects.filter(slug=slug).delete()
    Event.objects.create(
        slug=slug, title="Outage bench", speaker="S", venue="V", capacity=500, remaining=500, status="published",
        claim_opens_at=now - timedelta(minutes=1), claim_closes_at=now + timedelta(days=1),
        starts_at=now + timedelta(days=2),
    )  # fmt: skip
    user_model = get_user_model()
    cookies = []
    for i in range(n_students):
        nim = f"{990000000 + i}"
        user, _ = user_model.objects.get_or_create(
            username=nim, defaults={"nim": nim, "email": f"{nim}@student.itera.ac.id", "email_verified_at": now}
        )
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        cookies.append(session.session_key)
    return slug, cookies


def start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "RATELIMIT_API_USER": "100000/m", "LOG_LEVEL": "ERROR"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ticketwar.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--lifespan", "off", "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.1)
    process.kill()
    raise SystemExit("uvicorn did not start")


def drive(port: int, slug: str, cookies: list[str], seconds: float) -> list[tuple[float, float, int]]:
    """(start offset, duration, status) of every request made during ``seconds``."""
    paths = ["/api/events/", f"/api/events/{slug}/", f"/events/{slug}/"]
    results: list[tuple[float, float, int]] = []
    lock = threading.Lock()
    begin = time.perf_counter()

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while time.perf_counter() - begin < seconds:
            path = paths[n % len(paths)]
            cookie = cookies[(index * 7 + n) % len(cookies)]
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Cookie": f"sessionid={cookie}"})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            with lock:
                results.append((started - begin, time.perf_counter() - started, status))
            n += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def summary(name: str, rows: list[tuple[float, float, int]]) -> str:
    if not rows:
        return f"| {name} | 0 | – | – | – | – | – |"
    durations = sorted(d for _, d, _ in rows)
    p = lambda q: durations[min(len(durations) - 1, int(len(durations) * q))] * 1000  # noqa: E731
    statuses: dict[int, int] = {}
    for _, _, status in rows:
        statuses[status] = statuses.get(status, 0) + 1
    codes = ", ".join(f"{code}: {count}" for code, count in sorted(statuses.items()))
    rate = len(rows) / max(0.001, max(t for t, _, _ in rows) - min(t for t, _, _ in rows))
    return (
        f"| {name} | {len(rows)} | {rate:.0f} | {p(0.5):.1f} | {p(0.95):.1f} | {durations[-1] * 1000:.0f} | {codes} |"
    )


def main() -> int:
    from ticketwar.devservices import redis_running, redis_start

    data_dir = os.environ.get("TICKETWAR_TEST_DATA_DIR")
    if not data_dir:
        raise SystemExit("run through `python -m ticketwar.devservices test --` (it owns the Redis this stops)")
    redis_dir = Path(data_dir) / "redis"
    redis_port = int(os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    slug, cookies = setup_data()
    port = free_port()
    server = start_server(port)
    lines = [
        "| phase | requests | req/s | p50 ms | p95 ms | max ms | statuses |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    try:
        drive(port, slug, cookies, 3)  # warm-up: caches, connections
        lines.append(summary("Redis up", drive(port, slug, cookies, PHASE_SECONDS)))

        pid = redis_running(redis_dir)
        os.kill(pid, signal.SIGKILL)
        rows = drive(port, slug, cookies, PHASE_SECONDS)
        lines.append(summary("Redis dead: first 2 s", [r for r in rows if r[0] < SETTLE_SECONDS]))
        lines.append(summary("Redis dead: breaker open", [r for r in rows if r[0] >= SETTLE_SECONDS]))

        time.sleep(0.5)
        redis_start(redis_dir, redis_port, persistent=False)
        time.sleep(6)  # one probe closes the breaker
        drive(port, slug, cookies, 3)
        lines.append(summary("Redis back", drive(port, slug, cookies, PHASE_SECONDS)))

        pid = redis_running(redis_dir)
        os.kill(pid, signal.SIGSTOP)
        try:
            rows = drive(port, slug, cookies, PHASE_SECONDS)
        finally:
            os.kill(pid, signal.SIGCONT)
        lines.append(summary("Redis hung: first 2 s", [r for r in rows if r[0] < SETTLE_SECONDS]))
        lines.append(summary("Redis hung: breaker open", [r for r in rows if r[0] >= SETTLE_SECONDS]))
    finally:
        server.terminate()
        server.wait(timeout=15)
        if not redis_running(redis_dir):
            redis_start(redis_dir, redis_port, persistent=False)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
