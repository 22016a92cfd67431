"""The opening spike against the web server alone: N students press "claim" in the same second.

Starts its own PostgreSQL, Redis, Celery worker and beat (``loadtests/run.py``'s ``Stack``),
then, for each web server configuration given (``--web NAME=COMMAND``; by default the
Procfile's), starts that web server on a fresh event and:

1. reads: ``GET /api/ping/`` and the cached ``GET /api/events/<slug>/`` from ``--connections``
   keep-alive connections for ``--seconds`` each (requests/s, p50, p95);
2. the floor: ``--students`` logged-in students (sessions made in the database, as after the
   login form) each open a connection and ``GET /api/ping/`` (no database, no Redis in the
   view) once spread over five times ``--spread`` (first contact: session and user caches
   filled, as the countdown's polling does), then again all within ``--spread`` seconds (the
   ping spike: the best a claim could do through the same stack);
3. the spike: each student opens a connection and POSTs ``/api/events/<slug>/claim/`` within
   ``--spread`` seconds (uniformly); latency is from each request's own send time;
4. checks the database: tickets == min(seats, students), one per student, every claim decided.

Configurations run one after the other against the same PostgreSQL and Redis, so their figures
compare within one run. Prints JSON; ``--out`` writes it to a file.

    .venv/bin/python loadtests/spike_bench.py --students 1000 --seats 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketwar.settings")

from loadtests.drills.common import DrillStack, make_event, make_sessions, make_students  # noqa: E402
from loadtests.ratios import _http_bench, _staff_cookie  # noqa: E402
from loadtests.report import percentile  # noqa: E402
from loadtests.run import _start_profilers, family_usage, say  # noqa: E402


async def _request_once(host: str, port: int, method: str, path: str, session: dict, send_at: float, out: list) -> None:
    await asyncio.sleep(max(0.0, send_at - time.perf_counter()))
    request = http_request(host, port, method, path, session, keep_alive=False)
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        status_line = await asyncio.wait_for(reader.readline(), timeout=60)
        await reader.read()
        writer.close()
        status = status_line.split()[1].decode() if status_line else "closed"
    except (OSError, TimeoutError) as exc:
        status = type(exc).__name__
    out.append((started, time.perf_counter(), status))


def http_request(host: str, port: int, method: str, path: str, session: dict, *, keep_alive: bool) -> bytes:
    """One request of a logged-in student (session cookie, CSRF token for a POST)."""
    cookie = f"sessionid={session['session']}; csrftoken={session['csrf']}"
    body = "{}" if method == "POST" else ""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nX-CSRFToken: {session['csrf']}\r\n"
        f"Cookie: {cookie}\r\nConnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n{body}"
    ).encode()


async def read_response(reader: asyncio.StreamReader) -> str:
    """Read one HTTP/1.1 response off a kept-alive connection; its status code ('closed' if none)."""
    status_line = await reader.readline()
    if not status_line:
        return "closed"
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status_line.split()[1].decode()


async def _open_warm(host: str, port: int, session: dict, gate: asyncio.Semaphore):
    """A page that has polled before: its connection is open and has carried one request."""
    async with gate:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(http_request(host, port, "GET", "/api/ping/", session, keep_alive=True))
            status = await asyncio.wait_for(read_response(reader), timeout=60)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            return f"warm-up {type(exc).__name__}"
        return (reader, writer) if status == "200" else f"warm-up {status}"


async def _send_kept_alive(
    host: str, port: int, method: str, path: str, session: dict, conn, send_at: float, out: list
) -> None:
    await asyncio.sleep(max(0.0, send_at - time.perf_counter()))
    started = time.perf_counter()
    if isinstance(conn, str):  # the warm-up failed: counted as such
        out.append((started, started, conn))
        return
    reader, writer = conn
    try:
        writer.write(http_request(host, port, method, path, session, keep_alive=True))
        status = await asyncio.wait_for(read_response(reader), timeout=60)
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        status = type(exc).__name__
    out.append((started, time.perf_counter(), status))
    writer.close()


async def _spike(
    base_url: str,
    method: str,
    path: str,
    sessions: list[dict],
    spread: float,
    *,
    kept_alive: bool = False,
    on_start=None,
) -> dict:
    """Each session sends one request, all within ``spread`` seconds.

    On its own new connection, or (``kept_alive``) on a connection opened and used once before
    the spike, as a page that polls keeps it: the spike then pays for no connection set-up.
    """
    from urllib.parse import urlparse

    parsed = urlparse(base_url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    out: list = []
    if kept_alive:
        # Open them a hundred at a time (the warm-up is no spike of its own), and quickly: the
        # server closes a connection idle for 30 s, which a page polling every 5 s never is.
        gate = asyncio.Semaphore(100)
        warm_started = time.perf_counter()
        conns = await asyncio.gather(*[_open_warm(host, port, s, gate) for s in sessions])
        warm_up_s = time.perf_counter() - warm_started
        if on_start is not None:
            on_start()  # e.g. read the server's CPU time: the warm-up is not part of the spike
        t0 = time.perf_counter() + 0.5
        await asyncio.gather(
            *[
                _send_kept_alive(host, port, method, path, s, conn, t0 + random.uniform(0, spread), out)
                for s, conn in zip(sessions, conns, strict=True)
            ]
        )
    else:
        if on_start is not None:
            on_start()
        t0 = time.perf_counter() + 0.5
        await asyncio.gather(
            *[_request_once(host, port, method, path, s, t0 + random.uniform(0, spread), out) for s in sessions]
        )
    latencies = [(end - start) * 1000 for start, end, _status in out]
    extra = {"warm_up_s": round(warm_up_s, 1)} if kept_alive else {}
    first = min(start for start, _end, _status in out)
    last = max(end for _start, end, _status in out)
    return {
        "requests": len(out),
        "statuses": dict(Counter(status for _s, _e, status in out)),
        "p50_ms": round(percentile(latencies, 50) or 0, 1),
        "p95_ms": round(percentile(latencies, 95) or 0, 1),
        "p99_ms": round(percentile(latencies, 99) or 0, 1),
        "max_ms": round(max(latencies), 1),
        "first_sent_to_last_answered_s": round(last - first, 2),
        "answered_per_second": round(len(out) / (last - first), 1),
        **extra,
    }


_DECISION_PERCENTILES_SQL = """
SELECT percentile_cont(array[0.5, 0.95]) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - created_at))
FROM ticket_queue WHERE event_id = %s AND processed_at IS NOT NULL
"""


def _check(database_url: str, slug: str, seats: int, students: int, timeout: float = 120) -> dict:
    import psycopg

    dsn = database_url.replace("postgres://", "postgresql://", 1)
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        event_id = conn.execute("SELECT id FROM events_event WHERE slug = %s", [slug]).fetchone()[0]
        while True:
            live = conn.execute(
                "SELECT count(*) FROM ticket_queue WHERE event_id = %s AND status IN ('pending', 'processing')",
                [event_id],
            ).fetchone()[0]
            if not live or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        decided = conn.execute(_DECISION_PERCENTILES_SQL, [event_id]).fetchone()[0]
        tickets, holders = conn.execute(
            "SELECT count(*), count(DISTINCT user_id) FROM tickets_ticket WHERE event_id = %s AND status = 'active'",
            [event_id],
        ).fetchone()
    expected = min(seats, students)
    return {
        "tickets": tickets,
        "holders": holders,
        "left_undecided": live,
        "claim_to_decision_p50_s": round(decided[0], 2) if decided and decided[0] is not None else None,
        "claim_to_decision_p95_s": round(decided[1], 2) if decided and decided[1] is not None else None,
        "invariant_held": tickets == holders == expected and live == 0,
    }


def _cpu_seconds(roles: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each role's process and all its children."""
    used = {}
    for role, pid in roles.items():
        sizes, cpu = family_usage(pid)
        if sizes:
            used[role] = cpu
    return used


def _start_web(stack: DrillStack, name: str, command: str) -> subprocess.Popen:
    log = (stack.work / f"web-{name}.log").open("w")
    process = subprocess.Popen(
        ["bash", "-c", command], env=stack.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    stack.processes["web"] = process
    stack.wait_healthy(answering=True)
    return process


def _procfile_web() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _sep, command = line.partition(":")
        if name.strip() == "web":
            return command.strip()
    raise RuntimeError("no web line in the Procfile")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--seats", type=int, default=500)
    parser.add_argument("--spread", type=float, default=1.0, help="claims are sent within this many seconds")
    parser.add_argument("--seconds", type=int, default=5, help="length of each read measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--web", action="append", default=[], metavar="NAME=COMMAND")
    parser.add_argument("--out", default="")
    parser.add_argument("--profile", default="", metavar="DIR", help="py-spy the web and worker during each spike")
    args = parser.parse_args(argv)
    configurations = [w.partition("=")[::2] for w in args.web] or [("procfile", _procfile_web())]

    work = Path(tempfile.mkdtemp(prefix="ticketwar-spike-"))
    stack = DrillStack(work)
    results: dict = {"students": args.students, "seats": args.seats, "spread_s": args.spread, "runs": []}
    try:
        stack.start()
        stack.start_processes(only={"worker", "beat"})
        for index, (name, command) in enumerate(configurations):
            users = make_students(args.students, f"9{index}00")
            sessions = make_sessions(users)
            slug = f"spike-{index}-{int(time.time())}"
            make_event(slug, args.seats)
            say(f"{name}: {command}")
            web = _start_web(stack, name, command)
            cookie = _staff_cookie()
            run: dict = {"name": name, "command": command, "reads": []}
            for path in ("/api/ping/", f"/api/events/{slug}/"):
                asyncio.run(_http_bench(stack.base_url, path, cookie, args.connections, 2))
                cpu_before = _cpu_seconds({"web": web.pid})["web"]
                measured = asyncio.run(_http_bench(stack.base_url, path, cookie, args.connections, args.seconds))
                cpu = _cpu_seconds({"web": web.pid})["web"] - cpu_before
                measured["web_cpu_ms_per_request"] = round(cpu * 1000 / max(1, measured["requests"]), 2)
                run["reads"].append(measured)
            # Each student's first request loads its session and user into the cache, as the
            # countdown's polling does on the day; spread out, so it is no spike itself.
            for phase, spread in (("first_contact", max(5.0, 5 * args.spread)), ("ping_spike", args.spread)):
                before = _cpu_seconds({"web": web.pid})["web"]
                run[phase] = asyncio.run(_spike(stack.base_url, "GET", "/api/ping/", sessions, spread))
                cpu = _cpu_seconds({"web": web.pid})["web"] - before
                run[phase]["web_cpu_ms_per_request"] = round(cpu * 1000 / args.students, 2)
            profilers = []
            if args.profile:
                roles = {"web": web.pid, "worker": stack.processes["worker"].pid}
                profilers = _start_profilers(str(Path(args.profile) / name), roles, int(args.spread) + 12)
            roles = {
                "web": web.pid,
                "worker": stack.processes["worker"].pid,
                "postgres": stack.postgres_pid(),
                "redis": stack.redis_pid(),
            }
            before = _cpu_seconds(roles)
            claim_path = f"/api/events/{slug}/claim/"
            run["spike"] = asyncio.run(_spike(stack.base_url, "POST", claim_path, sessions, args.spread))
            run["database"] = _check(stack.env["DATABASE_URL"], slug, args.seats, args.students)
            after = _cpu_seconds(roles)
            run["cpu_seconds"] = {role: round(after[role] - before[role], 2) for role in after if role in before}
            run["spike"]["web_cpu_ms_per_claim"] = round(run["cpu_seconds"]["web"] * 1000 / args.students, 2)
            for profiler in profilers:
                profiler.wait(timeout=60)
            say(json.dumps(run))
            results["runs"].append(run)
            os.killpg(web.pid, 15)
            web.wait(timeout=30)
            del stack.processes["web"]
    finally:
        stack.stop()
    command_line = [".venv/bin/python", "loadtests/spike_bench.py", *sys.argv[1:]]
    results["command"] = " ".join(shlex.quote(a) for a in command_line)
    text = json.dumps(results, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
