"""Open queue websockets on ONE ws process: its memory, the handshakes, every decision delivered.

    .venv/bin/python -m loadtests.ws_bench --sockets 1000   # docs/benchmarks/websockets-1000.json
    .venv/bin/python -m loadtests.ws_bench --quick

Own stack with a single ws process (``WS_CONCURRENCY=1``) and, at first, no worker: each student
has a queue entry and opens a websocket on it (Locust, kind ``sockets``, 100 new a second); once
all are open the Procfile's worker and beat start and decide every entry (half the seats there
are students), and each socket stays open until everyone has heard.
"""

from __future__ import annotations

import sys
import threading
import time

from loadtests import harness
from tools.stack import Stack, usage, wait_for_port


def open_sockets(pid: int, port: int) -> int:
    """Established connections to ``port`` held by ``pid`` (the ws process)."""
    import psutil

    connections = psutil.Process(pid).net_connections(kind="tcp")
    return sum(1 for c in connections if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port)


def run(args) -> dict:
    if args.quick:
        args.sockets = 40
    with Stack("websockets", keep=args.keep, WS_CONCURRENCY="1") as stack:
        from django.contrib.auth import get_user_model

        from claims.services import claim_submit

        event = harness.event(f"ws-{time.time_ns()}", args.sockets // 2)
        ws = stack.start("ws")
        wait_for_port(stack.ws_port, ws)
        students = harness.sessions(args.sockets)
        users = get_user_model().objects.in_bulk([s["user_id"] for s in students])
        for student in students:
            student["queue_id"] = str(claim_submit(user=users[student["user_id"]], event_slug=event.slug)[0].public_id)
        plan = {
            "kind": "sockets",
            "users": args.sockets,
            "spawn_rate": 100,
            "limit": args.timeout,
            "sessions": students,
            "ws_origin": stack.ws_origin,
            "origin": stack.base_url,
        }
        rss = {"idle": usage([ws.pid])[0]}
        results: list = []
        client = threading.Thread(target=lambda: results.append(harness.locust(stack, plan)), daemon=True)
        client.start()
        deadline = time.monotonic() + args.timeout
        while open_sockets(ws.pid, stack.ws_port) < args.sockets and time.monotonic() < deadline and client.is_alive():
            time.sleep(0.5)
        time.sleep(2)  # the ws process settles with every socket open
        rss["open"], opened = usage([ws.pid])[0], open_sockets(ws.pid, stack.ws_port)
        harness.say(f"{opened} sockets open, ws RSS {rss['open']:.0f} MB; starting the worker and beat")
        stack.start("worker")
        stack.start("beat")
        started, rss["peak"] = time.time(), rss["open"]
        while client.is_alive():
            rss["peak"] = max(rss["peak"], usage([ws.pid])[0])
            time.sleep(0.5)
        out = results[0]
        decided_in = out["marks"]["done"]["at"] - started if "done" in out["marks"] else None
        truth = dict(
            harness.query("SELECT public_id::text, status FROM ticket_queue WHERE event_id = %s", [event.id], rows=True)
        )
    handshakes = [s for s in out["samples"] if s[1].startswith("WS ")]
    delivered = sum(1 for s in out["students"] if s["decision"] and truth.get(s["queue_id"]) == s["decision"])
    return {
        "sockets": args.sockets,
        "opened": opened,
        "handshake_failures": sum(1 for s in handshakes if s[3] != 101),
        "handshakes_ms": [s[2] for s in handshakes],
        "rss_mb": {k: round(v) for k, v in rss.items()},
        "delivered": delivered,
        "messages": sum(s.get("messages", 0) for s in out["students"]),
        "worker_start_to_last_decision_s": None if decided_in is None else round(decided_in, 1),
        "ok": delivered == opened == args.sockets and rss["peak"] <= 250,
    }


def markdown(record: dict) -> str:
    f = record["figures"]
    met = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    rows = [
        [
            "sockets open at once",
            f"{f['opened']} of {f['sockets']} (handshake failures: {f['handshake_failures']})",
            f"{f['sockets']}",
            met(f["opened"] == f["sockets"]),
        ],
        ["handshake p50 / p95 / max", f"{harness.ms(f['handshakes_ms'])} ms (100 new a second)", "", ""],
        [
            "ws process RSS: idle / every socket open / peak while deciding",
            f"{f['rss_mb']['idle']} / {f['rss_mb']['open']} / {f['rss_mb']['peak']} MB",
            "≤ 250 MB",
            met(f["rss_mb"]["peak"] <= 250),
        ],
        [
            "decisions delivered by push (the database's status)",
            f"{f['delivered']} of {f['sockets']}",
            "every one",
            met(f["delivered"] == f["sockets"]),
        ],
        [
            "messages received / worker start to the last decision heard",
            f"{f['messages']:,} / {f['worker_start_to_last_decision_s']} s",
            "",
            "",
        ],
    ]
    title = f"{f['sockets']} open queue websockets on one ws process"
    shared = "Locust, ws, worker, beat, PostgreSQL and Redis"
    return harness.report(record, title, shared, harness.table("measure | measured | target | ", rows))


def main(argv: list[str] | None = None) -> int:
    options = [
        ("--sockets", {"type": int, "default": 1000}),
        ("--timeout", {"type": float, "default": 180, "help": "seconds for every socket to hear its decision"}),
    ]
    return harness.main(__doc__, argv, run=run, name=lambda a: f"websockets-{a.sockets}", options=options)


if __name__ == "__main__":
    sys.exit(main())
