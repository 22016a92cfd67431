"""The framework's floor: what one request costs the server, against a bare Django view, and the spike.

    .venv/bin/python -m loadtests.floor                      # the full run (docs/BENCHMARKS.md, "The floor")
    .venv/bin/python -m loadtests.floor --quick              # the same, small (loadtests/tests)

Starts its own PostgreSQL, Redis, Celery worker and beat (``DrillStack``) and, one after the
other, with the same server command (the Procfile's ``web``: granian, same workers and threads):

1. the reference: a bare Django view (no apps, no middleware, ``loadtests/bare_app.py``);
2. ticketwar: the logged-in ``GET /api/ping/`` (the whole middleware stack, nothing in the view),
   the cached ``GET /api/events/<slug>/`` and the claim ``POST /api/events/<slug>/claim/``;

each from ``--connections`` keep-alive connections, every request from the next of many
logged-in students (sessions made in the database, as the login form leaves them; each
student's session and user are read once before, as the countdown's polling does), never one
session repeated. For each: requests/s, p50/p95 and the **server's CPU per request** (the web
processes' CPU from /proc, divided by the requests), and its ratio to the bare view's.

3. the spike (``loadtests/spike_bench.py``): ``--spike`` students each POST a claim within
   ``--spread`` seconds, once on kept-alive connections (opened and used once before, as a
   polling page leaves them) and once each on a new connection; p50/p95/max, claims answered
   per second, web CPU per claim, and the database's invariant (tickets == seats, one each).

Prints JSON (``--out`` writes it) and the markdown tables for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketwar.settings")

from loadtests.drills.common import DrillStack, make_event, make_sessions, make_students  # noqa: E402
from loadtests.report import percentile  # noqa: E402
from loadtests.run import family_usage, say  # noqa: E402
from loadtests.spike_bench import _check, _spike, http_request, read_response  # noqa: E402

WSGI_TARGET = "ticketwar.wsgi:application"
BARE_TARGET = "loadtests.bare_app:application"


def procfile_web() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == "web":
            return command.strip()
    raise RuntimeError("no web line in the Procfile")


def _cpu(pid: int) -> float:
    return family_usage(pid)[1]


async def _worker(host, port, requests, deadline, latencies, codes) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for request in requests:
            if time.perf_counter() >= deadline:
                return
            started = time.perf_counter()
            writer.write(request)
            status = await read_response(reader)
            latencies.append((time.perf_counter() - started) * 1000)
            codes[status] += 1
            if status == "closed":
                return
    finally:
        writer.close()


async def _measure(base_url: str, requests, connections: int, seconds: float) -> dict:
    """Send ``requests`` (an iterator shared by all connections) for at most ``seconds``."""
    parsed = urlparse(base_url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*[_worker(host, port, requests, deadline, latencies, codes) for _ in range(connections)])
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) or 0, 2),
        "p95_ms": round(percentile(latencies, 95) or 0, 2),
        "codes": dict(codes),
    }


def measure(base_url: str, pid: int, requests, connections: int, seconds: float) -> dict:
    before = _cpu(pid)
    result = asyncio.run(_measure(base_url, requests, connections, seconds))
    result["cpu_ms_per_request"] = round((_cpu(pid) - before) * 1000 / max(1, result["requests"]), 3)
    return result


def _rotating(base_url: str, method: str, path: str, sessions: list[dict]):
    parsed = urlparse(base_url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    built = [http_request(host, port, method, path, s, keep_alive=True) for s in sessions]
    return iter(itertools.cycle(built)) if method == "GET" else iter(built)


def start_web(stack: DrillStack, name: str, command: str) -> subprocess.Popen:
    log = (stack.work / f"web-{name}.log").open("w")
    process = subprocess.Popen(
        ["bash", "-c", command], env=stack.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    stack.processes["web"] = process
    deadline = time.monotonic() + 60
    import urllib.error
    import urllib.request

    while time.monotonic() < deadline:
        assert process.poll() is None, f"{name} exited; see {log.name}"
        try:
            with urllib.request.urlopen(f"{stack.base_url}/api/ping/", timeout=2):  # noqa: S310 - loopback
                return process
        except urllib.error.HTTPError:
            return process
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{name} did not answer within 60 s")


def stop_web(stack: DrillStack) -> None:
    process = stack.processes.pop("web")
    os.killpg(process.pid, 15)
    process.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=1500, help="logged-in students the reads rotate through")
    parser.add_argument("--claims", type=int, default=1500, help="claims measured on kept-alive connections")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each read measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--spike", type=int, nargs="*", default=[500, 1000], help="students in each spike")
    parser.add_argument("--spread", type=float, default=1.0, help="a spike's claims are sent within this many s")
    parser.add_argument("--web", default="", help="the server command (default: the Procfile's web)")
    parser.add_argument("--quick", action="store_true", help="small numbers: a check that the bench works")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    if args.quick:
        args.students, args.claims, args.seconds, args.spike = 60, 60, 1.0, [30]
    command = args.web or procfile_web()
    if WSGI_TARGET not in command:
        raise SystemExit(f"the web command must serve {WSGI_TARGET} (the bare view replaces it)")

    work = Path(tempfile.mkdtemp(prefix="ticketwar-floor-"))
    # The per-student API budget still counts every request (its cost is part of the floor) but
    # never refuses one: the quick run's 60 students read far more than 60 times a minute each.
    stack = DrillStack(work, extra_env={"RATELIMIT_API_USER": "1000000/m"})
    results: dict = {"command": command, "connections": args.connections, "students": args.students, "runs": {}}
    load_before = os.getloadavg()
    try:
        stack.start()
        stack.start_processes(only={"worker", "beat"})
        say("creating students and sessions")
        pool = make_sessions(make_students(args.students + args.claims + 2 * sum(args.spike), "8100"))
        readers, claimers = pool[: args.students], pool[args.students : args.students + args.claims]
        rest = pool[args.students + args.claims :]
        slug = f"floor-{int(time.time())}"
        make_event(slug, args.claims)

        say("bare Django view")
        web = start_web(stack, "bare", command.replace(WSGI_TARGET, BARE_TARGET))
        measure(stack.base_url, web.pid, _rotating(stack.base_url, "GET", "/api/ping/", readers), args.connections, 1)
        results["runs"]["bare"] = measure(
            stack.base_url, web.pid, _rotating(stack.base_url, "GET", "/api/ping/", readers), args.connections,
            args.seconds,
        )  # fmt: skip
        stop_web(stack)

        say("ticketwar")
        web = start_web(stack, "ticketwar", command)
        # First contact: every student's session and user read once (the countdown's polling).
        first = _rotating(stack.base_url, "GET", "/api/ping/", readers + claimers)
        measure(stack.base_url, web.pid, itertools.islice(first, len(readers) + len(claimers)), args.connections, 60)
        for name, method, path, sessions in (
            ("ping", "GET", "/api/ping/", readers),
            ("event", "GET", f"/api/events/{slug}/", readers),
            ("claim", "POST", f"/api/events/{slug}/claim/", claimers),
        ):
            results["runs"][name] = measure(
                stack.base_url, web.pid, _rotating(stack.base_url, method, path, sessions), args.connections,
                args.seconds if method == "GET" else 120,
            )  # fmt: skip
        bare = results["runs"]["bare"]["cpu_ms_per_request"]
        for run in results["runs"].values():
            run["ratio"] = round(run["cpu_ms_per_request"] / bare, 2) if bare else None

        # The spike: fresh students and a fresh event per phase (a student claims once an event).
        results["spikes"] = []
        for students in args.spike:
            for kept_alive in (True, False):
                sessions, rest = rest[:students], rest[students:]
                spike_slug = f"floor-spike-{students}-{'ka' if kept_alive else 'new'}-{int(time.time())}"
                make_event(spike_slug, students // 2)
                if not kept_alive:  # first contact on new connections, spread out (as spike_bench)
                    asyncio.run(_spike(stack.base_url, "GET", "/api/ping/", sessions, max(5.0, 5 * args.spread)))
                before = [0.0]

                def read_cpu(pid=web.pid, before=before) -> None:
                    before[0] = _cpu(pid)

                spike = asyncio.run(
                    _spike(
                        stack.base_url, "POST", f"/api/events/{spike_slug}/claim/", sessions, args.spread,
                        kept_alive=kept_alive, on_start=read_cpu,
                    )
                )  # fmt: skip
                web_cpu = _cpu(web.pid) - before[0]
                spike["web_cpu_ms_per_claim"] = round(web_cpu * 1000 / students, 2)
                spike["database"] = _check(stack.env["DATABASE_URL"], spike_slug, students // 2, students)
                spike.update(students=students, connections="kept-alive" if kept_alive else "new")
                say(json.dumps(spike))
                results["spikes"].append(spike)
        stop_web(stack)
    finally:
        stack.stop()
    results["load_average_before"] = [round(x, 2) for x in load_before]
    results["cpus"] = os.cpu_count()
    results["run_command"] = " ".join(
        shlex.quote(a) for a in [".venv/bin/python", "-m", "loadtests.floor", *(argv or sys.argv[1:])]
    )
    text = json.dumps(results, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    names = {
        "bare": "bare Django view (no apps, no middleware): `GET /api/ping/`",
        "ping": "ticketwar, logged in: `GET /api/ping/`",
        "event": "ticketwar, logged in: cached `GET /api/events/<slug>/`",
        "claim": "ticketwar, logged in: `POST /api/events/<slug>/claim/` (202)",
    }
    lines = [
        "| request | req/s | p50 ms | p95 ms | server CPU ms/request | × bare | statuses |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for key, run in results["runs"].items():
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(run["codes"].items()))
        lines.append(
            f"| {names[key]} | {run['per_second']:.0f} | {run['p50_ms']} | {run['p95_ms']} | "
            f"{run['cpu_ms_per_request']:.3f} | {run['ratio']} | {codes} |"
        )
    lines += [
        "",
        "| students within 1 s | connections | claim p50 / p95 / max ms | answered per s | web CPU ms/claim "
        "| statuses | invariant |",
        "| ---: | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for spike in results.get("spikes", []):
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(spike["statuses"].items()))
        db = spike["database"]
        lines.append(
            f"| {spike['students']} | {spike['connections']} | {spike['p50_ms']:.0f} / {spike['p95_ms']:.0f} / "
            f"{spike['max_ms']:.0f} | {spike['answered_per_second']:.0f} | {spike['web_cpu_ms_per_claim']} | {codes} | "
            f"{'held' if db['invariant_held'] else 'BROKEN'} ({db['tickets']} tickets, {db['holders']} holders) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
