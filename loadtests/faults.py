"""The fault drill: a ticket war under a seeded schedule of faults, then the invariants.

    .venv/bin/python -m loadtests.faults                 # docs/benchmarks/faults.json
    .venv/bin/python -m loadtests.faults --seed 1234     # replay the schedule of seed 1234
    .venv/bin/python -m loadtests.faults --quick

In the manner of Jepsen. Own stack as a small cluster: two web replicas (the Procfile's ``web``,
one process each) behind HAProxy, the ws process, two workers (one pool process each), beat,
PostgreSQL, and Redis as a primary, a replica and three sentinels (every Redis role configured by
``REDIS_SENTINELS`` only). Students (Locust, kind ``war``) claim throughout, half of them in a burst
as each fault begins, and click again after a 5xx or no answer; meanwhile the schedule, drawn from
the seed and printed first, applies every kind of fault once (more in a full run), one after the
other: a worker frozen past the queue lease and thawed, a worker killed, a web replica killed,
PostgreSQL's backends reset, PostgreSQL stopped, the Redis primary frozen, killed (Sentinel fails
over) and Redis killed altogether; each is healed by the drill itself. Then nobody touches
anything, and the drill checks: seats exact, one ticket per student, every accepted claim decided,
nobody told "no ticket" while holding one, no 500, every web replica's health green again, every
alert webhook signed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from loadtests import harness
from tools import devservices
from tools.stack import Stack, free_port

FAULTS = ("freeze-worker", "kill-worker", "kill-web", "reset-db", "stop-db", "freeze-redis", "failover", "kill-redis")
WEBS, WORKERS = ("web1", "web2"), ("worker1", "worker2")
HAPROXY = """global
    maxconn 8000
defaults
    mode http
    timeout connect 2s
    timeout client 65s
    timeout server 65s
    timeout tunnel 1h
    # A busy replica answers /healthz only after the requests queued for its threads.
    timeout check 10s
    # Only a refused connection (a replica just died) is tried again, on the other replica: a
    # request that reached one is never sent twice; those it held when it died are answered 502.
    retries 3
    option redispatch 1
    retry-on conn-failure
frontend ticketwar
    bind 127.0.0.1:{port}
    default_backend web
backend web
    balance roundrobin
    # Up while /healthz answers, 200 or 503: a 503 names a shared part that is down for every replica.
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host 127.0.0.1
    http-check expect rstatus ^(200|503)$
    default-server inter 1s fastinter 250ms downinter 1s fall 3 rise 2
    server web1 127.0.0.1:{web1} check
    server web2 127.0.0.1:{web2} check
"""


def schedule(seed: int, quick: bool, lease: float) -> list[dict]:
    """The faults, in order: every kind once (shuffled), a full run six more; each with its target,
    how long it lasts and the pause after it. A frozen worker outlasts its lease and the reaper's
    next round (``queueing.schedule``), which gives its claims to the other worker."""
    from queueing.schedule import SCHEDULE

    rng = random.Random(seed)
    kinds = rng.sample(FAULTS, len(FAULTS)) + ([] if quick else [rng.choice(FAULTS) for _ in range(6)])
    past_lease = lease + SCHEDULE["queueing-reap-leases"]["schedule"]
    lasts = {"freeze-worker": (past_lease + 1, past_lease + 3), "reset-db": (0, 0), "freeze-redis": (1, 4)}
    return [
        {
            "fault": kind,
            "target": rng.choice(WORKERS if "worker" in kind else WEBS) if kind.endswith(("web", "worker")) else "",
            "seconds": round(rng.uniform(*lasts.get(kind, (2, 4) if quick else (3, 8))), 1),
            "pause": round(rng.uniform(1.5, 2.5) if quick else rng.uniform(4, 10), 1),
        }
        for kind in kinds
    ]


class Receiver(ThreadingHTTPServer):
    """The alert webhook's receiver on a loopback port: every alert, and whether its signature held."""

    def __init__(self, secret: str) -> None:
        self.secret, self.alerts = secret, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                from monitoring.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_webhook

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signed = verify_webhook(
                    body=body,
                    timestamp=self.headers.get(TIMESTAMP_HEADER, ""),
                    signature=self.headers.get(SIGNATURE_HEADER, ""),
                    secret=receiver.secret,
                )
                receiver.alerts.append({**json.loads(body or b"{}"), "at": time.time(), "signed": signed})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Cluster(Stack):
    """The drill's stack: Redis under Sentinel, two web replicas behind HAProxy, two workers."""

    sentinels: devservices.SentinelGroup | None = None
    redis: dict = {}

    def prepare(self) -> None:
        self.sentinels = devservices.SentinelGroup(
            self.work / "sentinel", primary_dir=self.services.redis_dir, primary_port=self.services.redis_port
        )
        self.sentinels.start()
        self.env.update(self.sentinels.env())
        self.redis = {
            self.services.redis_port: self.services.redis_dir,
            self.sentinels.replica_port: self.sentinels.replica_dir,
        }
        self.ports = {name: free_port() for name in WEBS}

    def start_all(self) -> None:
        for name in WEBS:
            self.start(name, PORT=str(self.ports[name]), WEB_CONCURRENCY="1")
        for name in WORKERS:
            self.start(name, args=f"-n {name}@%h", WORKER_CONCURRENCY="1")
        self.start("beat")
        config = self.work / "haproxy.cfg"
        config.write_text(HAPROXY.format(port=self.port, **self.ports))
        self.running["haproxy"] = subprocess.Popen(
            ["haproxy", "-db", "-f", str(config)],
            stdout=(self.work / "haproxy.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def __exit__(self, *exc) -> None:
        self.stop()  # the processes, then every Redis and sentinel (their pid files go with the directory)
        if self.sentinels is not None:
            for rdir in [*self.redis.values(), *(sdir for sdir, _ in self.sentinels.sentinels)]:
                devservices.redis_stop(rdir)
        super().__exit__(*exc)

    def primary(self) -> int:
        """The port of the Redis the sentinels name primary, once it answers as one."""
        import redis

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            address = self.sentinels.primary_address()
            if address:
                client = redis.Redis(host="127.0.0.1", port=address[1], socket_timeout=1)
                try:
                    if client.info("replication").get("role") == "master":
                        return address[1]
                except redis.RedisError:
                    pass
                finally:
                    client.close()
            time.sleep(0.2)
        raise RuntimeError("no Redis primary within 60 s")

    def start_redis(self, port: int, primary: int | None) -> None:
        replica = ("--replicaof", "127.0.0.1", str(primary)) if primary else ()
        devservices.redis_start(self.redis[port], port, persistent=False, extra=replica)

    def redis_signal(self, port: int, signum: int) -> int:
        pid = devservices.redis_running(self.redis[port])
        os.kill(pid, signum)
        return pid


def busy(timeout: float = 3) -> int:
    """Wait (up to ``timeout`` s) until a worker holds claims (``processing``); how many."""
    deadline = time.monotonic() + timeout
    while (held := harness.query("SELECT count(*) FROM ticket_queue WHERE status = 'processing'")[0]) == 0:
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return held


def apply(stack: Cluster, fault: dict, lease: float) -> str:
    """Apply ``fault`` and heal it; what happened, in a few words."""
    kind, target, seconds = fault["fault"], fault["target"], fault["seconds"]
    if kind in ("freeze-worker", "kill-worker"):
        count = busy()
        held = f"{count} claim{'' if count == 1 else 's'} processing"
        if kind == "freeze-worker":
            stack.freeze(target)
            time.sleep(seconds)
            stack.thaw(target)
            return f"{target} frozen {seconds} s (lease {lease:g} s) with {held}, then thawed"
        stack.kill(target)
        time.sleep(seconds)
        stack.start(target, args=f"-n {target}@%h", WORKER_CONCURRENCY="1")
        return f"{target} SIGKILLed with {held}, started again {seconds} s later"
    if kind == "kill-web":
        stack.kill(target)
        time.sleep(seconds)
        stack.start(target, PORT=str(stack.ports[target]), WEB_CONCURRENCY="1")
        return f"{target} SIGKILLed (a replica removed), started again {seconds} s later"
    if kind == "reset-db":
        ended = harness.query(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )[0]
        return f"{ended} PostgreSQL backends terminated"
    if kind == "stop-db":
        stack.stop_postgres()
        time.sleep(seconds)
        stack.start_postgres()
        return f"PostgreSQL stopped (fast) for {seconds} s"
    primary = stack.primary()
    other = next(port for port in stack.redis if port != primary)
    if kind == "freeze-redis":
        pid = stack.redis_signal(primary, signal.SIGSTOP)
        time.sleep(seconds)
        os.kill(pid, signal.SIGCONT)
        time.sleep(3)  # the sentinels may be failing over still
        now = stack.primary()
        return f"Redis primary frozen {seconds} s" + (", the replica promoted meanwhile" if now != primary else "")
    if kind == "failover":
        stack.redis_signal(primary, signal.SIGKILL)
        killed = time.monotonic()
        promoted = stack.primary()
        took = time.monotonic() - killed
        time.sleep(seconds)
        stack.start_redis(primary, promoted)
        return f"Redis primary SIGKILLed, the replica promoted after {took:.1f} s, the old one back {seconds} s later"
    for port in (primary, other):  # kill-redis
        stack.redis_signal(port, signal.SIGKILL)
    time.sleep(seconds)
    stack.start_redis(primary, None)
    stack.start_redis(other, primary)
    stack.primary()
    return f"Redis primary and replica SIGKILLed, both started again {seconds} s later"


def run(args) -> dict:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    students, seats, lease = (60, 45, 5.0) if args.quick else (args.students, args.seats, 10.0)
    faults = schedule(seed, args.quick, lease)
    harness.say(
        f"seed {seed}: " + "; ".join(f"{f['fault']} {f['target']} {f['seconds']} s".replace("  ", " ") for f in faults)
    )
    secret = "drill-webhook-secret"  # noqa: S105 - a loopback receiver of this run
    receiver = Receiver(secret)
    webhook = {
        "ALERT_WEBHOOK_URL": f"http://127.0.0.1:{receiver.server_address[1]}/alerts",
        "ALERT_WEBHOOK_SECRET": secret,
    }
    with Cluster("faults", keep=args.keep, QUEUE_LEASE_SECONDS=str(lease), **webhook) as stack:
        slug = f"faults-{seed}-{time.time_ns()}"
        event = harness.event(slug, seats)
        sessions = harness.sessions(students)
        stack.start_all()
        for name in WEBS:
            stack.wait_healthy(url=f"http://127.0.0.1:{stack.ports[name]}")
        # The war: faults from ``first`` on; half the students claim in bursts as each fault
        # begins, the others evenly; each asks what they hold once the drill has healed the last.
        warm = 5 if args.quick else 10
        first = time.time() + 5 + students / 100 + warm
        starts, at = [], first
        for fault in faults:
            starts.append(at)
            at += (
                fault["seconds"]
                + fault["pause"]
                + (5 if "redis" in fault["fault"] or fault["fault"] == "failover" else 0)
            )
        rng, final = random.Random(seed), stack.work / "healed"
        for index, session in enumerate(sessions):
            burst = starts[(index // 2) % len(starts)] - 0.3 + rng.uniform(0, 1)
            session["claim_at"] = burst if index % 2 else rng.uniform(first - warm, at)
        plan = {
            "kind": "war",
            "users": students,
            "spawn_rate": 100,
            "sessions": sessions,
            "event": slug,
            "poll": 5,
            "final_file": str(final),
            "limit": at - time.time() + 300,
        }
        results: list = []
        client = threading.Thread(target=lambda: results.append(harness.locust(stack, plan)), daemon=True)
        client.start()
        history = []
        for fault, start in zip(faults, starts, strict=True):
            time.sleep(max(0.0, start - time.time()))
            history.append({**fault, "begin": time.time(), "what": apply(stack, fault, lease), "end": time.time()})
            harness.say(f"t+{history[-1]['begin'] - first:.0f} s: {history[-1]['what']}")
            time.sleep(fault["pause"] if fault is not faults[-1] else 0)
        green = {}  # nobody touches anything from here on
        for name in WEBS:
            stack.wait_healthy(120, url=f"http://127.0.0.1:{stack.ports[name]}")
            green[name] = round(time.time() - history[-1]["end"], 1)
        harness.say(f"every replica green again: {green}")
        final.touch()  # what does each student hold?
        client.join()
        drained = harness.wait_decided(event.id, 180)
        deadline = time.monotonic() + 40
        while (
            not any(str(a.get("rule")).startswith("remaining_tickets") for a in receiver.alerts)
            and time.monotonic() < deadline
        ):
            time.sleep(1)
        receiver.shutdown()
        figures = check(event.id, results[0], history, first)
    figures.update(
        seed=seed,
        students=students,
        seats=seats,
        lease=lease,
        drained_s=round(drained, 1),
        green_s=green,
        alerts=[{k: a.get(k) for k in ("rule", "event", "signed")} for a in receiver.alerts],
    )
    fired = [a for a in figures["alerts"] if str(a["rule"]).startswith("remaining_tickets")]
    figures["checks"]["every alert webhook signed; the remaining-tickets alert fired"] = bool(fired) and all(
        a["signed"] for a in figures["alerts"]
    )
    figures["ok"] = all(figures["checks"].values())
    return figures


def check(event_id: int, out: dict, history: list, first: float) -> dict:
    """The invariants, against what every student was told."""
    truth = harness.truth(event_id)
    holders = {
        row[0]
        for row in harness.query(
            "SELECT user_id FROM tickets_ticket WHERE event_id = %s AND status = 'active'", [event_id], rows=True
        )
    }
    rows = dict(
        harness.query("SELECT public_id::text, status FROM ticket_queue WHERE event_id = %s", [event_id], rows=True)
    )
    students = out["students"]
    accepted = [s["queue_id"] for s in students if s["queue_id"]]
    undecided = [q for q in accepted if rows.get(q) not in ("completed", "failed")]
    told_none = [
        s
        for s in students
        if s["decision"] == "failed" or (not s["queue_id"] and any(c[1] == 410 for c in s["clicks"]))
    ]
    lied = [s["user_id"] for s in told_none if s["user_id"] in holders]
    wrong_at_end = [s["user_id"] for s in students if "holds" in s and s["holds"] != (s["user_id"] in holders)]
    samples = out["samples"]
    statuses = harness.statuses(samples)
    for fault, after in zip(history, [h["begin"] for h in history[1:]] + [float("inf")], strict=True):
        meanwhile = [s for s in samples if fault["begin"] <= s[0] < after]
        fault.update(
            at=round(fault["begin"] - first, 1),
            requests=len(meanwhile),
            p95_ms=harness.percentile([s[2] for s in meanwhile], 95),
            errors=harness.codes(harness.statuses([s for s in meanwhile if s[3] == 0 or s[3] >= 500])),
        )
    return {
        "history": history,
        "truth": truth,
        "statuses": statuses,
        "accepted": len(accepted),
        "asked_at_end": sum(1 for s in students if "holds" in s),
        "clicks": harness.statuses([[0, "", 0, c[1]] for s in students for c in s["clicks"]]),
        "checks": {
            "seats exact, one ticket per student": truth["ok"],
            "every accepted claim decided": not undecided and len(accepted) > 0,
            "nobody told no ticket while holding one": not lied,
            "what each student is told at the end is the database's truth": not wrong_at_end
            and all("holds" in s for s in students),
            "no 500": not statuses.get(500),
        },
        "violations": {
            "undecided": undecided[:20],
            "told_none_but_holds": lied[:20],
            "wrong_at_end": wrong_at_end[:20],
        },
    }


def markdown(record: dict) -> str:
    f = record["figures"]
    faults = [
        [
            f"+{h['at']:.0f} s",
            h["fault"],
            h["what"],
            h["requests"],
            "–" if h["p95_ms"] is None else f"{h['p95_ms']:,.0f}",
            h["errors"] or "none",
        ]
        for h in f["history"]
    ]
    checks = [[name, "held" if ok else "**BROKEN**"] for name, ok in f["checks"].items()]
    intro = (
        f"Seed {f['seed']} ({len(f['history'])} faults, queue lease {f['lease']:g} s): {f['students']} students for "
        f"{f['seats']} seats; {f['accepted']} claims accepted, every one decided; once the last fault was healed, "
        f"every web replica was green again on its own ({harness.codes(f['green_s'])} s after it). "
        f"Answers to every request: {harness.codes(f['statuses'])}; to the claims: {harness.codes(f['clicks'])} "
        f"(a claim is clicked again after a 5xx or no answer). Tickets: {harness.held(f['truth'])}; a claim was "
        f"leased at most {f['truth']['max_attempts']} times (a frozen or killed worker's claims go to the other)."
    )
    shared = "Locust, HAProxy, two web, two workers, beat, PostgreSQL, two Redis and three sentinels"
    return harness.report(
        record,
        "The fault drill",
        shared,
        intro,
        harness.table("at | fault | what happened | requests until the next: | p95 ms: | 5xx, no answer (0)", faults),
        harness.table("invariant | ", checks),
    )


def main(argv: list[str] | None = None) -> int:
    options = [
        ("--seed", {"type": int, "default": None, "help": "the schedule's seed (default: a new one, printed)"}),
        ("--students", {"type": int, "default": 500}),
        ("--seats", {"type": int, "default": 400}),
    ]
    return harness.main(__doc__, argv, run=run, name=lambda a: "faults", options=options)


if __name__ == "__main__":
    sys.exit(main())
