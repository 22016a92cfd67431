"""N open queue websockets on ONE ws process: memory, handshakes, and every decision delivered.

    .venv/bin/python loadtests/ws_bench.py --sockets 1000

Starts its own stack like ``loadtests/run.py`` but with a single uvicorn process for websockets
(the Procfile's ws, ``WS_CONCURRENCY=1``) and, at first, no Celery worker; creates N students
with a session each and N queue entries for an event of N/2 seats (``queue_enqueue``, the claim service);
opens one ``/ws/queue/<id>/`` websocket per entry (asyncio, ``websockets``) and keeps them all
open; measures the web process's RSS; then starts the worker and beat, which decide every
entry, and checks that every socket received the decision the database holds. Writes a table
to ``docs/BENCHMARKS.md`` (section "Load test") unless ``--no-docs``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtests import report  # noqa: E402
from loadtests.run import Stack, machine, say, versions  # noqa: E402

DECIDED = {"completed", "failed"}


def prepare(count: int, slug: str) -> list[tuple[str, str]]:
    """Sessions and queue entries for ``count`` students: ``[(session_key, queue_id)]``."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.db import connection

    from queueing.services import queue_enqueue

    users = list(get_user_model().objects.filter(nim__startswith="6").order_by("pk")[:count])
    pairs = []
    for user in users:
        # What django.contrib.auth.login() stores, without paying PBKDF2 a thousand times.
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        entry, _created = queue_enqueue(user=user, event_slug=slug)
        pairs.append((session.session_key, str(entry.public_id)))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for every decision")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--prepare", nargs=2, metavar=("SLUG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prepare:
        slug, out = args.prepare
        Path(out).write_text(json.dumps(prepare(args.sockets, slug)))
        return 0

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    work = Path(tempfile.mkdtemp(prefix="ticketwar-loadtest-"))
    stack = Stack(work)
    try:
        stack.start_services()
        stack.env["WS_CONCURRENCY"] = "1"
        stack.manage("migrate", "--noinput", "-v", "0")
        stack.manage("create_students", "--count", str(args.sockets), "--prefix", "6")
        slug = f"lt-ws-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        stack.manage("create_event", "--slug", slug, "--capacity", str(max(1, args.sockets // 2)))
        stack.start_processes(only={"web", "ws"})
        stack.wait_healthy(answering=True)  # no worker yet: health is red, but the web answers
        say(f"creating {args.sockets} sessions and queue entries")
        # In a child process: Django must read the stack's DATABASE_URL, not this process's.
        pairs_file = work / "pairs.json"
        subprocess.run(
            [sys.executable, __file__, "--prepare", slug, str(pairs_file), "--sockets", str(args.sockets)],
            env={**stack.env, "DJANGO_SETTINGS_MODULE": "ticketwar.settings"}, cwd=ROOT, check=True,
        )  # fmt: skip
        pairs = [tuple(pair) for pair in json.loads(pairs_file.read_text())]

        import psutil

        web = psutil.Process(stack.processes["ws"].pid)

        def web_rss() -> float:
            """RSS of the one uvicorn worker (the largest process of the ws role)."""
            return max(p.memory_info().rss for p in [web, *web.children(recursive=True)]) / 2**20

        peak = [web_rss()]
        baseline = peak[0]
        halt = threading.Event()

        def sample() -> None:
            while not halt.wait(0.5):
                try:
                    peak[0] = max(peak[0], web_rss())
                except psutil.Error:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

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
        import psycopg

        dsn = stack.env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
        with psycopg.connect(dsn) as conn:
            truth = dict(
                conn.execute(
                    "SELECT q.public_id::text, q.status FROM ticket_queue q JOIN events_event e ON e.id = q.event_id "
                    "WHERE e.slug = %s",
                    [slug],
                ).fetchall()
            )
        delivered = sum(1 for qid, status in watcher.final.items() if truth.get(qid) == status)
        undecided = sum(1 for status in truth.values() if status not in DECIDED)
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
            "undecided": undecided,
            "decided_in_seconds": round(decided_in, 1),
            "machine": machine(),
            "versions": versions(stack.env),
            "started_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        markdown = websocket_markdown(figures)
        out = ROOT / "docs" / "loadtest" / f"websockets-{args.sockets}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=2))
        if not args.no_docs:
            report.update_benchmarks(ROOT / "docs" / "BENCHMARKS.md", f"websockets-{args.sockets}", markdown)
        print(markdown)
        return 0 if delivered == figures["opened"] == args.sockets else 1
    except KeyboardInterrupt:
        return 130
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)


def websocket_markdown(f: dict) -> str:
    m, v = f["machine"], f["versions"]
    ok_rss = f["rss_peak_mb"] <= 250
    ok_all = f["delivered"] == f["sockets"]
    return "\n".join(
        [
            f"### {f['sockets']} open queue websockets on one web process ({f['started_at']})",
            "",
            f"Command: `.venv/bin/python loadtests/ws_bench.py --sockets {f['sockets']}`  ",
            f"Machine: {m['cpus']} vCPU {m['cpu']}, {m['ram_gb']} GB RAM; Python {m['python']}, PostgreSQL "
            f"{v.get('postgresql')}, Redis {v.get('redis')}; the asyncio client ran on the same cores.  ",
            "One uvicorn process (the ws process, `WS_CONCURRENCY=1`); every student has a queue entry; "
            "all sockets are opened "
            "and kept open, then the Celery worker and beat start and decide every entry "
            f"({f['sockets'] // 2} seats, so half are refused).",
            "",
            "| measure | measured | target (ours) | |",
            "| --- | --- | --- | --- |",
            f"| sockets open at once | {f['max_open']} of {f['sockets']} (handshake failures: "
            f"{report._codes(f['handshake_failures']) or 'none'}) | {f['sockets']} | "
            f"{report._verdict(f['max_open'] == f['sockets'])} |",
            f"| handshake p50 / p95 | {report._ms(f['handshake_p50_ms'])} / {report._ms(f['handshake_p95_ms'])} ms "
            "(100 in flight at a time) | | |",
            f"| web process RSS: idle / all sockets open / peak while deciding | {f['rss_baseline_mb']:.0f} / "
            f"{f['rss_open_mb']:.0f} / {f['rss_peak_mb']:.0f} MB | ≤ 250 MB | {report._verdict(ok_rss)} |",
            f"| decisions delivered by push (status equal to the database's) | {f['delivered']} of {f['sockets']}; "
            f"{f['undecided']} entries undecided | every one | {report._verdict(ok_all)} |",
            f"| messages received in all / worker start to last decision pushed | {f['messages']:,} / "
            f"{f['decided_in_seconds']:.1f} s | | |",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
