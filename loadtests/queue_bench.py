"""Claim-queue benchmark: claim-to-decision time and drain rate with a real worker (docs/BENCHMARKS.md, "Claim queue").

    .venv/bin/python -m tools.devservices test -- .venv/bin/python -m loadtests.queue_bench

On ``DATABASE_URL`` / ``REDIS_URL`` (the wrapper's throw-away servers), one Celery worker and beat:
``paced`` claims spread over ``--spread`` s through ``queue_enqueue`` from 16 threads, then a
``burst`` inserted as fast as possible. Prints a markdown table.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from loadtests.harness import report
from loadtests.harness.fixtures import make_event, make_students
from loadtests.harness.invariants import invariants, wait_queue_empty
from loadtests.harness.report import percentile
from loadtests.harness.stack import ROOT, django_here


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ticketwar", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_worker(timeout: float = 60) -> None:
    from ticketwar.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return
    raise SystemExit("the Celery worker did not answer within 60 s")


def fire(students, slug: str, *, spread_seconds: float, threads: int = 16) -> tuple[float, int]:
    """Claim once per student, the i-th claim at i * spread / n seconds.

    Returns the wall time and how many claims were refused at once (sold out: 410, no queueing).
    """
    from django.db import connection

    from claims.services import claim_submit
    from tickets.exceptions import SoldOut

    n = len(students)
    t0 = time.monotonic() + 0.2

    def one(index: int) -> int:
        delay = t0 + index * spread_seconds / n - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            claim_submit(user=students[index], event_slug=slug)
            return 0
        except SoldOut:
            return 1
        finally:
            if index % 50 == 49:
                connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        refused = sum(pool.map(one, range(n)))
    return time.monotonic() - t0, refused


def measure(event, arrival_seconds: float, refused_at_once: int) -> dict:
    from queueing.models import QueueEntry

    rows = list(QueueEntry.objects.filter(event=event).values_list("created_at", "processed_at", "status"))
    waits = [(done - created).total_seconds() for created, done, _ in rows]
    first_claim = min(r[0] for r in rows)
    first_done = min(r[1] for r in rows)
    last_done = max(r[1] for r in rows)
    completed = [r for r in rows if r[2] == "completed"]
    last_ticket = max(r[1] for r in completed)
    truth = invariants(os.environ["DATABASE_URL"], event.id)
    return {
        "claims": len(rows) + refused_at_once,
        "queued": len(rows),
        "refused_at_once": refused_at_once,
        "arrivals_s": arrival_seconds,
        "decided": sum(1 for r in rows if r[2] in ("completed", "failed")),
        "tickets": truth["tickets"],
        "one_per_student": truth["holders"] == truth["tickets"],
        "remaining": truth["remaining"],
        "p50": percentile(waits, 50),
        "p95": percentile(waits, 95),
        "max": max(waits),
        "tickets_per_s": len(completed) / max(1e-6, (last_ticket - first_claim).total_seconds()),
        "drain_per_s": len(rows) / max(1e-6, (last_done - first_done).total_seconds()),
    }


def run(options) -> dict:
    django_here()
    from common import redis as redis_lib

    stamp = int(time.time()) % 10**4
    processes = [
        start(["worker", "-Q", "claims,default", "--concurrency", str(options.concurrency), "--without-gossip",
               "--without-mingle", "--loglevel", "WARNING", "-n", f"bench{stamp}@%h"]),
        start(["beat", "--loglevel", "WARNING", "--schedule", f"/tmp/queue-bench-beat-{stamp}"]),  # noqa: S108
    ]  # fmt: skip
    try:
        wait_worker()
        redis_lib.get_client().ping()
        results = {}
        for phase, spread in (("paced", options.spread), ("burst", 0.0)):
            students = make_students(options.claims, f"{stamp % 1000:03d}{1 if phase == 'paced' else 2}")
            event = make_event(f"bench-{phase}-{stamp}", options.seats)
            arrivals, refused = fire(students, event.slug, spread_seconds=spread)
            wait_queue_empty(os.environ["DATABASE_URL"], event.id, 120)
            results[phase] = measure(event, arrivals, refused)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    ok = all(r["tickets"] == options.seats and r["remaining"] == 0 and r["one_per_student"] for r in results.values())
    return {**vars(options), "results": results, "ok": ok}


def markdown(figures: dict) -> str:
    results = figures["results"]
    lines = [
        f"{figures['claims']} claims for {figures['seats']} seats, one Celery worker (--concurrency "
        f"{figures['concurrency']}) + one beat, batches of 10, all on one 2-core machine "
        f"(load average over the last minute at the end: {os.getloadavg()[0]:.1f}).",
        "",
        *report.table(
            "phase | claims | arrivals over | queued | 410 at once (sold out) | queued & decided | tickets "
            "| one per student | claim→decision p50 | p95 | max | tickets/s | drain (claims/s)",
            [],
        ),
    ]
    for phase, r in results.items():
        lines.append(
            f"| {phase} | {r['claims']} | {r['arrivals_s']:.1f} s | {r['queued']} | {r['refused_at_once']} "
            f"| {r['decided']} | {r['tickets']} "
            f"| {'yes' if r['one_per_student'] else 'NO'} | {r['p50'] * 1000:.0f} ms | {r['p95'] * 1000:.0f} ms "
            f"| {r['max'] * 1000:.0f} ms | {r['tickets_per_s']:.0f} | {r['drain_per_s']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = report.parser(__doc__)
    parser.add_argument("--claims", type=int, default=1000)
    parser.add_argument("--seats", type=int, default=500)
    parser.add_argument("--spread", type=float, default=10.0, help="seconds over which paced claims arrive")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    return report.main(parser.parse_args(argv), run=run, markdown=markdown)


if __name__ == "__main__":
    sys.exit(main())
