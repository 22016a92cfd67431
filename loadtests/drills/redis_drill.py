"""Redis drill: Redis SIGKILLed under a constant student load, restarted a minute later.

    .venv/bin/python -m loadtests.drills.redis_drill            # 500 students, 60 s outage
    .venv/bin/python -m loadtests.drills.redis_drill --quick    # tiny, for the test suite

What it measures: docs/BENCHMARKS.md, "Redis killed and restarted under load".
"""

from __future__ import annotations

import sys
import time

from loadtests.harness import load, report
from loadtests.harness.stack import say

FULL = {"students": 500, "capacity": 400, "warmup": 30, "outage": 60, "after": 60, "drain": 180}
# The quick drain allows for Celery reconnecting to the restarted broker on a loaded machine.
QUICK = {"students": 20, "capacity": 12, "warmup": 6, "outage": 6, "after": 8, "drain": 150}


def run(args) -> dict:
    n = load.numbers(args, QUICK, FULL, "students", "capacity", "outage")
    with load.drill(args, "redis-drill", alerts=True) as (stack, receiver):
        seconds = n["warmup"] + n["outage"] + n["after"]
        event, client = load.war("1", stack, f"drill-redis-{int(time.time())}", n, seconds)
        with client:
            killed = client.sleep_until(n["warmup"])
            stack.kill_redis()
            say("Redis SIGKILLed")
            time.sleep(max(0, killed + n["outage"] - time.time()))
            restarted = time.time()
            stack.start_redis()
            say("Redis started again (same port, same arguments)")
            start, end = client.start_at, client.end
            figures = load.finish(
                args, stack, receiver, event, client, n, "loadtests.drills.redis_drill",
                [("remaining_tickets", 35 if args.quick else 40)],
                {
                    "before (Redis up)": (start, killed), "outage, first 5 s": (killed, killed + 5),
                    "outage, rest": (killed + 5, restarted), "after restart, first 10 s": (restarted, restarted + 10),
                    "after restart, rest": (restarted + 10, end),
                },
                {
                    "before the outage": (start, killed), "during the outage": (killed, restarted),
                    "after the restart": (restarted, end + 1),
                },
            )  # fmt: skip
    figures["times"] = {"start": start, "killed": killed, "restarted": restarted, "end": end}
    # How fast the backlog of the outage cleared once Redis was back.
    rows = figures.pop("rows")
    outage_rows = [r for r in rows if killed <= r[0] < restarted and r[1] is not None]
    figures["recovery"] = {
        "first_decision_after_restart_s": min((r[1] for r in rows if r[1] and r[1] >= restarted), default=restarted)
        - restarted,
        "outage_claims_all_decided_after_restart_s": max((r[1] for r in outage_rows), default=restarted) - restarted,
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


def markdown(f: dict) -> str:
    n, t = f["numbers"], f["times"]
    origin = t["killed"]
    lines = [
        *report.heading("### Redis killed and restarted under load", f["command"]),
        f"Run {f['started_at']} on {f['machine']}. Load: {n['students']} logged-in students from "
        "`loadtests/drills/loadclient.py` (one gevent process, not Locust: lighter next to the stack "
        "and the other processes on two cores), each polling the event API every 5 s, claiming once "
        "(claims spread evenly over the run, a 5xx is clicked again after 2-4 s) and then polling its "
        f"queue entry every 1-2 s. Event of {n['capacity']} seats. Redis SIGKILLed after "
        f"{n['warmup']} s, started again {n['outage']} s later on the same port with the same arguments. "
        "Times below are relative to the kill.",
        "",
        *load.requests_table(f["windows"]),
        "",
        "Claim-to-decision time (`processed_at - created_at`), by when the claim was queued:",
        "",
        *f["delay_lines"],
        "",
        f"Claims queued during the outage waited for Redis (the Celery broker): the first decision came "
        f"{f['recovery']['first_decision_after_restart_s']:.1f} s after the restart and the last of them "
        f"{f['recovery']['outage_claims_all_decided_after_restart_s']:.1f} s after it.",
        "",
        load.transitions(
            f, origin, "Circuit breaker `redis` (`ticketwar_breaker_state` on `/metrics`, highest over all processes): "
        ),
        "",
        f"Accepted claims (200/202 seen by the client): {f['claims']['accepted']}; missing in the table: "
        f"{f['claims']['missing_in_table']}; still undecided after the drain: {f['claims']['undecided']}; "
        f"decision seen by the student before the client stopped: {f['claims']['decided_seen_by_client']} "
        f"(client and table disagree: {f['claims']['client_and_table_disagree']}). Claim clicks by answer: "
        f"{load.click_statuses(f['claims'])}. Queue empty {f['drained_after_end_s']:.0f} s after the load stopped.",
        "",
        *load.alerts_and_verdict(f, origin),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    keys = ("students", "capacity", "outage")
    return load.drill_main(__doc__, argv, run=run, markdown=markdown, section="drill:redis", keys=keys)


if __name__ == "__main__":
    sys.exit(main())
