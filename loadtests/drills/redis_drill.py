"""Redis drill: Redis SIGKILLed under a constant student load, restarted a minute later.

    .venv/bin/python loadtests/drills/redis_drill.py            # 500 students, 60 s outage
    .venv/bin/python loadtests/drills/redis_drill.py --quick    # tiny, for the test suite

Starts a private stack (PostgreSQL, Redis, web with 2 uvicorn workers, Celery worker, beat),
500 logged-in students on the event page (``loadclient.py``: a poll every 5 s, one claim each,
spread over the run, then the queue status every 1-2 s until decided) and an alert webhook
receiver. After the warm-up Redis is SIGKILLed; a minute later it is started again on the same
port with the same arguments. Reports the error rate and p95 before, during and after the
outage, the "redis" circuit breaker as /metrics and /healthz show it, how long claims waited,
that every accepted claim ended decided, the database invariants, and the alerts received.
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

FULL = {"students": 500, "capacity": 400, "warmup": 30, "outage": 60, "after": 60, "drain": 180}
# The quick drain allows for Celery reconnecting to the restarted broker on a loaded machine.
QUICK = {"students": 20, "capacity": 12, "warmup": 6, "outage": 6, "after": 8, "drain": 150}


def run(args: argparse.Namespace) -> dict:
    numbers = dict(QUICK if args.quick else FULL)
    for key in ("students", "capacity", "outage"):
        if getattr(args, key) is not None:
            numbers[key] = getattr(args, key)
    work = common.fresh_work_dir("redis-drill")
    receiver = common.AlertReceiver().start()
    stack = common.DrillStack(work, receiver.env())
    sampler = client = None
    try:
        stack.start()
        slug = f"drill-redis-{int(time.time())}"
        say(f"{numbers['students']} students, event {slug} with {numbers['capacity']} seats")
        event = common.make_event(slug, numbers["capacity"])
        users = common.make_students(numbers["students"], f"{int(time.time()) % 1000:03d}1")
        sessions = common.make_sessions(users)
        stack.start_processes()
        stack.wait_healthy()
        seconds = numbers["warmup"] + numbers["outage"] + numbers["after"]
        start_at = time.time() + 2
        # Claims arrive evenly over the run (from a few seconds in to a few seconds before the end),
        # so some are made before, many during and some after the outage.
        rng = random.Random(7)
        claim_times = [rng.uniform(2, seconds - 4) for _ in sessions]
        plan = common.build_plan(slug, sessions, claim_times, start_at, seconds)
        plan_path, out_path = work / "plan.json", work / "client.json"
        plan_path.write_text(json.dumps(plan))
        client = common.run_loadclient(stack.base_url, plan_path, out_path, work / "client.log")
        sampler = common.HealthSampler(stack.base_url)
        sampler.start()

        kill_at = start_at + numbers["warmup"]
        time.sleep(max(0, kill_at - time.time()))
        killed = time.time()
        stack.kill_redis()
        say("Redis SIGKILLed")
        time.sleep(max(0, killed + numbers["outage"] - time.time()))
        restarted = time.time()
        stack.start_redis()
        say("Redis started again (same port, same arguments)")
        end = start_at + seconds
        client.wait(timeout=seconds + 180)
        say("client finished; waiting for the queue to drain")
        drained_after = checks.wait_queue_empty(stack.database_url, event.id, numbers["drain"])
        # The remaining-tickets alert is evaluated by beat every 30 s: give it one round.
        common.wait_for_alert(receiver, "remaining_tickets", "firing", 40 if not args.quick else 35)
        sampler.stop()
        cancelled = common.settle_alerts(receiver, event.id, args.wait_resolved)
        results = json.loads(out_path.read_text())
        figures = {
            "numbers": numbers,
            "command": " ".join(
                shlex.quote(a) for a in [".venv/bin/python", "loadtests/drills/redis_drill.py", *sys.argv[1:]]
            ),
            "machine": tables.machine_line(),
            "started_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(start_at)),
            "times": {"start": start_at, "killed": killed, "restarted": restarted, "end": end},
            "drained_after_end_s": drained_after,
            "windows": tables.summarise_requests(
                results["samples"],
                {
                    "before (Redis up)": (start_at, killed),
                    "outage, first 5 s": (killed, killed + 5),
                    "outage, rest": (killed + 5, restarted),
                    "after restart, first 10 s": (restarted, restarted + 10),
                    "after restart, rest": (restarted + 10, end),
                },
            ),
            "claims": checks.accepted_claims(stack.database_url, event.id, results),
            "invariants": checks.invariants(stack.database_url, event.id),
            "breaker": [(at, state) for at, state in sampler.transitions("redis")],
            "healthz": sampler.healthz_transitions(),
            "alerts": receiver.received,
            "event_cancelled_at": cancelled,
        }
        arrival_windows = {
            "before the outage": (start_at, killed),
            "during the outage": (killed, restarted),
            "after the restart": (restarted, end + 1),
        }
        rows = figures["claims"].pop("rows")
        figures["delay_lines"] = checks.delays_by_arrival(rows, arrival_windows)
        # How fast the backlog of the outage cleared once Redis was back.
        outage_rows = [r for r in rows if killed <= r[0] < restarted and r[1] is not None]
        figures["recovery"] = {
            "first_decision_after_restart_s": min((r[1] for r in rows if r[1] and r[1] >= restarted), default=restarted)
            - restarted,
            "outage_claims_all_decided_after_restart_s": max((r[1] for r in outage_rows), default=restarted)
            - restarted,
        }
        figures["ok"] = (
            figures["invariants"]["ok"]
            and figures["claims"]["missing_in_table"] == 0
            and figures["claims"]["undecided"] == 0
            and any(state == "open" for _, state in figures["breaker"])
            and figures["breaker"][-1][1] == "closed"
            and not any(w["statuses"].get(500) for w in figures["windows"])
        )
        return figures
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        if sampler is not None:
            sampler.stop()
        receiver.stop()
        say("stopping the stack")
        stack.stop()
        # A drill that broke off keeps its process logs for the post-mortem.
        common.cleanup(work, args.keep or sys.exc_info()[0] is not None)


def markdown(f: dict) -> str:
    n, t = f["numbers"], f["times"]
    origin = t["killed"]
    lines = [
        "### Redis killed and restarted under load",
        "",
        "```",
        f["command"],
        "```",
        "",
        f"Run {f['started_at']} on {f['machine']}. Load: {n['students']} logged-in students from "
        "`loadtests/drills/loadclient.py` (one gevent process, not Locust: lighter next to the stack "
        "and the other processes on two cores), each polling the event API every 5 s, claiming once "
        "(claims spread evenly over the run, a 5xx is clicked again after 2-4 s) and then polling its "
        f"queue entry every 1-2 s. Event of {n['capacity']} seats. Redis SIGKILLed after "
        f"{n['warmup']} s, started again {n['outage']} s later on the same port with the same arguments. "
        "Times below are relative to the kill.",
        "",
        *tables.requests_table(f["windows"]),
        "",
        "Claim-to-decision time (`processed_at - created_at`), by when the claim was queued:",
        "",
        *f["delay_lines"],
        "",
        f"Claims queued during the outage waited for Redis (the Celery broker): the first decision came "
        f"{f['recovery']['first_decision_after_restart_s']:.1f} s after the restart and the last of them "
        f"{f['recovery']['outage_claims_all_decided_after_restart_s']:.1f} s after it.",
        "",
        "Circuit breaker `redis` (`ticketwar_breaker_state` on `/metrics`, highest over all processes): "
        + ", ".join(f"{state} at {tables.clock(at, origin)}" for at, state in f["breaker"])
        + ". `/healthz`: "
        + ", ".join(f"{state} at {tables.clock(at, origin)}" for at, state in f["healthz"])
        + ".",
        "",
        f"Accepted claims (200/202 seen by the client): {f['claims']['accepted']}; missing in the table: "
        f"{f['claims']['missing_in_table']}; still undecided after the drain: {f['claims']['undecided']}; "
        f"decision seen by the student before the client stopped: {f['claims']['decided_seen_by_client']} "
        f"(client and table disagree: {f['claims']['client_and_table_disagree']}). Claim clicks by answer: "
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
    parser.add_argument("--outage", type=int, default=None, help="seconds Redis stays dead (default 60)")
    parser.add_argument(
        "--wait-resolved",
        type=int,
        default=0,
        help="afterwards cancel the event and wait up to this many seconds for the fired alerts to resolve",
    )
    args = parser.parse_args(argv)
    return common.drill_main(args, run=run, markdown=markdown, section="redis")


if __name__ == "__main__":
    sys.exit(main())
