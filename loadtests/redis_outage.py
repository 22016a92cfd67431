"""API latency with Redis up, dead (SIGKILL) and hung (SIGSTOP): the circuit breaker at work.

    .venv/bin/python -m tools.devservices test -- .venv/bin/python -m loadtests.redis_outage

One uvicorn process on the wrapper's throw-away servers, 16 client threads with 50 logged-in
students; docs/BENCHMARKS.md, "Reads with Redis up, dead and hung" (docs/CACHING.md quotes it).
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from loadtests.harness import report
from loadtests.harness.report import percentile, table
from loadtests.harness.stack import ROOT, django_here
from tools.devservices import free_port, redis_running, redis_start

THREADS = 16
PHASE_SECONDS = 10.0
SETTLE_SECONDS = 2.0


def setup_data(n_students: int = 50) -> tuple[str, list[str]]:
    django_here()
    from loadtests.harness.fixtures import make_event, make_sessions, make_students

    slug = f"outage-bench-{int(time.time())}"
    make_event(slug, 500)
    sessions = make_sessions(make_students(n_students, f"99{int(time.time()) % 100:02d}"))
    return slug, [session["session"] for session in sessions]


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

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(worker, range(THREADS)))
    return results


def summary(name: str, rows: list[tuple[float, float, int]]) -> str:
    if not rows:
        return f"| {name} | 0 | – | – | – | – | – |"
    durations = [d * 1000 for _, d, _ in rows]
    statuses: dict[int, int] = {}
    for _, _, status in rows:
        statuses[status] = statuses.get(status, 0) + 1
    codes = ", ".join(f"{code}: {count}" for code, count in sorted(statuses.items()))
    rate = len(rows) / max(0.001, max(t for t, _, _ in rows) - min(t for t, _, _ in rows))
    return (
        f"| {name} | {len(rows)} | {rate:.0f} | {percentile(durations, 50):.1f} | {percentile(durations, 95):.1f} "
        f"| {max(durations):.0f} | {codes} |"
    )


def run(args) -> dict:
    data_dir = os.environ.get("TICKETWAR_TEST_DATA_DIR")
    if not data_dir:
        raise SystemExit("run through `python -m tools.devservices test --` (it owns the Redis this stops)")
    redis_dir = Path(data_dir) / "redis"
    redis_port = int(os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    slug, cookies = setup_data()
    port = free_port()
    server = start_server(port)
    lines = table("phase | requests | req/s | p50 ms | p95 ms | max ms | statuses", [])
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
    return {"table": lines}


def main(argv: list[str] | None = None) -> int:
    args = report.parser(__doc__).parse_args(argv)
    return report.main(args, run=run, markdown=lambda figures: "\n".join(figures["table"]))


if __name__ == "__main__":
    sys.exit(main())
