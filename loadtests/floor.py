"""The framework's floor: server CPU per request against a bare Django view, the middleware bill, the
claim spike and the crowd's connections.

    .venv/bin/python -m loadtests.floor               # docs/benchmarks/floor.json
    .venv/bin/python -m loadtests.floor --crowd-only  # docs/benchmarks/floor-crowd.json
    .venv/bin/python -m loadtests.floor --quick

Own stack. With the Procfile's ``web`` command, first the bare view (``loadtests/bare_app.py``), then
ticketwar's logged-in ping, cached event read and claim, from ``--connections`` keep-alive
connections, each request from the next of many logged-in students (Locust generates them;
"server CPU" is the web processes' own, read from /proc, so the generator does not count). Then
the middleware bill (Django's WSGI handler in this process, each middleware added in turn), the
spikes (``--spike`` students each claim once within ``--spread`` s, on kept-alive and on new
connections) and the crowd (``--crowd-students`` students holding ``--crowd`` connections each, all
but one idle, claiming on the last: straight to web, then through the shipped nginx).
"""

from __future__ import annotations

import io
import sys
import time
from collections import Counter

from loadtests import harness
from tools.stack import Stack, procfile, run_nginx, usage

WSGI, BARE = "ticketwar.wsgi:application", "loadtests.bare_app:application"
NAMES = {
    "bare": "bare Django view (no apps, no middleware): `GET /api/ping/`",
    "ping": "ticketwar, logged in: `GET /api/ping/`",
    "event": "ticketwar, logged in: cached `GET /api/events/<slug>/`",
    "claim": "ticketwar, logged in: `POST /api/events/<slug>/claim/` (202)",
}


def serve(stack: Stack, command: str) -> int:
    """(Re)start web with ``command``; its pid once it answers."""
    if "web" in stack.running:
        stack.stop("web")
    stack.start("web", command=command)
    stack.wait_healthy(green=False)
    return stack.pid("web")


def stream(stack: Stack, pid: int, args, requests: list, seconds: float | None) -> dict:
    """``requests`` (method, path, session) from ``args.connections`` connections in turn, for
    ``seconds`` (or each once): rate, latency and web's CPU per request."""
    plan = {
        "kind": "stream",
        "users": args.connections,
        "spawn_rate": args.connections,
        "server": [pid],
        "limit": (seconds or 120) + 60,
        "name": "floor",
        "seconds": seconds,
        "requests": requests,
    }
    out = harness.locust(stack, plan)
    go, done = out["marks"]["go"], out["marks"]["done"]
    sent = [s for s in out["samples"] if s[1].endswith(" floor")]
    return {
        "requests": len(sent),
        "per_second": round(len(sent) / (done["at"] - go["at"]), 1),
        "p50_ms": harness.percentile([s[2] for s in sent], 50),
        "p95_ms": harness.percentile([s[2] for s in sent], 95),
        "cpu_ms_per_request": round((done["server_cpu_s"] - go["server_cpu_s"]) * 1000 / len(sent), 3),
        "codes": harness.statuses(sent),
    }


def spike(stack: Stack, pid: int, args, students: int, *, kept_alive: bool, idle: int = 0, host: str = "") -> dict:
    """Fresh students claim a fresh event's seats (half of them) within ``args.spread`` s; the truth after."""
    slug = f"floor-{students}-{'ka' if kept_alive else 'new'}-{idle}-{time.time_ns()}"
    event = harness.event(slug, students // 2)
    rss_before = usage([pid])[0]
    plan = {
        "kind": "spike",
        "users": students,
        "spawn_rate": 200,
        "limit": 300,
        "sessions": harness.sessions(students),
        "path": f"/api/events/{slug}/claim/",
        "spread": args.spread,
        "kept_alive": kept_alive,
        "idle": idle,
        "server": [pid],
    }
    out = harness.locust(stack, plan, host=host)
    claims = [click for student in out["students"] for click in student["clicks"]]
    go, done = out["marks"]["go"], out["marks"]["done"]
    harness.wait_decided(event.id, 120)
    first, last = min(c[0] for c in claims), max(c[2] for c in claims)
    return {
        "students": students,
        "connections": "kept-alive" if kept_alive else "new",
        "per_student": idle + 1,
        "latencies_ms": [round((c[2] - c[0]) * 1000, 1) for c in claims],
        "statuses": dict(Counter(str(c[1]) for c in claims)),
        "answered_per_second": round(len(claims) / (last - first), 1),
        "web_cpu_ms_per_claim": round((done["server_cpu_s"] - go["server_cpu_s"]) * 1000 / len(claims), 2),
        "warm_up_s": round(go["at"] - min(s[0] for s in out["samples"]), 1),
        "web_rss_mb": [round(rss_before), round(go["server_rss_mb"])],
        "warm_ups": out["counts"],
        "truth": harness.truth(event.id),
    }


def middleware_bill(students: int, rounds: int) -> list:
    """CPU ms per logged-in ``GET /api/ping/`` through Django's WSGI handler in this process, with
    the first k middleware of ``settings.MIDDLEWARE``; the least of three runs taken in turns."""
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    cookies = [f"sessionid={s['session']}" for s in harness.sessions(students)]

    def answered(status: str, headers) -> None:
        assert status.startswith("200"), status

    def cost(middleware: list, count: int) -> float:
        with override_settings(MIDDLEWARE=middleware):
            handler, started = WSGIHandler(), time.process_time()
            for i in range(count):
                environ = {
                    "REQUEST_METHOD": "GET",
                    "PATH_INFO": "/api/ping/",
                    "SERVER_NAME": "127.0.0.1",
                    "SERVER_PORT": "8000",
                    "HTTP_HOST": "127.0.0.1:8000",
                    "REMOTE_ADDR": "127.0.0.1",
                    "HTTP_ACCEPT": "application/json",
                    "HTTP_ACCEPT_LANGUAGE": "id,en;q=0.8",
                    "HTTP_COOKIE": cookies[i % len(cookies)],
                    "wsgi.input": io.BytesIO(),
                    "wsgi.url_scheme": "http",
                    "wsgi.errors": sys.stderr,
                }
                b"".join(handler(environ, answered))
            return (time.process_time() - started) * 1000 / count

    full = list(settings.MIDDLEWARE)
    cost(full, len(cookies))  # first contact: every session and user in the cache
    best = [min(cost(full[:k], rounds) for _ in range(3)) for k in range(len(full) + 1)]
    return [["(none)", round(best[0], 3)]] + [[full[k - 1], round(best[k], 3)] for k in range(1, len(full) + 1)]


def run(args) -> dict:
    if args.quick:
        args.students, args.claims, args.seconds, args.spike, args.rounds = 60, 60, 1.0, [30], 200
        args.crowd, args.crowd_students = [3], 30
    command = args.web or procfile()["web"]
    if WSGI not in command:
        raise SystemExit(f"the web command must serve {WSGI} (the bare view replaces it)")
    figures: dict = {"web": command, "reads": {}, "spikes": [], "crowd": []}
    # The per-student API budget counts every request (its cost is part of the floor) but refuses none.
    with Stack("floor", keep=args.keep, RATELIMIT_API_USER="1000000/m") as stack:
        for name in ("worker", "beat"):
            stack.start(name)
        if not args.crowd_only:
            readers, claimers = harness.sessions(args.students), harness.sessions(args.claims)
            slug = f"floor-{time.time_ns()}"
            harness.event(slug, args.claims)
            harness.say("the bare view")
            pid = serve(stack, command.replace(WSGI, BARE))
            pings = [["GET", "/api/ping/", s] for s in readers]
            figures["reads"]["bare"] = stream(stack, pid, args, pings, args.seconds)
            harness.say("ticketwar")
            pid = serve(stack, command)
            stream(stack, pid, args, [["GET", "/api/ping/", s] for s in readers + claimers], None)  # first contact
            figures["reads"]["ping"] = stream(stack, pid, args, pings, args.seconds)
            figures["reads"]["event"] = stream(
                stack, pid, args, [["GET", f"/api/events/{slug}/", s] for s in readers], args.seconds
            )
            figures["reads"]["claim"] = stream(
                stack, pid, args, [["POST", f"/api/events/{slug}/claim/", s] for s in claimers], None
            )
            harness.say("the middleware bill")
            figures["middleware"] = middleware_bill(args.students, args.rounds)
            for students in args.spike:
                for kept_alive in (True, False):
                    figures["spikes"].append(spike(stack, pid, args, students, kept_alive=kept_alive))
                    harness.say(f"spike: {figures['spikes'][-1]['statuses']}")
        else:
            pid = serve(stack, command)
        with run_nginx(stack.work, web_port=stack.port, ws_port=stack.ws_port) as (proxy, _internal):
            for via, host in (("granian", stack.base_url), ("nginx", f"http://127.0.0.1:{proxy}")):
                for per_student in args.crowd:
                    crowd = spike(
                        stack, pid, args, args.crowd_students, kept_alive=False, idle=per_student - 1, host=host
                    )
                    figures["crowd"].append({**crowd, "via": via})
                    harness.say(f"crowd via {via}: {crowd['statuses']}")
    reads = figures["reads"]
    for measured in reads.values():
        measured["ratio"] = round(measured["cpu_ms_per_request"] / reads["bare"]["cpu_ms_per_request"], 1)
    figures["ok"] = all(s["truth"]["ok"] for s in figures["spikes"] + figures["crowd"])
    return figures


def markdown(record: dict) -> str:
    f = record["figures"]
    reads = [
        [
            NAMES[k],
            f"{r['per_second']:,.0f}",
            f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f}",
            f"{r['cpu_ms_per_request']:.3f}",
            r["ratio"],
            harness.codes(r["codes"]),
        ]
        for k, r in f["reads"].items()
    ]
    bill, previous = [], 0.0
    for name, cost in f.get("middleware", []):
        bill.append([f"`{name.rpartition('.')[2]}`", f"{cost:.3f}", f"{cost - previous:+.3f}" if bill else ""])
        previous = cost
    spikes = [
        [
            s["students"],
            s["connections"],
            harness.ms(s["latencies_ms"]),
            f"{s['answered_per_second']:.0f}",
            s["web_cpu_ms_per_claim"],
            harness.codes(s["statuses"]),
            harness.held(s["truth"]),
        ]
        for s in f["spikes"]
    ]
    crowd = [
        [
            c["via"],
            c["students"],
            c["students"] * c["per_student"],
            harness.ms(c["latencies_ms"]),
            f"{c['answered_per_second']:.0f}",
            c["warm_up_s"],
            " → ".join(map(str, c["web_rss_mb"])),
            harness.codes(c["statuses"]),
            harness.held(c["truth"]),
        ]
        for c in f["crowd"]
    ]
    return harness.report(
        record,
        "The floor" if reads else "The crowd's connections",
        "Locust, web, worker, beat, PostgreSQL, Redis (and nginx)",
        f"Web: `{f['web']}`",
        harness.table("request | req/s: | p50 / p95 ms: | server CPU ms/request: | × bare: | statuses", reads),
        harness.table("middleware added (in order) | CPU ms/request, cumulative: | this one:", bill),
        harness.table(
            "students within 1 s: | connections | claim p50 / p95 / max ms: | answered per s: | web CPU ms/claim: "
            "| statuses | invariant",
            spikes,
        ),
        harness.table(
            "claims to | students within 1 s: | connections: | claim p50 / p95 / max ms: | answered per s: "
            "| warm-up s: | web RSS MB (before → crowd): | statuses | invariant",
            crowd,
        ),
    )


def main(argv: list[str] | None = None) -> int:
    options = [
        ("--students", {"type": int, "default": 1500, "help": "logged-in students the reads rotate through"}),
        ("--claims", {"type": int, "default": 1500, "help": "claims measured on kept-alive connections"}),
        ("--seconds", {"type": float, "default": 5.0, "help": "length of each read measurement"}),
        ("--connections", {"type": int, "default": 32}),
        ("--rounds", {"type": int, "default": 1500, "help": "requests per row of the middleware bill"}),
        ("--spike", {"type": int, "nargs": "*", "default": [500, 1000], "help": "students in each spike"}),
        ("--spread", {"type": float, "default": 1.0, "help": "a spike's claims are sent within this many s"}),
        ("--crowd", {"type": int, "nargs": "*", "default": [2, 4], "help": "connections per student in each crowd"}),
        ("--crowd-students", {"type": int, "default": 1000}),
        ("--crowd-only", {"action": "store_true", "help": "only the crowd"}),
        ("--web", {"default": "", "help": "the web command (default: the Procfile's)"}),
    ]
    return harness.main(
        __doc__, argv, run=run, name=lambda a: "floor-crowd" if a.crowd_only else "floor", options=options
    )


if __name__ == "__main__":
    sys.exit(main())
