"""Cluster drill: two web, two websocket, two worker processes and one beat behind HAProxy.

    .venv/bin/python -m loadtests.drills.cluster            # 600 students for 500 seats, then a kill
    .venv/bin/python -m loadtests.drills.cluster --quick    # tiny, for the test suite

Every replica a process on its own port, sharing only PostgreSQL and Redis, like pods; HAProxy
in front (active health checks, a refused connection resent to the other replica). Checks, in
order: a session made on one web replica is valid on the other; the claim rate limit holds across
replicas; a decision reaches sockets on every websocket replica; the race (one ticket each,
nothing lost); a second war during which one web replica and one worker are SIGKILLed.
docs/BENCHMARKS.md, "Two of everything behind HAProxy".
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import http.client
import io
import json
import random
import re
import secrets
import shlex
import subprocess
import sys
import time
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path

from loadtests.harness import load, report
from loadtests.harness.fixtures import PASSWORD, make_event, make_sessions, make_students
from loadtests.harness.invariants import accepted_claims, count_rows, invariants, wait_queue_empty
from loadtests.harness.report import clock
from loadtests.harness.stack import Stack, say
from tools import devservices
from tools.testing import procfile

# --- the command line of each replica: THE one place to change ---------------------------------
# As the Procfile splits them: HTTP (web) on granian's WSGI interface, websockets (ws) on uvicorn;
# {port} is the replica's port, one worker process each. The worker and beat come from the
# Procfile itself.
ROLE_COMMANDS = {
    "web": (
        "python -m granian --interface wsgi --host 127.0.0.1 --port {port} --workers 1 --blocking-threads 8"
        " --no-ws --no-access-log --log-level warning --workers-kill-timeout 5 ticketwar.wsgi:application"
    ),
    "ws": (
        "python -m uvicorn ticketwar.asgi:application --host 127.0.0.1 --port {port} --workers 1"
        " --no-access-log --lifespan off --timeout-graceful-shutdown 5"
    ),
}
WEB_REPLICAS = ("web1", "web2")
WS_REPLICAS = ("ws1", "ws2")
WORKERS = ("worker1", "worker2")

FULL = {
    "race_students": 600, "race_seats": 500, "kill_students": 600, "kill_seats": 500, "sockets": 30,
    "race_seconds": 40, "kill_seconds": 50, "burst_share": 0.6, "drain": 180, "lease": None,
}  # fmt: skip
QUICK = {**FULL, "race_students": 60, "race_seats": 50, "kill_students": 60, "kill_seats": 50, "sockets": 6}
QUICK.update(race_seconds=12, kill_seconds=18, drain=60, lease=5)
DECIDED = {"completed", "failed"}

BACKEND = """\
backend {name}
    balance {balance}
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host 127.0.0.1
    http-check expect rstatus ^(200|503)$
    default-server inter 1s fastinter 250ms downinter 1s fall 3 rise 2
{servers}
"""
HAPROXY_CONFIG = """\
# Written by loadtests.drills.cluster for one run.
global
    # 600 students and their sockets, twice over (each needs two descriptors: client and server).
    maxconn 4000

defaults
    mode http
    timeout connect 2s
    timeout client 65s
    timeout server 65s
    timeout http-keep-alive 10s
    # An open websocket may stay quiet between pushes.
    timeout tunnel 1h
    timeout check 10s
    # A refused connection (a replica just died) is tried again on the other replica. Only that:
    # a request that reached a replica is never sent again (retry-on empty-response replayed a
    # claim whose answer was lost in a run here; a replayed door check-in would read "already
    # used"). Requests in flight on a replica that dies are answered 502.
    retries 3
    option redispatch 1
    retry-on conn-failure

frontend ticketwar
    bind 127.0.0.1:{port}
    acl websocket path_beg /ws/
    use_backend ws if websocket
    default_backend web

# Up = /healthz answers, 200 or 503: a 503 names a shared part (Redis, the workers) that is down
# on every replica at once; taking them all out would turn that outage into no site at all.
# A dead replica refuses the connection at once: down after three quick checks (about 0.5 s).
# A busy one answers /healthz only after the requests queued for its threads (seconds at the
# opening): the check waits up to 10 s. Its default (inter, 1 s) would take busy replicas out,
# all of them at the opening, and leave HAProxy answering 503 itself.
{backends}
listen stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
"""


class ClusterStack(Stack):
    """The stack with replicas on ports of their own and HAProxy on ``self.port``."""

    def __init__(self, work: Path, extra_env: dict[str, str] | None = None) -> None:
        super().__init__(work, extra_env)
        self.replica_ports = {name: devservices.free_port() for name in (*WEB_REPLICAS, *WS_REPLICAS)}
        self.stats_port = devservices.free_port()

    def replica_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.replica_ports[name]}"

    def start_replica(self, name: str) -> None:
        role = name.rstrip("0123456789")
        if role in ROLE_COMMANDS:
            self.start_command(name, ROLE_COMMANDS[role].format(port=self.replica_ports[name]))
        elif role == "worker":
            # One pool process per replica (two replicas: the single box's two), named apart.
            command = procfile()["worker"] + f" -n {name}@%h"
            self.start_command(name, command, {"WORKER_CONCURRENCY": "1"})
        else:
            self.start_command(name, procfile()[role])
        say(f"started {name}")

    def start_balancer(self) -> None:
        def backend(name: str, balance: str, names: tuple[str, ...]) -> str:
            servers = "\n".join(f"    server {n} 127.0.0.1:{self.replica_ports[n]} check" for n in names)
            return BACKEND.format(name=name, balance=balance, servers=servers)

        config = self.work / "haproxy.cfg"
        config.write_text(
            HAPROXY_CONFIG.format(
                port=self.port, stats_port=self.stats_port,
                backends=backend("web", "roundrobin", WEB_REPLICAS) + "\n" + backend("ws", "leastconn", WS_REPLICAS),
            )
        )  # fmt: skip
        checked = subprocess.run(["haproxy", "-c", "-q", "-f", str(config)], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"haproxy refused its configuration: {checked.stderr}")
        self.start_command("haproxy", f"exec haproxy -db -f {shlex.quote(str(config))}")
        say(f"HAProxy on {self.base_url} (stats on :{self.stats_port})")

    def balancer_stats(self) -> dict[str, dict]:
        """Per server (``web1``…): HAProxy's status, sessions sent, retries and redispatches."""
        with contextlib.closing(http.client.HTTPConnection("127.0.0.1", self.stats_port, timeout=3)) as conn:
            conn.request("GET", "/stats;csv")
            text = conn.getresponse().read().decode()
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        # Per server: 5xx answered by the replica; per backend ("web", "ws"): also HAProxy's own.
        return {
            row["svname"] if row["svname"] != "BACKEND" else row["pxname"]: {
                "status": row["status"], "sessions": int(row["stot"] or 0), "5xx": int(row["hrsp_5xx"] or 0),
                "retries": int(row["wretr"] or 0), "redispatches": int(row["wredis"] or 0),
            }
            for row in rows
            if row["svname"] != "FRONTEND" and row["pxname"] in {"web", "ws"}
        }  # fmt: skip

    def wait_balanced(self, names: tuple[str, ...], timeout: float = 90) -> None:
        """Wait until HAProxy reports every one of ``names`` up (its check saw /healthz answer)."""
        deadline = time.monotonic() + timeout
        stats: dict = {}
        while time.monotonic() < deadline:
            self.check_processes()
            with contextlib.suppress(OSError, http.client.HTTPException):
                stats = self.balancer_stats()
                if all(stats.get(n, {}).get("status") == "UP" for n in names):
                    return
            time.sleep(0.5)
        raise RuntimeError(f"replicas not up behind HAProxy after {timeout:.0f} s: {stats}")


# --- one request, as a browser would send it -----------------------------------------------------


def request(base: str, method: str, path: str, *, cookies: dict | None = None, csrf: str = "",
            form: dict | None = None, json_body: bool = False) -> tuple[int, dict, bytes]:  # fmt: skip
    """``(status, cookies set, body)``; ``csrf`` sends the token as cookie and header, like the pages."""
    url = urllib.parse.urlparse(base)
    headers = {"Accept": "application/json" if json_body else "text/html"}
    jar = dict(cookies or {})
    body = None
    if csrf:
        jar["csrftoken"] = csrf
        headers["X-CSRFToken"] = csrf
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif json_body and method == "POST":
        body = "{}"
        headers["Content-Type"] = "application/json"
    if jar:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
    with contextlib.closing(http.client.HTTPConnection(url.hostname, url.port, timeout=30)) as conn:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        set_cookies: dict = {}
        for header in response.msg.get_all("Set-Cookie") or []:
            set_cookies.update({k: m.value for k, m in SimpleCookie(header).items()})
        return response.status, set_cookies, data


def check_session(stack: ClusterStack, user, slug: str) -> dict:
    """Log in with the form on web1; claim with that session on web2."""
    web1, web2 = stack.replica_url("web1"), stack.replica_url("web2")
    status, cookies, page = request(web1, "GET", "/accounts/login/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    status, cookies, _ = request(
        web1, "POST", "/accounts/login/", cookies={"csrftoken": cookies["csrftoken"]},
        form={"username": user.nim, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )  # fmt: skip
    session = cookies.get("sessionid")
    anonymous, _, _ = request(web2, "POST", f"/api/events/{slug}/claim/", csrf=secrets.token_hex(16), json_body=True)
    claimed, _, body = request(
        web2, "POST", f"/api/events/{slug}/claim/", cookies={"sessionid": session or ""},
        csrf=secrets.token_hex(16), json_body=True,
    )  # fmt: skip
    queue_id = json.loads(body).get("queue_id") if body[:1] == b"{" else None
    from queueing.models import QueueEntry

    owner = (
        QueueEntry.objects.filter(public_id=queue_id).values_list("user_id", flat=True).first() if queue_id else None
    )
    return {
        "login_status_web1": status,
        "session_cookie": bool(session),
        "claim_status_web2": claimed,
        "claim_without_session_web2": anonymous,
        "entry_owner_is_the_student": owner == user.pk,
        "ok": status == 302 and bool(session) and claimed in (200, 202) and anonymous == 401 and owner == user.pk,
    }


def check_rate_limit(stack: ClusterStack, session: dict, slug: str, clicks: int = 6) -> dict:
    """One student's claims, alternately on web1 and web2: the limit counts them together."""
    answers = []
    for i in range(clicks):
        replica = WEB_REPLICAS[i % 2]
        status, _, _ = request(
            stack.replica_url(replica), "POST", f"/api/events/{slug}/claim/",
            cookies={"sessionid": session["session"]}, csrf=session["csrf"], json_body=True,
        )  # fmt: skip
        answers.append([replica, status])
    from django.conf import settings

    allowed = int(settings.RATELIMIT_CLAIM.split("/")[0])
    refused = [status == 429 for _, status in answers]
    return {
        "limit": settings.RATELIMIT_CLAIM,
        "answers": answers,
        "ok": refused == [False] * allowed + [True] * (clicks - allowed),
    }


async def _watch(url: str, origin: str, session: str, queue_id: str, seen: dict) -> None:
    from websockets.asyncio.client import connect

    record = seen[queue_id]
    try:
        async with connect(
            url, origin=origin, additional_headers={"Cookie": f"sessionid={session}"}, open_timeout=20,
            ping_interval=None, compression=None,
        ) as socket:  # fmt: skip
            while record["final"] is None:
                message = json.loads(await socket.recv())
                if message.get("queue_id") != queue_id:
                    continue
                if record["first"] is None:
                    record["first"] = message.get("status")
                    record["opened"] = time.time()
                if message.get("status") in DECIDED:
                    record["final"] = message["status"]
    except Exception as exc:  # a failed handshake or a dropped socket is a failed delivery
        record["error"] = type(exc).__name__


def check_websockets(stack: ClusterStack, sessions: list[dict], slug: str, timeout: float = 60) -> dict:
    """Sockets on ws1, ws2 and through the balancer, open before a worker runs; then worker2 decides."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from claims.services import claim_submit

    routes = {
        "ws1": (stack.replica_url("ws1"), stack.replica_ports["ws1"]),
        "ws2": (stack.replica_url("ws2"), stack.replica_ports["ws2"]),
        "balancer": (stack.base_url, stack.port),
    }
    seen: dict[str, dict] = {}
    targets = []
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in=[s["user_id"] for s in sessions])}
    for i, session in enumerate(sessions):
        entry, _created = claim_submit(user=users[session["user_id"]], event_slug=slug)
        route = list(routes)[i % len(routes)]
        queue_id = str(entry.public_id)
        seen[queue_id] = {"route": route, "first": None, "final": None, "opened": None, "error": None}
        origin, port = routes[route]
        targets.append((f"ws://127.0.0.1:{port}/ws/queue/{queue_id}/", origin, session["session"], queue_id))
    connection.close()

    async def run() -> float | None:
        tasks = [asyncio.create_task(_watch(*target, seen)) for target in targets]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(r["first"] is None and r["error"] is None for r in seen.values()):
            await asyncio.sleep(0.1)
        started = time.time()
        await asyncio.to_thread(stack.start_replica, "worker2")
        await asyncio.wait(tasks, timeout=timeout)
        for task in tasks:
            task.cancel()
        return started

    worker_started = asyncio.run(run())
    by_route = {route: {"sockets": 0, "pending_when_opened": 0, "decision_pushed": 0} for route in routes}
    for record in seen.values():
        counts = by_route[record["route"]]
        counts["sockets"] += 1
        counts["pending_when_opened"] += record["first"] == "pending"
        counts["decision_pushed"] += record["first"] == "pending" and record["final"] in DECIDED
    errors = [r["error"] for r in seen.values() if r["error"]]
    return {
        "worker_started": worker_started,
        "routes": by_route,
        "errors": errors,
        "ok": not errors and all(c["decision_pushed"] == c["sockets"] > 0 for c in by_route.values()),
    }


# --- the wars ------------------------------------------------------------------------------------


def war(
    stack: ClusterStack, numbers: dict, *, name: str, event, sessions: list[dict], seconds: float, kill: bool
) -> dict:
    """Students claim through the balancer; with ``kill``, web1 and worker1 die mid-batch."""
    rng = random.Random(7 if kill else 5)
    if kill:
        burst = round(len(sessions) * numbers["burst_share"])
        claim_times = [3 + rng.uniform(0, 1) for _ in range(burst)] + [
            rng.uniform(5, seconds - 4) for _ in range(len(sessions) - burst)
        ]
    else:  # the race: everyone within the same second
        claim_times = [3 + rng.uniform(0, 1) for _ in sessions]
    before = stack.balancer_stats()
    with load.Load(stack, event.slug, sessions, claim_times, seconds, name, sample=False) as client:
        start_at = client.start_at
        figures: dict = {"students": len(sessions), "seats": event.capacity, "start": start_at}
        if kill:
            deadline = time.monotonic() + 30
            processing = 0
            while time.monotonic() < deadline and not processing:
                processing = count_rows(stack.database_url, event.id, "processing")
                time.sleep(0.01)
            killed_at = time.time()
            at_kill = stack.balancer_stats()
            family = {"web1": len(stack.kill("web1")), "worker1": len(stack.kill("worker1"))}
            say(f"SIGKILLed web1 and worker1 ({family}) with {processing} entries processing")
            down_at, at_down = None, None
            while time.time() < killed_at + 20:
                stats = stack.balancer_stats()
                if stats["web1"]["status"].startswith("DOWN"):
                    down_at, at_down = time.time(), stats
                    break
                time.sleep(0.1)
            say(f"HAProxy marked web1 down after {(down_at or time.time()) - killed_at:.1f} s")
            figures.update(
                killed_at=killed_at, processing_at_kill=processing, processes_killed=family,
                down_at=down_at, stats_at_kill=at_kill, stats_at_down=at_down,
            )  # fmt: skip
        results = client.results(150)
    figures["drained_after_end_s"] = wait_queue_empty(stack.database_url, event.id, numbers["drain"])
    figures["stats_before"], figures["stats_after"] = before, stack.balancer_stats()
    claims = accepted_claims(stack.database_url, event.id, results)
    claims.pop("rows")
    figures["claims"] = claims
    figures["invariants"] = invariants(stack.database_url, event.id)
    end = start_at + seconds
    if kill:
        windows = {
            "before the kill": (start_at, figures["killed_at"]),
            "killed, until HAProxy marked web1 down": (figures["killed_at"], figures["down_at"] or end),
            "after": (figures["down_at"] or end, end + 1),
        }
    else:
        windows = {"the race": (start_at, end + 1)}
    figures["windows"] = load.summarise_requests(results["samples"], windows)
    figures["errors"] = sum(w["errors"] for w in figures["windows"])
    served = {n: figures["stats_after"][n]["sessions"] - before[n]["sessions"] for n in (*WEB_REPLICAS, *WS_REPLICAS)}
    figures["sessions_per_replica"] = served
    by_replicas = sum(figures["stats_after"][n]["5xx"] - before[n]["5xx"] for n in WEB_REPLICAS)
    figures["5xx_from_replicas"] = by_replicas
    figures["5xx_from_balancer"] = figures["stats_after"]["web"]["5xx"] - before["web"]["5xx"] - by_replicas
    ok = (
        figures["invariants"]["ok"]
        and claims["missing_in_table"] == 0
        and claims["undecided"] == 0
        and all(served[n] > 0 for n in WEB_REPLICAS)
    )
    if kill:
        after_down = figures["stats_after"]["web1"]["sessions"] - at_down["web1"]["sessions"] if at_down else None
        figures["sent_to_dead_after_down"] = after_down
        ok = ok and figures["down_at"] is not None and after_down == 0
    else:
        ok = ok and figures["invariants"]["tickets"] == min(event.capacity, len(sessions))
    figures["ok"] = ok
    return figures


def run(args) -> dict:
    n = load.numbers(args, QUICK, FULL, "race_students", "race_seats")
    extra = {"RATELIMIT_CLAIM": "3/m"}
    if n["lease"]:
        # Quick mode only: the reaper takes a dead worker's rows back after 5 s instead of 30 s.
        extra["QUEUE_LEASE_SECONDS"] = str(n["lease"])
    with load.drill(args, "cluster", extra, stack_class=ClusterStack) as (stack, _receiver):
        stamp = int(time.time())
        race_event = make_event(f"cluster-race-{stamp}", n["race_seats"])
        kill_event = make_event(f"cluster-kill-{stamp}", n["kill_seats"])
        side_event = make_event(f"cluster-side-{stamp}", n["sockets"] + 10)
        users = make_students(n["race_students"] + n["kill_students"] + n["sockets"] + 2, f"{stamp % 1000:03d}7")
        sessions = make_sessions(users[1:])
        race = sessions[: n["race_students"]]
        killed = sessions[len(race) : len(race) + n["kill_students"]]
        sockets = sessions[len(race) + len(killed) : len(race) + len(killed) + n["sockets"]]
        from django.db import connection

        connection.close()
        for name in (*WEB_REPLICAS, *WS_REPLICAS, "beat"):
            stack.start_replica(name)
        stack.start_balancer()
        stack.wait_balanced((*WEB_REPLICAS, *WS_REPLICAS))
        say("every replica is up behind HAProxy")
        figures: dict = {**load.header("loadtests.drills.cluster", n, time.time()), "role_commands": ROLE_COMMANDS}
        figures["session"] = check_session(stack, users[0], side_event.slug)
        say(f"session made on web1, used on web2: {figures['session']}")
        figures["rate_limit"] = check_rate_limit(stack, sessions[-1], side_event.slug)
        say(f"rate limit across replicas: {figures['rate_limit']['answers']}")
        figures["websockets"] = check_websockets(stack, sockets, side_event.slug)
        say(f"websockets: {figures['websockets']['routes']}")
        stack.start_replica("worker1")
        wait_queue_empty(stack.database_url, side_event.id, n["drain"])
        say(f"the race: {len(race)} students for {race_event.capacity} seats")
        figures["race"] = war(
            stack, n, name="race", event=race_event, sessions=race, seconds=n["race_seconds"], kill=False
        )
        say(f"the kill: {len(killed)} students for {kill_event.capacity} seats; web1 and worker1 die mid-war")
        figures["kill"] = war(
            stack, n, name="kill", event=kill_event, sessions=killed, seconds=n["kill_seconds"], kill=True
        )
    figures["ok"] = all(figures[part]["ok"] for part in ("session", "rate_limit", "websockets", "race", "kill"))
    return figures


def _sources(war_figures: dict) -> str:
    return (
        f"5xx answered by the replicas: {war_figures['5xx_from_replicas']}, "
        f"by HAProxy itself: {war_figures['5xx_from_balancer']}"
    )


def _verdict(ok: bool) -> str:
    return "held" if ok else "**BROKEN**"


def markdown(f: dict) -> str:
    n, s, r, w, race, kill = f["numbers"], f["session"], f["rate_limit"], f["websockets"], f["race"], f["kill"]
    origin = kill["start"]
    dead_after = kill.get("sent_to_dead_after_down")
    down = kill["down_at"] - kill["killed_at"] if kill.get("down_at") else None
    title = "### Two of everything behind HAProxy: sessions, rate limit, websockets, the race, a replica killed"
    lines = [
        *report.heading(title, f["command"]),
        f"Run {f['started_at']} on {f['machine']}. Two web replicas, two websocket replicas (each one "
        "uvicorn process: `ROLE_COMMANDS` in `loadtests/drills/cluster.py`), two Celery workers (one pool "
        "process each), one beat, all on ports of their own and sharing only PostgreSQL and Redis, behind "
        "HAProxy (`/ws/` to the websocket replicas, `/healthz` checked every second, a refused connection "
        "resent to the other replica). Load from `loadtests/drills/loadclient.py` through HAProxy. What this "
        "drill checks is correctness across replicas; its latencies follow the machine's load average above.",
        "",
        *report.table("check | what happened | verdict", []),
        f"| session made on one replica, valid on the other | login form on web1: {s['login_status_web1']}; "
        f"claim with that session on web2: {s['claim_status_web2']} (the entry is the student's: "
        f"{'yes' if s['entry_owner_is_the_student'] else 'NO'}); without it: {s['claim_without_session_web2']} "
        f"| {_verdict(s['ok'])} |",
        f"| claim rate limit ({r['limit']}) across replicas | one student, six claims alternately on web1 and "
        "web2: " + ", ".join(f"{replica} {status}" for replica, status in r["answers"]) + f" | {_verdict(r['ok'])} |",
        "| a decision pushed to sockets on every websocket replica | sockets opened before any worker ran "
        "(status `pending`), then worker2 started: "
        + "; ".join(
            f"{route}: {c['decision_pushed']} of {c['sockets']} heard their decision"
            for route, c in w["routes"].items()
        )
        + (f"; errors: {', '.join(w['errors'])}" if w["errors"] else "")
        + f" | {_verdict(w['ok'])} |",
        f"| the race: {race['students']} students for {race['seats']} seats, all within one second | "
        f"{race['invariants']['tickets']} tickets to {race['invariants']['holders']} students; accepted claims "
        f"{race['claims']['accepted']}, missing {race['claims']['missing_in_table']}, undecided "
        f"{race['claims']['undecided']}; requests per web replica: "
        + ", ".join(f"{k} {v}" for k, v in race["sessions_per_replica"].items() if k.startswith("web"))
        + f"; errors (5xx + no answer): {race['errors']} ({_sources(race)}) | {_verdict(race['ok'])} |",
        f"| web1 and worker1 SIGKILLed mid-war ({kill['students']} students, {kill['seats']} seats) | killed at "
        f"{clock(kill['killed_at'], origin)} with {kill['processing_at_kill']} entries `processing`; "
        f"HAProxy marked web1 down {'never' if down is None else f'{down:.1f} s later'}; requests sent to web1 "
        f"after that: {dead_after}; web2 took "
        f"{kill['sessions_per_replica']['web2']}; retries/redispatches to the other replica: "
        f"{kill['stats_after']['web1']['retries']}/{kill['stats_after']['web1']['redispatches']}; accepted claims "
        f"{kill['claims']['accepted']}, missing {kill['claims']['missing_in_table']}, undecided "
        f"{kill['claims']['undecided']}; errors seen by students: {kill['errors']} ({_sources(kill)}) "
        f"| {_verdict(kill['ok'])} |",
        "",
        "HAProxy's health check waits up to 10 s for `/healthz` (`timeout check`): a busy replica answers it "
        "only after the requests queued for its threads, while a dead one refuses the connection and is out "
        "after three quick checks. With the check's default timeout (1 s), a run of this drill on 2026-12-01 "
        "(load average 15 from other work on the machine) got 1,462 answers 503 in the race and 2,920 after "
        "the kill; which side answered them was not recorded then. Only refused connections are resent to "
        "the other replica: with `retry-on empty-response` as well, one claim whose answer was lost was sent "
        "again and answered 409 (the student already held the ticket the first one got), harmless for a "
        "claim but not for a door check-in.",
        "",
        "Answers during the kill war (times relative to its start; a student clicks again after a 5xx or no "
        "answer). A request counts in the window in which it was sent: the 502s of the first window are the "
        "requests web1 held when it died, answered by HAProxy; a 409 is a click again after such a 502 whose "
        "claim web1 had already queued (the student holds the ticket):",
        "",
        *load.requests_table(kill["windows"]),
        "",
        "The race (claim clicks by answer: "
        + load.click_statuses(race["claims"])
        + "; a 410 is a click after the sell-out, answered at once and never queued):",
        "",
        *load.invariants_table(race["invariants"]),
        "",
        f"The kill war (claim clicks by answer: {load.click_statuses(kill['claims'])}):",
        "",
        *load.invariants_table(kill["invariants"]),
        "",
        f"Queue empty {race['drained_after_end_s']:.0f} s (race) and {kill['drained_after_end_s']:.0f} s (kill) after "
        "the load stopped; the dead worker's rows came back after the lease (`QUEUE_LEASE_SECONDS`"
        + ("" if not n["lease"] else f" = {n['lease']} s here")
        + ").",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = report.parser(__doc__)
    parser.add_argument("--race-students", dest="race_students", type=int, default=None)
    parser.add_argument("--race-seats", dest="race_seats", type=int, default=None)
    return report.main(parser.parse_args(argv), run=run, markdown=markdown, section="drill:cluster")


if __name__ == "__main__":
    sys.exit(main())
