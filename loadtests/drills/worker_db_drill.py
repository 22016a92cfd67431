"""Worker and database drill: a Celery worker SIGKILLed mid-batch, then PostgreSQL restarted.

    .venv/bin/python loadtests/drills/worker_db_drill.py            # 600 students, 450 seats
    .venv/bin/python loadtests/drills/worker_db_drill.py --quick    # tiny, for the test suite

Private stack (PostgreSQL, Redis, web with 2 uvicorn workers, Celery worker, beat) and an alert
webhook receiver. Students (``loadclient.py``) poll the event page; 60 % of them claim in a
burst a few seconds in, the others one by one later. The drill:

1. waits until the table shows entries in ``processing`` (a batch is being decided), then
   SIGKILLs the whole worker (main process and pool children: no warm shutdown, no acks);
   a new worker is started a few seconds later, as a process supervisor would;
2. later stops PostgreSQL (``pg_ctl stop -m fast``) while claims keep arriving and starts it
   again (same data directory, port and options) after ``--db-down`` seconds.

Then: every queue entry terminal, tickets == min(capacity, distinct claimants), one per student,
no ``failed:error``; the answers while the database was away (503 expected, never 500); the
alerts received (error rate from the 503s, remaining tickets from the sell-out).
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from loadtests.drills import checks, common, tables
from loadtests.drills.common import say

FULL = {
    "students": 600, "capacity": 560, "burst_share": 0.6, "burst_at": 5, "worker_down": 5,
    "db_stop_at": 40, "db_down": 15, "seconds": 80, "drain": 180, "lease": None,
}  # fmt: skip
QUICK = {
    "students": 24, "capacity": 16, "burst_share": 0.6, "burst_at": 3, "worker_down": 2,
    "db_stop_at": 9, "db_down": 12, "seconds": 24, "drain": 60, "lease": 5,
}  # fmt: skip


def run(args: argparse.Namespace) -> dict:
    numbers = dict(QUICK if args.quick else FULL)
    for key in ("students", "capacity", "db_down"):
        if getattr(args, key) is not None:
            numbers[key] = getattr(args, key)
    work = common.fresh_work_dir("worker-db-drill")
    receiver = common.AlertReceiver().start()
    extra = receiver.env()
    if numbers["lease"]:
        # Quick mode only: the reaper takes a dead worker's rows back after 5 s instead of 30 s.
        extra["QUEUE_LEASE_SECONDS"] = str(numbers["lease"])
    stack = common.DrillStack(work, extra)
    sampler = client = None
    try:
        stack.start()
        slug = f"drill-db-{int(time.time())}"
        say(f"{numbers['students']} students, event {slug} with {numbers['capacity']} seats")
        event = common.make_event(slug, numbers["capacity"])
        users = common.make_students(numbers["students"], f"{int(time.time()) % 1000:03d}2")
        sessions = common.make_sessions(users)
        from django.db import connection

        connection.close()  # this process's Django connection must not outlive the restart
        stack.start_processes()
        stack.wait_healthy()
        seconds = numbers["seconds"]
        start_at = time.time() + 2
        rng = random.Random(11)
        burst = round(len(sessions) * numbers["burst_share"])
        claim_times = [numbers["burst_at"] + rng.uniform(0, 2) for _ in range(burst)] + [
            rng.uniform(numbers["burst_at"] + 10, seconds - 4) for _ in range(len(sessions) - burst)
        ]
        plan = common.build_plan(slug, sessions, claim_times, start_at, seconds)
        plan_path, out_path = work / "plan.json", work / "client.json"
        plan_path.write_text(json.dumps(plan))
        client = common.run_loadclient(stack.base_url, plan_path, out_path, work / "client.log")
        sampler = common.HealthSampler(stack.base_url)
        sampler.start()

        # 1. the worker, killed while a batch is being decided
        time.sleep(max(0, start_at + numbers["burst_at"] - time.time()))
        deadline = time.monotonic() + 20
        processing = 0
        while time.monotonic() < deadline:
            processing = checks.count_rows(stack.database_url, event.id, "processing")
            if processing:
                break
            time.sleep(0.01)
        worker_killed = time.time()
        killed_pids = stack.kill_worker()
        stuck = checks.count_rows(stack.database_url, event.id, "processing")
        pending_at_kill = checks.count_rows(stack.database_url, event.id, "pending")
        say(f"worker SIGKILLed ({len(killed_pids)} processes) with {processing} entries processing; {stuck} stuck")
        time.sleep(numbers["worker_down"])
        stack.start_processes(only={"worker"})
        worker_restarted = time.time()
        say("a new worker started")

        # 2. the database, stopped and started again under load
        time.sleep(max(0, start_at + numbers["db_stop_at"] - time.time()))
        db_stopped = time.time()
        stack.stop_postgres()
        db_stop_done = time.time()
        say(f"PostgreSQL stopped (pg_ctl stop -m fast took {db_stop_done - db_stopped:.1f} s)")
        time.sleep(max(0, db_stopped + numbers["db_down"] - time.time()))
        db_start_begun = time.time()
        stack.start_postgres()
        db_started = time.time()
        say(f"PostgreSQL started again ({db_started - db_start_begun:.1f} s)")
        end = start_at + seconds
        client.wait(timeout=seconds + 180)
        say("client finished; waiting for the queue to drain")
        drained_after = checks.wait_queue_empty(stack.database_url, event.id, numbers["drain"])
        # Beat evaluates the alert rules every 30 s: wait for the error-rate alert one round.
        if not args.quick:
            common.wait_for_alert(receiver, "error_rate", "firing", 45)
        common.wait_for_alert(receiver, "remaining_tickets", "firing", 10 if not args.quick else 30)
        sampler.stop()
        cancelled = common.settle_alerts(receiver, event.id, args.wait_resolved)
        results = json.loads(out_path.read_text())
        claims = checks.accepted_claims(stack.database_url, event.id, results)
        rows = claims.pop("rows")
        figures = {
            "numbers": numbers,
            "command": " ".join(
                shlex.quote(a) for a in [".venv/bin/python", "loadtests/drills/worker_db_drill.py", *sys.argv[1:]]
            ),
            "machine": tables.machine_line(),
            "started_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(start_at)),
            "times": {
                "start": start_at,
                "worker_killed": worker_killed,
                "worker_restarted": worker_restarted,
                "db_stopped": db_stopped,
                "db_stop_done": db_stop_done,
                "db_started": db_started,
                "end": end,
            },
            "worker": {
                "processes_killed": len(killed_pids),
                "processing_seen": processing,
                "stuck_after_kill": stuck,
                "pending_at_kill": pending_at_kill,
            },
            "drained_after_end_s": drained_after,
            "windows": tables.summarise_requests(
                results["samples"],
                {
                    "before the worker kill": (start_at, worker_killed),
                    "worker dead, until restarted": (worker_killed, worker_restarted),
                    "between the two failures": (worker_restarted, db_stopped),
                    "database away": (db_stopped, db_started),
                    "database back, first 10 s": (db_started, db_started + 10),
                    "database back, rest": (db_started + 10, end),
                },
            ),
            "claims": claims,
            "invariants": checks.invariants(stack.database_url, event.id),
            "healthz": sampler.healthz_transitions(),
            "alerts": receiver.received,
            "event_cancelled_at": cancelled,
            "delay_lines": checks.delays_by_arrival(
                rows,
                {
                    "before the worker kill": (start_at, worker_killed),
                    "worker dead": (worker_killed, worker_restarted),
                    "between the two failures": (worker_restarted, db_stopped),
                    "after the database came back": (db_started, end + 1),
                },
            ),
        }
        away = next(w for w in figures["windows"] if w["window"] == "database away")
        figures["ok"] = (
            figures["invariants"]["ok"]
            and claims["missing_in_table"] == 0
            and claims["undecided"] == 0
            and not any(w["statuses"].get(500) for w in figures["windows"])
            and away["statuses"].get(503, 0) > 0
        )
        return figures
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        if sampler is not None:
            sampler.stop()
        receiver.stop()
        say("stopping the stack")
        if stack.started_services.get("postgres") and stack.postgres_pid() is None:
            stack.start_postgres()  # so that stop() finds what it started, whatever failed
        stack.stop()
        # A drill that broke off keeps its process logs for the post-mortem.
        common.cleanup(work, args.keep or sys.exc_info()[0] is not None)


def markdown(f: dict) -> str:
    n, t, w = f["numbers"], f["times"], f["worker"]
    origin = t["start"]
    away = next(x for x in f["windows"] if x["window"] == "database away")
    lines = [
        "### A worker SIGKILLed mid-batch, then PostgreSQL restarted",
        "",
        "```",
        f["command"],
        "```",
        "",
        f"Run {f['started_at']} on {f['machine']}. Load: {n['students']} logged-in students from "
        f"`loadtests/drills/loadclient.py` (event API every 5 s; {round(n['burst_share'] * 100)} % claim in a "
        f"2-second burst at t+{n['burst_at']} s, the others spread until the end; a 5xx or no answer is "
        f"clicked again after 2-4 s). Event of {n['capacity']} seats. Times relative to the start of the load.",
        "",
        f"- Worker SIGKILLed at {tables.clock(t['worker_killed'], origin)} as soon as the table showed "
        f"{w['processing_seen']} entries `processing` ({w['processes_killed']} processes: main + pool); "
        f"{w['stuck_after_kill']} entries were left `processing` by the dead worker and {w['pending_at_kill']} "
        f"were `pending`. A new worker started at {tables.clock(t['worker_restarted'], origin)}.",
        f"- PostgreSQL stopped (`pg_ctl stop -m fast`) at {tables.clock(t['db_stopped'], origin)}, started "
        f"again at {tables.clock(t['db_started'], origin)} (same data directory, port and options): "
        f"{t['db_started'] - t['db_stopped']:.0f} s without a database.",
        "",
        *tables.requests_table(f["windows"]),
        "",
        f"While the database was away: {away['statuses'].get(503, 0)} answers 503 (JSON "
        '`{"error": ..., "code": "unavailable"}` for the API), '
        f"{away['statuses'].get(500, 0)} answers 500, {away['statuses'].get(0, 0)} requests without an answer. "
        "`/healthz`: " + ", ".join(f"{state} at {tables.clock(at, origin)}" for at, state in f["healthz"]) + ".",
        "",
        "Claim-to-decision time (`processed_at - created_at`), by when the claim was queued:",
        "",
        *f["delay_lines"],
        "",
        f"Accepted claims (200/202 seen by the client): {f['claims']['accepted']}; missing in the table: "
        f"{f['claims']['missing_in_table']}; undecided after the drain: {f['claims']['undecided']}; "
        f"students who had to click again (5xx or no answer): {f['claims']['students_clicking_more_than_once']}. "
        "Claim clicks by answer: "
        + ", ".join(f"{'no answer' if k == 0 else k}: {v}" for k, v in f["claims"]["click_statuses"].items())
        + f". Queue empty {f['drained_after_end_s']:.0f} s after the load stopped.",
        "",
        *tables.alerts_and_verdict(f, origin),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = common.drill_parser(__doc__)
    parser.add_argument("--students", type=int, default=None)
    parser.add_argument("--capacity", type=int, default=None)
    parser.add_argument("--db-down", dest="db_down", type=int, default=None, help="seconds without PostgreSQL")
    parser.add_argument(
        "--wait-resolved",
        type=int,
        default=0,
        help="afterwards cancel the event and wait up to this many seconds for the fired alerts to resolve",
    )
    args = parser.parse_args(argv)
    return common.drill_main(args, run=run, markdown=markdown, section="worker-db")


if __name__ == "__main__":
    sys.exit(main())
