"""The opening minute under Locust (``make loadtest``: 500 students).

    .venv/bin/python -m loadtests.run --users 1000   # docs/benchmarks/opening-1000.json
    .venv/bin/python -m loadtests.run --quick

Own stack (the Procfile's web, ws, worker and beat); ``--users`` students (``create_students``)
arrive at ``--spawn-rate`` per second and log in with the form; the event (``--capacity`` seats)
opens 40 s after the last has arrived, and Locust runs ``--after-open`` s more (the journey:
``loadtests/locustfile.py``, kind ``opening``). Then the database's truth and the cache's hit
ratio (``/metrics``).
"""

from __future__ import annotations

import math
import re
import sys
import time
import urllib.request

from loadtests import harness
from tools.stack import Stack

# What a student may be told (409 holds a ticket, 410 sold out, 425 not open yet, 429 slow down).
OUTCOMES = {409, 410, 425, 429}


def hit_ratio(stack: Stack) -> float | None:
    """Cache hits over reads, every key family, all processes (``ticketwar_cache_requests_total``)."""
    scrape = urllib.request.Request(  # noqa: S310 - the stack's own loopback port
        f"{stack.base_url}/metrics", headers={"Authorization": f"Bearer {stack.metrics_token}"}
    )
    with urllib.request.urlopen(scrape, timeout=10) as response:  # noqa: S310 - the stack's own loopback port
        text = response.read().decode()
    counts = {"hit": 0.0, "miss": 0.0}
    for result, value in re.findall(r'^ticketwar_cache_requests_total\{[^}]*result="(\w+)"[^}]*\}\s+(\S+)', text, re.M):
        counts[result] = counts.get(result, 0.0) + float(value)
    return counts["hit"] / (counts["hit"] + counts["miss"]) if counts["hit"] + counts["miss"] else None


def run(args) -> dict:
    if args.quick:
        args.users, args.spawn_rate, args.capacity, args.after_open = 20, 10.0, 12, 20
    opens_in = math.ceil(args.users / args.spawn_rate) + (10 if args.quick else 40)
    with Stack("opening", keep=args.keep) as stack:
        credentials = stack.work / "students.csv"
        stack.manage("create_students", "--count", str(args.users), "--out", str(credentials))
        for name in ("web", "ws", "worker", "beat"):
            stack.start(name)
        stack.wait_healthy()
        slug = f"opening-{time.time_ns()}"
        stack.manage("create_event", "--slug", slug, "--capacity", str(args.capacity), "--opens-in", str(opens_in))
        harness.say(f"{args.users} students; the event opens in {opens_in} s")
        plan = {
            "kind": "opening",
            "users": args.users,
            "spawn_rate": args.spawn_rate,
            "limit": opens_in + args.after_open,
            "event": slug,
            "credentials": str(credentials),
            "ws_fraction": args.ws_fraction,
        }
        out = harness.locust(stack, plan)
        event_id = harness.query("SELECT id FROM events_event WHERE slug = %s", [slug])[0]
        harness.wait_decided(event_id, 120)
        truth, decided, ratio = harness.truth(event_id), harness.decisions(event_id), hit_ratio(stack)
    opens_at, samples = out["marks"]["opens_at"], out["samples"]
    minute = [s for s in samples if opens_at <= s[0] < opens_at + 60]
    unexpected = [s for s in samples if s[3] == 0 or s[3] >= 500 or (s[3] >= 400 and s[3] not in OUTCOMES)]
    return {
        "users": args.users,
        "spawn_rate": args.spawn_rate,
        "capacity": args.capacity,
        "opens_in": opens_in,
        "ws_fraction": args.ws_fraction,
        "requests": len(samples),
        "logged_in": out["counts"].get("logged_in", 0),
        "reads_ms": [s[2] for s in minute if s[1].startswith("GET ")],
        "claims_ms": [s[2] for s in samples if s[1] == "POST /api/events/[slug]/claim/"],
        "claim_statuses": harness.statuses(samples, "POST /api/events/[slug]/claim/"),
        "unexpected": harness.codes(harness.statuses(unexpected)),
        "unexpected_count": len(unexpected),
        "websockets": {k: v for k, v in out["counts"].items() if k.startswith("ws_")},
        "decision_s": decided,
        "hit_ratio": ratio,
        "truth": truth,
        "ok": truth["ok"] and not unexpected,
    }


def markdown(record: dict) -> str:
    f = record["figures"]
    reads, claims, decision = sorted(f["reads_ms"]), sorted(f["claims_ms"]), f["decision_s"]
    p95 = lambda values: harness.percentile(values, 95) or 0  # noqa: E731
    met = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    rows = [
        [
            "reads p50 / p95 / max, the minute after the opening",
            f"{harness.ms(reads)} ms ({len(reads):,} requests)",
            "p95 ≤ 1 s",
            met(p95(reads) <= 1000),
        ],
        [
            "claims p50 / p95 / max",
            f"{harness.ms(claims)} ms ({harness.codes(f['claim_statuses'])})",
            "p95 ≤ 1.5 s",
            met(p95(claims) <= 1500),
        ],
        [
            "claim-to-decision p50 / p95 / max (`ticket_queue`)",
            " / ".join(f"{decision[k]:.2f} s" if decision[k] is not None else "–" for k in ("p50", "p95", "max")),
            "p95 ≤ 2 s",
            met((decision["p95"] or 0) <= 2),
        ],
        [
            "unexpected answers (5xx, no answer, other 4xx)",
            f"{f['unexpected_count']} of {f['requests']:,}" + (f" ({f['unexpected']})" if f["unexpected"] else ""),
            "none",
            met(not f["unexpected_count"]),
        ],
        [
            "cache hit ratio (`/metrics`, whole run)",
            "–" if f["hit_ratio"] is None else f"{f['hit_ratio']:.1%}",
            "> 80%",
            met((f["hit_ratio"] or 0) > 0.8),
        ],
        [
            "tickets == seats, one per student, every claim decided",
            harness.held(f["truth"]),
            "held",
            met(f["truth"]["ok"]),
        ],
        [
            "logged in / websocket pushes / fell back to polling",
            f"{f['logged_in']} / {f['websockets'].get('ws_pushes', 0)} / {f['websockets'].get('ws_fallbacks', 0)}",
            "",
            "",
        ],
    ]
    intro = (
        f"{f['users']} students arrive at {f['spawn_rate']:g}/s and log in; the event ({f['capacity']} seats) opens "
        f"{f['opens_in']} s after the start; each claims 0.2–1.5 s after the opening; {f['ws_fraction']:.0%} watch "
        "the queue by websocket, the others poll every 1–2 s."
    )
    title = f"The opening minute, {f['users']} students (Locust)"
    shared = "Locust (one process), web, ws, worker, beat, PostgreSQL and Redis"
    return harness.report(record, title, shared, intro, harness.table("measure | measured | target | ", rows))


def main(argv: list[str] | None = None) -> int:
    options = [
        ("--users", {"type": int, "default": 500, "help": "students (default 500)"}),
        ("--spawn-rate", {"type": float, "default": 4.0, "help": "students arriving (logging in) per second"}),
        ("--capacity", {"type": int, "default": 500, "help": "seats of the event"}),
        ("--after-open", {"type": int, "default": 60, "help": "seconds Locust keeps running after the opening"}),
        ("--ws-fraction", {"type": float, "default": 0.8, "help": "share of students watching by websocket"}),
    ]
    return harness.main(__doc__, argv, run=run, name=lambda a: f"opening-{a.users}", options=options)


if __name__ == "__main__":
    sys.exit(main())
