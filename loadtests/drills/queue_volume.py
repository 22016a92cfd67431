"""Queue volume drill: 20,000 queued claims for a 500-seat and for a 20,000-seat event.

    .venv/bin/python loadtests/drills/queue_volume.py            # 20,000 claims, 500 and 20,000 seats
    .venv/bin/python loadtests/drills/queue_volume.py --quick    # 300 claims, 40 and 300 seats

Private stack (PostgreSQL, Redis, web with 2 uvicorn workers, Celery worker with the Procfile's
``--concurrency`` (``WORKER_CONCURRENCY``, default 2), beat). For each event: 20,000 verified
students are created in bulk, then 20,000 ``pending`` rows are written to ``ticket_queue`` in one
INSERT with the very columns and values of ``queueing.services.queue_enqueue`` (a backlog that
arrived all at once: the web path cannot queue 20,000 claims for 500 seats, because once the
seats are gone it answers 410 without queueing), and the real wake-up
(``queueing.services.queue_kick``) is sent. The worker drains them through the real code
(batches of 10, ``SKIP LOCKED``, one transaction per decision). Measured: claims decided per
second, claim-to-decision delay p50/p95/max, peak RSS of the worker (main + pool) and of
PostgreSQL (postmaster + backends), and the invariants.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from loadtests.drills import checks, common, tables
from loadtests.drills.common import say

FULL = {"claims": 20000, "events": [500, 20000], "drain": 900}
QUICK = {"claims": 300, "events": [40, 300], "drain": 120}

BULK_ENQUEUE_SQL = """
INSERT INTO ticket_queue (public_id, user_id, event_id, status, attempts, reason, last_error, created_at, prequeue)
SELECT gen_random_uuid(), uid, %s, 'pending', 0, '', '', clock_timestamp(), false
FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(uid, n) ORDER BY n
"""


class RssSampler(threading.Thread):
    """Peak RSS (MB) of the worker's process family and of PostgreSQL's, once every 0.5 s."""

    def __init__(self, worker_pid: int, pgdata: Path) -> None:
        super().__init__(daemon=True)
        self.worker_pid = worker_pid
        self.pgdata = pgdata
        self.peak = {"worker": 0.0, "postgres": 0.0}
        self.worker_processes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        while not self._halt.wait(0.5):
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(self.worker_pid)
                family = [parent, *parent.children(recursive=True)]
                rss = 0.0
                for process in family:
                    with contextlib.suppress(psutil.Error):
                        rss += process.memory_info().rss / 2**20
                self.peak["worker"] = max(self.peak["worker"], rss)
                pool = [p for p in family if "celery" in " ".join(p.cmdline()) and p.pid != parent.pid]
                self.worker_processes = max(self.worker_processes, len(pool))
            self.peak["postgres"] = max(self.peak["postgres"], common.postgres_rss_mb(self.pgdata))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def drain_figures(database_url: str, event_id: int) -> dict:
    import psycopg

    with psycopg.connect(common.dsn(database_url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE processed_at IS NOT NULL),"
            " extract(epoch FROM min(created_at)), extract(epoch FROM max(created_at)),"
            " extract(epoch FROM min(processed_at)), extract(epoch FROM max(processed_at)),"
            " percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - created_at)),"
            " max(extract(epoch FROM processed_at - created_at)),"
            " extract(epoch FROM max(processed_at) FILTER (WHERE status = 'completed'))"
            " FROM ticket_queue WHERE event_id = %s",
            [event_id],
        ).fetchone()
    decided, first_created, last_created, first_done, last_done, pcts, worst, last_ticket = row
    span = float(last_done) - float(first_created)
    return {
        "decided": decided,
        "insert_seconds": float(last_created) - float(first_created),
        "first_decision_after_s": float(first_done) - float(first_created),
        "span_s": span,
        "claims_per_s": decided / span if span > 0 else None,
        "drain_per_s": decided / (float(last_done) - float(first_done)) if last_done != first_done else None,
        "sold_out_after_s": float(last_ticket) - float(first_created) if last_ticket else None,
        "p50": float(pcts[0]),
        "p95": float(pcts[1]),
        "max": float(worst),
    }


def scenario(stack: common.DrillStack, claims: int, seats: int, tag: str, drain: float) -> dict:
    import psycopg

    from queueing.services import queue_kick

    slug = f"drill-volume-{seats}-{int(time.time())}"
    event = common.make_event(slug, seats)
    say(f"{claims} students for {slug} ({seats} seats)")
    users = common.make_students(claims, tag)
    ids = [user.pk for user in users]
    worker_pid = stack.processes["worker"].pid
    sampler = RssSampler(worker_pid, stack.services.pgdata)
    sampler.start()
    time.sleep(1)
    with psycopg.connect(common.dsn(stack.database_url), autocommit=True) as conn:
        conn.execute(BULK_ENQUEUE_SQL, [event.id, ids])
    queue_kick()
    say(f"{claims} claims queued; draining")
    try:
        waited = checks.wait_queue_empty(stack.database_url, event.id, drain)
    finally:
        sampler.stop()
    say(f"drained in {waited:.0f} s")
    return {
        "claims": claims,
        "seats": seats,
        "drain": drain_figures(stack.database_url, event.id),
        "invariants": checks.invariants(stack.database_url, event.id),
        "rss_mb": {k: round(v) for k, v in sampler.peak.items()},
        "worker_processes": sampler.worker_processes,
    }


def run(args: argparse.Namespace) -> dict:
    numbers = dict(QUICK if args.quick else FULL)
    if args.claims:
        numbers["claims"] = args.claims
    started = time.time()
    work = common.fresh_work_dir("queue-volume")
    stack = common.DrillStack(work)
    try:
        stack.start()
        from django.db import connection

        stack.start_processes()
        stack.wait_healthy()
        results = []
        for index, seats in enumerate(numbers["events"]):
            tag = f"{int(time.time()) % 100:02d}{index + 3}0"
            results.append(scenario(stack, numbers["claims"], seats, tag, numbers["drain"]))
            connection.close()
        return {
            "numbers": numbers,
            "command": " ".join(
                shlex.quote(a) for a in [".venv/bin/python", "loadtests/drills/queue_volume.py", *sys.argv[1:]]
            ),
            "machine": tables.machine_line(),
            "started_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "results": results,
            "ok": all(r["invariants"]["ok"] and r["drain"]["decided"] == r["claims"] for r in results),
        }
    finally:
        say("stopping the stack")
        stack.stop()
        # A drill that broke off keeps its process logs for the post-mortem.
        common.cleanup(work, args.keep or sys.exc_info()[0] is not None)


def markdown(f: dict) -> str:
    lines = [
        "### Queue volume: 20,000 queued claims" if f["numbers"]["claims"] == 20000 else "### Queue volume",
        "",
        "```",
        f["command"],
        "```",
        "",
        f"Run {f['started_at']} on {f['machine']} (no HTTP load during this drill). Each backlog is written "
        "in one INSERT with `queue_enqueue`'s columns and values, then the real wake-up is sent; the worker "
        "drains it in batches of 10. Delay is `processed_at - created_at`; claims/s is decided claims over "
        "the time from the first row written to the last decision.",
        "",
        "| claims | seats | worker processes | tickets | refused (sold out) | first decision after | sold out after "
        "| all decided after | claims decided/s | delay p50 | p95 | max | worker RSS peak | PostgreSQL RSS peak "
        "| invariants |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in f["results"]:
        d, inv = r["drain"], r["invariants"]
        sold = f"{d['sold_out_after_s']:.1f} s" if d["sold_out_after_s"] is not None else "–"
        lines.append(
            f"| {r['claims']} | {r['seats']} | {r['worker_processes']} (+ main) | {inv['tickets']} "
            f"| {inv['queue'].get('failed:sold_out', 0)} | {d['first_decision_after_s']:.2f} s | {sold} "
            f"| {d['span_s']:.1f} s | {d['claims_per_s']:.0f} | {d['p50']:.1f} s | {d['p95']:.1f} s "
            f"| {d['max']:.1f} s | {r['rss_mb']['worker']} MB | {r['rss_mb']['postgres']} MB "
            f"| {'nothing lost or doubled' if inv['ok'] else '**BROKEN**'} |"
        )
    lines += [
        "",
        "PostgreSQL RSS adds up the postmaster and every backend, so shared buffers touched by several "
        "processes are counted more than once: an upper bound.",
        "",
        f"Verdict: {'passed' if f['ok'] else '**FAILED**'}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = common.drill_parser(__doc__)
    parser.add_argument("--claims", type=int, default=0, help="claims per event (default 20000)")
    args = parser.parse_args(argv)
    return common.drill_main(args, run=run, markdown=markdown, section="queue-volume")


if __name__ == "__main__":
    sys.exit(main())
