"""N open queue websockets on ONE ws process: memory, handshakes, and every decision delivered.

    .venv/bin/python -m loadtests.ws_bench --sockets 1000

Own stack with a single ws process (``WS_CONCURRENCY=1``) and, at first, no worker; one student,
session and queue entry per socket, all sockets opened and kept open, then the worker and beat
decide every entry. docs/BENCHMARKS.md, "1000 open queue websockets on one web process".
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections import Counter

from loadtests.harness import report
from loadtests.harness.fixtures import make_event, make_sessions, make_students
from loadtests.harness.invariants import query
from loadtests.harness.locust_report import _verdict
from loadtests.harness.stack import ROOT, family_usage, machine, running, say, versions

DECIDED = {"completed", "failed"}


def prepare(count: int, slug: str) -> list[tuple[str, str]]:
    """Students with a session and a queue entry each: ``[(session_key, queue_id)]``."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from claims.services import claim_submit

    sessions = make_sessions(make_students(count, f"6{int(time.time()) % 1000:03d}"))
    users = get_user_model().objects.in_bulk([s["user_id"] for s in sessions])
    pairs = []
    for session in sessions:
        entry, _created = claim_submit(user=users[session["user_id"]], event_slug=slug)
        pairs.append((session["session"], str(entry.public_id)))
    connection.close()
    return pairs


class Watcher:
    def __init__(self) -> None:
        self.handshake_ms: list[float] = []
        self.failures: Counter[str] = Counter()
        self.messages = 0
        self.final: dict[str, str] = {}
        self.open_now = 0
        self.max_open = 0


async def watch(base: str, session_key: str, queue_id: str, watcher: Watcher, gate: asyncio.Semaphore,
                release: asyncio.Event, deadline: list[float]) -> None:  # fmt: skip
    from websockets.asyncio.client import connect

    host = base.split("://", 1)[1]
    try:
        async with gate:
            started = time.perf_counter()
            socket = await connect(
                f"ws://{host}/ws/queue/{queue_id}/", origin=base, open_timeout=30, ping_interval=None,
                additional_headers={"Cookie": f"sessionid={session_key}"}, compression=None,
            )  # fmt: skip
            watcher.handshake_ms.append((time.perf_counter() - started) * 1000)
    except Exception as exc:  # every kind of handshake failure is counted
        watcher.failures[type(exc).__name__] += 1
        return
    watcher.open_now += 1
    watcher.max_open = max(watcher.max_open, watcher.open_now)
    try:
        while queue_id not in watcher.final:
            left = deadline[0] - time.monotonic()
            if left <= 0:
                break
            try:
                message = json.loads(await asyncio.wait_for(socket.recv(), timeout=left))
            except TimeoutError:
                break
            watcher.messages += 1
            if os.environ.get("LOADTEST_DEBUG"):
                print(queue_id, message, flush=True)
            if message.get("queue_id") == queue_id and message.get("status") in DECIDED:
                watcher.final[queue_id] = message["status"]
        # Stay connected until everyone is decided: N sockets open at once is the point.
        await release.wait()
    except Exception as exc:  # a dropped socket is a failure to deliver
        watcher.failures[f"dropped: {type(exc).__name__}"] += 1
    finally:
        watcher.open_now -= 1
        await socket.close()


async def run_sockets(base: str, pairs: list[tuple[str, str]], watcher: Watcher, start_deciding, timeout: float):
    gate = asyncio.Semaphore(100)  # handshakes in flight at once
    release = asyncio.Event()
    deadline = [time.monotonic() + 3600]
    tasks = [asyncio.create_task(watch(base, key, qid, watcher, gate, release, deadline)) for key, qid in pairs]
    while len(watcher.handshake_ms) + sum(watcher.failures.values()) < len(pairs):
        await asyncio.sleep(0.2)
    await asyncio.sleep(3)  # let the web process settle with every socket open
    memory_open = await asyncio.to_thread(start_deciding)
    deciding_since = time.monotonic()
    deadline[0] = deciding_since + timeout
    while len(watcher.final) < watcher.max_open and time.monotonic() < deadline[0]:
        await asyncio.sleep(0.2)
    decided_in = time.monotonic() - deciding_since
    release.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return memory_open, decided_in


def run(args) -> dict:
    with running("ws-bench", args.keep, extra_env={"WS_CONCURRENCY": "1"}) as stack:
        stack.start()
        slug = f"lt-ws-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        event = make_event(slug, max(1, args.sockets // 2))
        stack.start_processes(only={"web", "ws"})
        stack.wait_healthy(answering=True)  # no worker yet: health is red, but the web answers
        say(f"creating {args.sockets} sessions and queue entries")
        pairs = prepare(args.sockets, slug)
        ws = stack.processes["ws"].pid

        def web_rss() -> float:
            """RSS of the one uvicorn worker (the largest process of the ws role)."""
            return max(family_usage(ws)[0])

        peak = [web_rss()]
        baseline = peak[0]
        halt = threading.Event()

        def sample() -> None:
            while not halt.wait(0.5):
                peak[0] = max(peak[0], web_rss())

        threading.Thread(target=sample, daemon=True).start()

        def start_deciding() -> float:
            rss = web_rss()
            say(f"{args.sockets} sockets open, web RSS {rss:.0f} MB; starting the worker and beat")
            stack.start_processes(only={"worker", "beat"})
            return rss

        watcher = Watcher()
        say(f"opening {args.sockets} websockets")
        memory_open, decided_in = asyncio.run(
            run_sockets(stack.ws_origin.replace("ws://", "http://", 1), pairs, watcher, start_deciding, args.timeout)
        )
        halt.set()
        sql = "SELECT public_id::text, status FROM ticket_queue WHERE event_id = %s"
        truth = dict(query(stack.database_url, sql, [event.id], all_rows=True))
        delivered = sum(1 for qid, status in watcher.final.items() if truth.get(qid) == status)
        figures = {
            "sockets": args.sockets,
            "opened": len(watcher.handshake_ms),
            "max_open": watcher.max_open,
            "handshake_failures": dict(watcher.failures),
            "handshake_p50_ms": report.percentile(watcher.handshake_ms, 50),
            "handshake_p95_ms": report.percentile(watcher.handshake_ms, 95),
            "rss_baseline_mb": round(baseline, 1),
            "rss_open_mb": round(memory_open, 1),
            "rss_peak_mb": round(peak[0], 1),
            "messages": watcher.messages,
            "delivered": delivered,
            "undecided": sum(1 for status in truth.values() if status not in DECIDED),
            "decided_in_seconds": round(decided_in, 1),
            "machine": machine(),
            "versions": versions(stack.env),
            "started_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
    figures["ok"] = delivered == figures["opened"] == args.sockets
    if not args.no_docs:
        (ROOT / "docs" / "loadtest" / f"websockets-{args.sockets}.json").write_text(json.dumps(figures, indent=2))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = report.parser(__doc__)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for every decision")
    args = parser.parse_args(argv)
    return report.main(args, run=run, markdown=websocket_markdown, section=f"loadtest:websockets-{args.sockets}")


def websocket_markdown(f: dict) -> str:
    m, v = f["machine"], f["versions"]
    ok_rss = f["rss_peak_mb"] <= 250
    ok_all = f["delivered"] == f["sockets"]
    return "\n".join(
        [
            f"### {f['sockets']} open queue websockets on one web process ({f['started_at']})",
            "",
            f"Command: `.venv/bin/python -m loadtests.ws_bench --sockets {f['sockets']}`  ",
            f"Machine: {m['cpus']} vCPU {m['cpu']}, {m['ram_gb']} GB RAM; Python {m['python']}, PostgreSQL "
            f"{v.get('postgresql')}, Redis {v.get('redis')}; the asyncio client ran on the same cores.  ",
            "One uvicorn process (the ws process, `WS_CONCURRENCY=1`); every student has a queue entry; "
            "all sockets are opened "
            "and kept open, then the Celery worker and beat start and decide every entry "
            f"({f['sockets'] // 2} seats, so half are refused).",
            "",
            *report.table("measure | measured | target (ours) |", []),
            f"| sockets open at once | {f['max_open']} of {f['sockets']} (handshake failures: "
            f"{report.codes(f['handshake_failures']) or 'none'}) | {f['sockets']} | "
            f"{_verdict(f['max_open'] == f['sockets'])} |",
            f"| handshake p50 / p95 | {report.ms(f['handshake_p50_ms'])} / {report.ms(f['handshake_p95_ms'])} ms "
            "(100 in flight at a time) | | |",
            f"| web process RSS: idle / all sockets open / peak while deciding | {f['rss_baseline_mb']:.0f} / "
            f"{f['rss_open_mb']:.0f} / {f['rss_peak_mb']:.0f} MB | ≤ 250 MB | {_verdict(ok_rss)} |",
            f"| decisions delivered by push (status equal to the database's) | {f['delivered']} of {f['sockets']}; "
            f"{f['undecided']} entries undecided | every one | {_verdict(ok_all)} |",
            f"| messages received in all / worker start to last decision pushed | {f['messages']:,} / "
            f"{f['decided_in_seconds']:.1f} s | | |",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
