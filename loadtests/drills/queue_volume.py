"""Queue volume drill: 20,000 queued claims for a 500-seat and for a 20,000-seat event.

    .venv/bin/python -m loadtests.drills.queue_volume            # 20,000 claims, 500 and 20,000 seats
    .venv/bin/python -m loadtests.drills.queue_volume --quick    # 300 claims, 40 and 300 seats

The backlog is written in one INSERT with ``queue_enqueue``'s columns and values (the web path
refuses claims once the seats are gone) and drained by the real worker; docs/BENCHMARKS.md,
"Queue volume: 20,000 queued claims".
"""

from __future__ import annotations

import sys
import threading
import time

from loadtests.harness import load, report
from loadtests.harness.fixtures import make_event, make_students
from loadtests.harness.invariants import decisions, invariants, query, wait_queue_empty
from loadtests.harness.stack import family, family_usage, say

FULL = {"claims": 20000, "events": [500, 20000], "drain": 900}
QUICK = {"claims": 300, "events": [40, 300], "drain": 120}

BULK_ENQUEUE_SQL = """
INSERT INTO ticket_queue (public_id, user_id, event_id, status, attempts, reason, last_error, created_at, prequeue)
SELECT gen_random_uuid(), uid, %s, 'pending', 0, '', '', clock_timestamp(), false
FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(uid, n) ORDER BY n
"""


def drain_figures(database_url: str, event_id: int) -> dict:
    d = decisions(database_url, event_id)
    span, first_done = d["first_claim_to_last_decision_seconds"], d["first_decision_seconds"]
    return {
        "decided": d["decided"], "insert_seconds": d["last_claim_seconds"], "first_decision_after_s": first_done,
        "span_s": span, "claims_per_s": d["decided"] / span if span > 0 else None,
        "drain_per_s": d["decided"] / (span - first_done) if span > first_done else None,
        "sold_out_after_s": d["first_claim_to_sold_out_seconds"], "p50": d["p50"], "p95": d["p95"], "max": d["max"],
    }  # fmt: skip


def scenario(stack, claims: int, seats: int, tag: str, drain: float) -> dict:
    """One backlog drained, the peak RSS (MB) of the worker's processes and of PostgreSQL's sampled every 0.5 s."""
    from queueing.services import queue_kick

    slug = f"drill-volume-{seats}-{int(time.time())}"
    event = make_event(slug, seats)
    say(f"{claims} students for {slug} ({seats} seats)")
    ids = [user.pk for user in make_students(claims, tag)]
    worker_pid = stack.processes["worker"].pid
    peak, pool, halt = {"worker": 0.0, "postgres": 0.0}, [0], threading.Event()

    def sample() -> None:
        while not halt.wait(0.5):
            peak["worker"] = max(peak["worker"], sum(family_usage(worker_pid)[0]))
            pool[0] = max(pool[0], len(family(worker_pid)) - 1)
            peak["postgres"] = max(peak["postgres"], stack.postgres_rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    time.sleep(1)
    query(stack.database_url, BULK_ENQUEUE_SQL, [event.id, ids])
    queue_kick()
    say(f"{claims} claims queued; draining")
    try:
        waited = wait_queue_empty(stack.database_url, event.id, drain)
    finally:
        halt.set()
        sampler.join(timeout=5)
    say(f"drained in {waited:.0f} s")
    return {
        "claims": claims, "seats": seats, "drain": drain_figures(stack.database_url, event.id),
        "invariants": invariants(stack.database_url, event.id), "rss_mb": {k: round(v) for k, v in peak.items()},
        "worker_processes": pool[0],
    }  # fmt: skip


def run(args) -> dict:
    n = load.numbers(args, QUICK, FULL, "claims")
    started = time.time()
    with load.drill(args, "queue-volume") as (stack, _receiver):
        from django.db import connection

        stack.start_processes()
        stack.wait_healthy()
        results = []
        for index, seats in enumerate(n["events"]):
            tag = f"{int(time.time()) % 100:02d}{index + 3}0"
            results.append(scenario(stack, n["claims"], seats, tag, n["drain"]))
            connection.close()
    ok = all(r["invariants"]["ok"] and r["drain"]["decided"] == r["claims"] for r in results)
    return {**load.header("loadtests.drills.queue_volume", n, started), "results": results, "ok": ok}


def markdown(f: dict) -> str:
    rows = []
    for r in f["results"]:
        d, inv = r["drain"], r["invariants"]
        sold = f"{d['sold_out_after_s']:.1f} s" if d["sold_out_after_s"] is not None else "–"
        rows.append(
            f"| {r['claims']} | {r['seats']} | {r['worker_processes']} (+ main) | {inv['tickets']} "
            f"| {inv['queue'].get('failed:sold_out', 0)} | {d['first_decision_after_s']:.2f} s | {sold} "
            f"| {d['span_s']:.1f} s | {d['claims_per_s']:.0f} | {d['p50']:.1f} s | {d['p95']:.1f} s "
            f"| {d['max']:.1f} s | {r['rss_mb']['worker']} MB | {r['rss_mb']['postgres']} MB "
            f"| {'nothing lost or doubled' if inv['ok'] else '**BROKEN**'} |"
        )
    title = "### Queue volume: 20,000 queued claims" if f["numbers"]["claims"] == 20000 else "### Queue volume"
    lines = [
        *report.heading(title, f["command"]),
        f"Run {f['started_at']} on {f['machine']} (no HTTP load during this drill). Each backlog is written "
        "in one INSERT with `queue_enqueue`'s columns and values, then the real wake-up is sent; the worker "
        "drains it in batches of 10. Delay is `processed_at - created_at`; claims/s is decided claims over "
        "the time from the first row written to the last decision.",
        "",
        *report.table(
            "claims | seats | worker processes | tickets | refused (sold out) | first decision after | sold out after "
            "| all decided after | claims decided/s | delay p50 | p95 | max | worker RSS peak | PostgreSQL RSS peak "
            "| invariants",
            rows,
        ),
        "",
        "PostgreSQL RSS adds up the postmaster and every backend, so shared buffers touched by several "
        "processes are counted more than once: an upper bound.",
        "",
        f"Verdict: {'passed' if f['ok'] else '**FAILED**'}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = report.parser(__doc__)
    parser.add_argument("--claims", type=int, default=None, help="claims per event (default 20000)")
    return report.main(parser.parse_args(argv), run=run, markdown=markdown, section="drill:queue-volume")


if __name__ == "__main__":
    sys.exit(main())
