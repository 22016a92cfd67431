"""The claim queue: claim-to-decision time and how fast a backlog drains, with a real worker and beat.

    .venv/bin/python -m loadtests.queue_bench           # docs/benchmarks/queue.json
    .venv/bin/python -m loadtests.queue_bench --quick

Own stack, the Procfile's worker and beat (no web: the claims go through the enqueue service,
``claims.services.claim_submit``, from 16 threads). ``paced``: ``--claims`` claims for
``--seats`` seats spread evenly over ``--spread`` s; ``burst``: as many, as fast as the threads go;
then the volume: ``--volume`` claims written in one INSERT with the enqueue's columns (the web
refuses claims once the seats are gone) and the real wake-up sent, once for ``--seats`` seats and
once for as many seats as claims.
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from loadtests import harness
from tools.stack import Stack, usage

BULK_ENQUEUE_SQL = """INSERT INTO ticket_queue
  (public_id, user_id, event_id, status, attempts, reason, last_error, created_at, prequeue)
SELECT gen_random_uuid(), uid, %s, 'pending', 0, '', '', clock_timestamp(), false
FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(uid, n) ORDER BY n"""


def claims(users: list, slug: str, spread: float) -> int:
    """One claim per student through the enqueue service, the i-th at i * spread / n s; how many were
    refused at once (sold out: never queued)."""
    from django.db import connection

    from claims.services import claim_submit
    from tickets.exceptions import SoldOut

    t0 = time.monotonic() + 0.2

    def one(index: int) -> int:
        time.sleep(max(0.0, t0 + index * spread / len(users) - time.monotonic()))
        try:
            claim_submit(user=users[index], event_slug=slug)
            return 0
        except SoldOut:
            return 1
        finally:
            if index % 50 == 49:
                connection.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        return sum(pool.map(one, range(len(users))))


def phase(stack: Stack, name: str, count: int, seats: int, *, spread: float | None) -> dict:
    """``count`` claims (through the service over ``spread`` s, or with ``None`` in one INSERT) for a
    fresh event of ``seats``; the decisions, the drain rate and the worker's memory peak."""
    from queueing.services import queue_kick
    from tools.testing import bulk_students

    event, users = harness.event(f"queue-{name}-{time.time_ns()}", seats), bulk_students(count)
    peak, halt = [0.0], threading.Event()

    def sample() -> None:
        while not halt.wait(0.5):
            peak[0] = max(peak[0], usage([stack.pid("worker")])[0])

    threading.Thread(target=sample, daemon=True).start()
    if spread is None:
        harness.query(BULK_ENQUEUE_SQL, [event.id, [u.pk for u in users]])
        queue_kick()
        refused = 0
    else:
        refused = claims(users, event.slug, spread)
    try:
        harness.wait_decided(event.id, 900)
    finally:
        halt.set()
    decided = harness.decisions(event.id)
    drain = decided["last_decision_s"] - decided["first_decision_s"]
    return {
        "phase": name,
        "claims": count,
        "seats": seats,
        "refused_at_once": refused,
        "decisions": decided,
        "drain_per_s": round(decided["decided"] / drain) if drain else None,
        "worker_rss_mb": round(peak[0]),
        "truth": harness.truth(event.id),
    }


def run(args) -> dict:
    if args.quick:
        args.claims, args.seats, args.spread, args.volume = 60, 30, 2.0, 300
    with Stack("queue", keep=args.keep) as stack:
        from ticketwar.celery import app

        stack.start("worker")
        stack.start("beat")
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            stack.check()
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not answer within 60 s")
        phases = [
            phase(stack, "paced", args.claims, args.seats, spread=args.spread),
            phase(stack, "burst", args.claims, args.seats, spread=0.0),
            phase(stack, "volume", args.volume, args.seats, spread=None),
            phase(stack, "volume", args.volume, args.volume, spread=None),
        ]
    return {"phases": phases, "spread": args.spread, "ok": all(p["truth"]["ok"] for p in phases)}


def markdown(record: dict) -> str:
    f, rows = record["figures"], []
    for p in f["phases"]:
        d = p["decisions"]
        arrivals = {"paced": f"over {f['spread']:g} s", "burst": "at once, 16 threads", "volume": "one INSERT"}[
            p["phase"]
        ]
        rows.append(
            [
                p["phase"],
                f"{p['claims']:,} {arrivals}",
                f"{p['seats']:,}",
                p["refused_at_once"],
                d["decided"],
                " / ".join(f"{d[k] * 1000:,.0f}" for k in ("p50", "p95", "max")),
                f"{d['last_decision_s']:.1f}",
                p["drain_per_s"],
                p["worker_rss_mb"],
                harness.held(p["truth"]),
            ]
        )
    return harness.report(
        record,
        "The claim queue",
        "the claims' threads, worker (2 processes), beat, PostgreSQL and Redis",
        harness.table(
            "phase | claims | seats: | 410 at once: | queued & decided: | claim→decision p50 / p95 / max ms: "
            "| first claim → last decision s: | drain (decided/s): | worker RSS peak MB: | invariant",
            rows,
        ),
    )


def main(argv: list[str] | None = None) -> int:
    options = [
        ("--claims", {"type": int, "default": 1000}),
        ("--seats", {"type": int, "default": 500}),
        ("--spread", {"type": float, "default": 10.0, "help": "seconds over which paced claims arrive"}),
        ("--volume", {"type": int, "default": 20000, "help": "claims of the volume phases"}),
    ]
    return harness.main(__doc__, argv, run=run, name=lambda a: "queue", options=options)


if __name__ == "__main__":
    sys.exit(main())
