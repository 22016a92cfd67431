"""The framework's floor: server CPU per request against a bare Django view, and the claim spike.

    .venv/bin/python -m loadtests.floor               # docs/BENCHMARKS.md, "The framework's floor"
    .venv/bin/python -m loadtests.floor --crowd-only  # docs/BENCHMARKS.md, "The crowd's connections"
    .venv/bin/python -m loadtests.floor --quick       # the same, small (loadtests/tests)

Own stack; with the Procfile's ``web`` command, first the bare view (``loadtests/bare_app.py``),
then ticketwar's logged-in ping, cached event read and claim from ``--connections`` keep-alive
connections, one logged-in student after the other; then ``--spike`` students each claim within
``--spread`` seconds, on kept-alive and on new connections, and the invariant is checked. Last
the crowd: ``--crowd-students`` students each hold ``--crowd`` connections, all but one kept alive
and idle, and claim once on the last, new one; straight to web, then through the shipped nginx.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import signal
import sys
import time

from loadtests.harness import http, report
from loadtests.harness.fixtures import make_event, make_sessions, make_students
from loadtests.harness.invariants import invariants, wait_queue_empty
from loadtests.harness.stack import family_usage, machine, running, say
from tools.testing import procfile, run_nginx

WSGI_TARGET = "ticketwar.wsgi:application"
BARE_TARGET = "loadtests.bare_app:application"


def measure(base_url: str, pid: int, requests, connections: int, seconds: float) -> dict:
    before = family_usage(pid)[1]
    result = http.measure(base_url, requests, connections, seconds)
    result["cpu_ms_per_request"] = round((family_usage(pid)[1] - before) * 1000 / max(1, result["requests"]), 3)
    return result


def serve(stack, command: str) -> int:
    """(Re)start the web process with ``command``; its pid once ``/api/ping/`` answers."""
    if "web" in stack.processes:
        process = stack.processes.pop("web")
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    pid = stack.start_command("web", command).pid
    stack.wait_healthy(answering=True, path="/api/ping/")
    return pid


def run(args) -> dict:
    if args.quick:
        args.students, args.claims, args.seconds, args.spike = 60, 60, 1.0, [30]
        args.crowd, args.crowd_students = [3], 30
    if args.crowd_only:
        args.students, args.claims, args.spike = 0, 0, []
    # The crowd's connections need descriptors here, in web and in nginx (which inherit the limit).
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    command = args.web or procfile()["web"]
    if WSGI_TARGET not in command:
        raise SystemExit(f"the web command must serve {WSGI_TARGET} (the bare view replaces it)")
    results: dict = {"command": command, "connections": args.connections, "students": args.students, "runs": {}}
    results["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    # The per-student API budget still counts every request (its cost is part of the floor) but
    # never refuses one: the quick run's 60 students read far more than 60 times a minute each.
    with running("floor", args.keep, extra_env={"RATELIMIT_API_USER": "1000000/m"}) as stack:
        stack.start()
        stack.start_processes(only={"worker", "beat"})
        say("creating students and sessions")
        crowds = [(via, n) for via in ("granian", "nginx") for n in args.crowd]
        total = args.students + args.claims + 2 * sum(args.spike) + len(crowds) * args.crowd_students
        pool = make_sessions(make_students(total, "8100"))
        readers, claimers = pool[: args.students], pool[args.students : args.students + args.claims]
        rest = pool[args.students + args.claims :]
        slug = f"floor-{int(time.time())}"
        make_event(slug, args.claims)
        base, runs = stack.base_url, results["runs"]

        if not args.crowd_only:
            say("bare Django view")
            pid = serve(stack, command.replace(WSGI_TARGET, BARE_TARGET))
            measure(base, pid, http.requests(base, "GET", "/api/ping/", readers), args.connections, 1)
            runs["bare"] = measure(
                base, pid, http.requests(base, "GET", "/api/ping/", readers), args.connections, args.seconds
            )

        say("ticketwar")
        pid = serve(stack, command)
        if not args.crowd_only:
            # First contact: every student's session and user read once (the countdown's polling).
            first = http.requests(base, "GET", "/api/ping/", readers + claimers)
            measure(base, pid, itertools.islice(first, len(readers) + len(claimers)), args.connections, 60)
            for name, method, path, sessions in (
                ("ping", "GET", "/api/ping/", readers),
                ("event", "GET", f"/api/events/{slug}/", readers),
                ("claim", "POST", f"/api/events/{slug}/claim/", claimers),
            ):
                seconds = args.seconds if method == "GET" else 120
                runs[name] = measure(base, pid, http.requests(base, method, path, sessions), args.connections, seconds)
            for measured in runs.values():
                bare = runs["bare"]["cpu_ms_per_request"]
                measured["ratio"] = round(measured["cpu_ms_per_request"] / bare, 2) if bare else None

        # The spike: fresh students and a fresh event per phase (a student claims once an event).
        results["spikes"] = []
        for students in args.spike:
            for kept_alive in (True, False):
                sessions, rest = rest[:students], rest[students:]
                spike_slug = f"floor-spike-{students}-{'ka' if kept_alive else 'new'}-{int(time.time())}"
                event = make_event(spike_slug, students // 2)
                if not kept_alive:  # first contact on new connections, spread out
                    http.spike(base, "GET", "/api/ping/", sessions, max(5.0, 5 * args.spread))
                before = [0.0]
                path = f"/api/events/{spike_slug}/claim/"
                spike = http.spike(
                    base, "POST", path, sessions, args.spread, kept_alive=kept_alive,
                    on_start=lambda before=before: before.__setitem__(0, family_usage(pid)[1]),
                )  # fmt: skip
                spike["web_cpu_ms_per_claim"] = round((family_usage(pid)[1] - before[0]) * 1000 / students, 2)
                wait_queue_empty(stack.database_url, event.id, 120, fail=False)
                spike["database"] = invariants(stack.database_url, event.id)
                spike.update(students=students, connections="kept-alive" if kept_alive else "new")
                say(json.dumps(spike))
                results["spikes"].append(spike)

        # The crowd: a phone's browser keeps several connections to the host, so 1,000 students
        # hold thousands, most of them idle; none may wait for another's idle one to be closed.
        results["crowd"] = []
        with run_nginx(stack.work, web_port=stack.port, ws_port=stack.ws_port) as (proxy_port, _internal):
            for via, per_student in crowds:
                sessions, rest = rest[: args.crowd_students], rest[args.crowd_students :]
                crowd_slug = f"floor-crowd-{via}-{per_student}-{int(time.time())}"
                event = make_event(crowd_slug, len(sessions) // 2)
                url = base if via == "granian" else f"http://127.0.0.1:{proxy_port}"
                rss = [sum(family_usage(pid)[0])]
                crowd = http.spike(
                    url, "POST", f"/api/events/{crowd_slug}/claim/", sessions, args.spread, idle=per_student - 1,
                    on_start=lambda rss=rss: rss.append(sum(family_usage(pid)[0])),
                )  # fmt: skip
                wait_queue_empty(stack.database_url, event.id, 120, fail=False)
                crowd["database"] = invariants(stack.database_url, event.id)
                crowd.update(via=via, students=len(sessions), connections=len(sessions) * per_student)
                crowd["web_rss_mb"] = [round(mb) for mb in rss]
                say(json.dumps(crowd))
                results["crowd"].append(crowd)
    results["cpus"] = os.cpu_count()
    results["run_command"] = report.command_line("loadtests.floor")
    results["crowd_only"], results["ended"] = args.crowd_only, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    m = machine()
    results["machine"] = f"{m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, Linux {m['kernel']}"
    return results


def held(database: dict) -> str:
    return f"{'held' if database['ok'] else 'BROKEN'} ({database['tickets']} tickets, {database['holders']} holders)"


def markdown(results: dict) -> str:
    names = {
        "bare": "bare Django view (no apps, no middleware): `GET /api/ping/`",
        "ping": "ticketwar, logged in: `GET /api/ping/`",
        "event": "ticketwar, logged in: cached `GET /api/events/<slug>/`",
        "claim": "ticketwar, logged in: `POST /api/events/<slug>/claim/` (202)",
    }
    reads = [
        f"| {names[key]} | {run['per_second']:.0f} | {run['p50_ms']} | {run['p95_ms']} | "
        f"{run['cpu_ms_per_request']:.3f} | {run['ratio']} | {report.codes(run['codes'])} |"
        for key, run in results["runs"].items()
    ]
    spikes = [
        f"| {s['students']} | {s['connections']} | {s['p50_ms']:.0f} / {s['p95_ms']:.0f} / {s['max_ms']:.0f} "
        f"| {s['answered_per_second']:.0f} | {s['web_cpu_ms_per_claim']} | {report.codes(s['statuses'])} | "
        f"{held(s['database'])} |"
        for s in results.get("spikes", [])
    ]
    crowd = [
        f"| {c['via']} | {c['students']} | {c['connections']} | {c['p50_ms']:.0f} / {c['p95_ms']:.0f} / "
        f"{c['max_ms']:.0f} | {c['answered_per_second']:.0f} | {c['warm_up_s']} | "
        f"{' → '.join(map(str, c['web_rss_mb']))} | {report.codes(c['statuses'])} | {held(c['database'])} |"
        for c in results.get("crowd", [])
    ]
    tables = [
        report.table(
            "request | req/s | p50 ms | p95 ms | server CPU ms/request | × bare | statuses",
            reads, ["---", *["---:"] * 5, "---"],
        ),
        report.table(
            "students within 1 s | connections | claim p50 / p95 / max ms | answered per s | web CPU ms/claim "
            "| statuses | invariant",
            spikes, ["---:", "---", "---:", "---:", "---:", "---", "---"],
        ),
        report.table(
            "claims to | students within 1 s | connections | claim p50 / p95 / max ms | answered per s "
            "| warm-up s | web RSS MB (before → crowd) | statuses | invariant",
            crowd, ["---", "---:", "---:", "---:", "---:", "---:", "---:", "---", "---"],
        ),
    ]  # fmt: skip
    text = "\n\n".join("\n".join(table) for table in tables if len(table) > 2)
    if not results.get("crowd_only"):
        return text
    before, after = results["load_average_before"], results["load_average_after"]
    return (
        f"### The crowd's connections ({results['ended']})\n\nCommand: `{results['run_command']}`  \n"
        f"Web: `{results['command']}`  \nMachine: {results['machine']}; load average {before[0]} before the run, "
        f"{after[0]} / {after[1]} (1 / 5 min) after it; client, nginx, web, worker, beat, PostgreSQL and Redis on "
        f"the same cores.\n\n{text}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = report.parser(__doc__)
    parser.add_argument("--students", type=int, default=1500, help="logged-in students the reads rotate through")
    parser.add_argument("--claims", type=int, default=1500, help="claims measured on kept-alive connections")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each read measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--spike", type=int, nargs="*", default=[500, 1000], help="students in each spike")
    parser.add_argument("--spread", type=float, default=1.0, help="a spike's claims are sent within this many s")
    parser.add_argument("--crowd", type=int, nargs="*", default=[2, 4], help="connections per student in each crowd")
    parser.add_argument("--crowd-students", type=int, default=1000)
    parser.add_argument("--crowd-only", action="store_true", help="only the crowd (no reads, no spikes)")
    parser.add_argument("--web", default="", help="the server command (default: the Procfile's web)")
    args = parser.parse_args(argv)
    return report.main(args, run=run, markdown=markdown, section="loadtest:crowd" if args.crowd_only else "")


if __name__ == "__main__":
    sys.exit(main())
