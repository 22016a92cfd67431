"""Worker and database drill: a Celery worker SIGKILLed mid-batch, then PostgreSQL restarted.

    .venv/bin/python -m loadtests.drills.worker_db_drill            # 600 students, 560 seats
    .venv/bin/python -m loadtests.drills.worker_db_drill --quick    # tiny, for the test suite

What it measures: docs/BENCHMARKS.md, "A worker SIGKILLed mid-batch, then PostgreSQL restarted".
"""

from __future__ import annotations

import sys
import time

from loadtests.harness import load, report
from loadtests.harness.invariants import count_rows
from loadtests.harness.report import clock
from loadtests.harness.stack import say

FULL = {
    "students": 600, "capacity": 560, "burst_share": 0.6, "burst_at": 5, "worker_down": 5,
    "db_stop_at": 40, "db_down": 15, "seconds": 80, "drain": 180, "lease": None,
}  # fmt: skip
QUICK = {
    "students": 24, "capacity": 16, "burst_share": 0.6, "burst_at": 3, "worker_down": 2,
    "db_stop_at": 9, "db_down": 12, "seconds": 24, "drain": 60, "lease": 5,
}  # fmt: skip


def run(args) -> dict:
    n = load.numbers(args, QUICK, FULL, "students", "capacity", "db_down")
    # Quick mode only: the reaper takes a dead worker's rows back after 5 s instead of 30 s.
    extra = {"QUEUE_LEASE_SECONDS": str(n["lease"])} if n["lease"] else {}

    def claim_times(rng, count: int) -> list[float]:
        """``burst_share`` of the students claim in a burst, the others one by one later."""
        burst = round(count * n["burst_share"])
        first = [n["burst_at"] + rng.uniform(0, 2) for _ in range(burst)]
        return first + [rng.uniform(n["burst_at"] + 10, n["seconds"] - 4) for _ in range(count - burst)]

    with load.drill(args, "worker-db-drill", extra, alerts=True) as (stack, receiver):
        slug = f"drill-db-{int(time.time())}"
        event, client = load.war("2", stack, slug, n, n["seconds"], seed=11, claim_times=claim_times)
        with client:
            # 1. the worker, killed while a batch is being decided
            client.sleep_until(n["burst_at"])
            deadline, processing = time.monotonic() + 20, 0
            while time.monotonic() < deadline and not processing:
                processing = count_rows(stack.database_url, event.id, "processing")
                time.sleep(0.01)
            worker_killed = time.time()
            killed_pids = stack.kill("worker")
            stuck = count_rows(stack.database_url, event.id, "processing")
            pending_at_kill = count_rows(stack.database_url, event.id, "pending")
            say(f"worker SIGKILLed ({len(killed_pids)} processes) with {processing} entries processing; {stuck} stuck")
            time.sleep(n["worker_down"])
            stack.start_processes(only={"worker"})
            worker_restarted = time.time()
            say("a new worker started")
            # 2. PostgreSQL stopped while claims keep arriving, started again after db_down seconds
            db_stopped = client.sleep_until(n["db_stop_at"])
            stack.stop_postgres()
            db_stop_done = time.time()
            say(f"PostgreSQL stopped (pg_ctl stop -m fast took {db_stop_done - db_stopped:.1f} s)")
            time.sleep(max(0, db_stopped + n["db_down"] - time.time()))
            stack.start_postgres()
            db_started = time.time()
            say("PostgreSQL started again")
            start, end = client.start_at, client.end
            # Beat evaluates the alert rules every 30 s: the error-rate alert (full runs) gets a round.
            waits = [("remaining_tickets", 30)] if args.quick else [("error_rate", 45), ("remaining_tickets", 10)]
            figures = load.finish(
                args, stack, receiver, event, client, n, "loadtests.drills.worker_db_drill", waits,
                {
                    "before the worker kill": (start, worker_killed),
                    "worker dead, until restarted": (worker_killed, worker_restarted),
                    "between the two failures": (worker_restarted, db_stopped),
                    "database away": (db_stopped, db_started),
                    "database back, first 10 s": (db_started, db_started + 10),
                    "database back, rest": (db_started + 10, end),
                },
                {
                    "before the worker kill": (start, worker_killed),
                    "worker dead": (worker_killed, worker_restarted),
                    "between the two failures": (worker_restarted, db_stopped),
                    "after the database came back": (db_started, end + 1),
                },
            )  # fmt: skip
    figures.pop("rows")
    figures["times"] = {
        "start": start, "worker_killed": worker_killed, "worker_restarted": worker_restarted,
        "db_stopped": db_stopped, "db_stop_done": db_stop_done, "db_started": db_started, "end": end,
    }  # fmt: skip
    figures["worker"] = {
        "processes_killed": len(killed_pids), "processing_seen": processing, "stuck_after_kill": stuck,
        "pending_at_kill": pending_at_kill,
    }  # fmt: skip
    away = next(w for w in figures["windows"] if w["window"] == "database away")
    claims = figures["claims"]
    figures["ok"] = (
        figures["invariants"]["ok"]
        and claims["missing_in_table"] == 0
        and claims["undecided"] == 0
        and not any(w["statuses"].get(500) for w in figures["windows"])
        and away["statuses"].get(503, 0) > 0
    )
    return figures


def markdown(f: dict) -> str:
    n, t, w = f["numbers"], f["times"], f["worker"]
    origin = t["start"]
    away = next(x for x in f["windows"] if x["window"] == "database away")
    lines = [
        *report.heading("### A worker SIGKILLed mid-batch, then PostgreSQL restarted", f["command"]),
        f"Run {f['started_at']} on {f['machine']}. Load: {n['students']} logged-in students from "
        f"`loadtests/drills/loadclient.py` (event API every 5 s; {round(n['burst_share'] * 100)} % claim in a "
        f"2-second burst at t+{n['burst_at']} s, the others spread until the end; a 5xx or no answer is "
        f"clicked again after 2-4 s). Event of {n['capacity']} seats. Times relative to the start of the load.",
        "",
        f"- Worker SIGKILLed at {clock(t['worker_killed'], origin)} as soon as the table showed "
        f"{w['processing_seen']} entries `processing` ({w['processes_killed']} processes: main + pool); "
        f"{w['stuck_after_kill']} entries were left `processing` by the dead worker and {w['pending_at_kill']} "
        f"were `pending`. A new worker started at {clock(t['worker_restarted'], origin)}.",
        f"- PostgreSQL stopped (`pg_ctl stop -m fast`) at {clock(t['db_stopped'], origin)}, started "
        f"again at {clock(t['db_started'], origin)} (same data directory, port and options): "
        f"{t['db_started'] - t['db_stopped']:.0f} s without a database.",
        "",
        *load.requests_table(f["windows"]),
        "",
        f"While the database was away: {away['statuses'].get(503, 0)} answers 503 (JSON "
        '`{"error": ..., "code": "unavailable"}` for the API), '
        f"{away['statuses'].get(500, 0)} answers 500, {away['statuses'].get(0, 0)} requests without an answer. "
        "`/healthz`: " + ", ".join(f"{state} at {clock(at, origin)}" for at, state in f["healthz"]) + ".",
        "",
        "Claim-to-decision time (`processed_at - created_at`), by when the claim was queued:",
        "",
        *f["delay_lines"],
        "",
        f"Accepted claims (200/202 seen by the client): {f['claims']['accepted']}; missing in the table: "
        f"{f['claims']['missing_in_table']}; undecided after the drain: {f['claims']['undecided']}; "
        f"students who had to click again (5xx or no answer): {f['claims']['students_clicking_more_than_once']}. "
        f"Claim clicks by answer: {load.click_statuses(f['claims'])}. "
        f"Queue empty {f['drained_after_end_s']:.0f} s after the load stopped.",
        "",
    ]
    return "\n".join(lines + load.alerts_and_verdict(f, origin))


def main(argv: list[str] | None = None) -> int:
    options = {"section": "drill:worker-db", "keys": ("students", "capacity", "db_down")}
    return load.drill_main(__doc__, argv, run=run, markdown=markdown, **options)


if __name__ == "__main__":
    sys.exit(main())
