"""Sentinel drill: the Redis primary SIGKILLed during a student war; Sentinel promotes the replica.

    .venv/bin/python loadtests/drills/sentinel_drill.py            # 500 students
    .venv/bin/python loadtests/drills/sentinel_drill.py --quick    # tiny, for the test suite

Starts a private stack (PostgreSQL, web with 2 uvicorn workers, Celery worker, beat) whose
Redis is a primary, one replica and three sentinels (the embedded ``redis-server`` in each
role, all on 127.0.0.1); every Redis role (cache and rate limits, broker, channel layer) is
configured with ``REDIS_SENTINELS`` only. The students of ``loadclient.py`` poll the event,
claim once (claims spread over the run) and poll their entry. After the warm-up the primary is
SIGKILLed. Once the sentinels have promoted the replica, probe students open websockets on
their pre-queue entries of a second, shuffled event, which is then opened: the worker's
decisions must reach them as pushes through the channel layer on the new primary, and their
next claims must meet the rate limit. Reports the time without a primary, errors and p95
around the switch, and the database invariants.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from loadtests.drills import checks, common, tables
from loadtests.drills.common import say
from loadtests.drills.student import Student, read_until
from ticketwar import devservices

FULL = {"students": 500, "capacity": 400, "warmup": 20, "after": 60, "probes": 10, "drain": 180}
# The "redis" breaker's default REDIS_BREAKER_RESET_SECONDS: it closes on its first probe after.
BREAKER_RESET_SECONDS = 5
QUICK = {"students": 40, "capacity": 30, "warmup": 6, "after": 16, "probes": 3, "drain": 90}


class SentinelStack(common.DrillStack):
    """The drill stack with its Redis as the primary of a Sentinel group (replica, 3 sentinels)."""

    group: devservices.SentinelGroup | None = None

    def start_services(self) -> None:
        super().start_services()
        self.group = devservices.SentinelGroup(
            self.work / "sentinel", primary_dir=self.services.redis_dir, primary_port=self.services.redis_port
        )
        self.group.start()
        self.env.update(self.group.env())
        # Django in this process (sessions, the probe event) follows the primary as well.
        os.environ.update({k: v for k, v in self.group.env().items() if k.startswith("REDIS_SENTINEL")})

    def kill_primary(self) -> float:
        killed = self.group.kill_primary()
        self.started_services["redis"] = False  # gone; stop() must not wait for it
        return killed

    def stop(self) -> None:
        super().stop()
        if self.group is not None:
            self.group.stop()


def _probe_event(slug: str, seats: int):
    """A shuffled event not open yet: claims made now wait in its pre-queue."""
    from datetime import timedelta

    from django.utils import timezone

    from events.models import Event

    event = common.make_event(slug, seats)
    Event.objects.filter(pk=event.pk).update(
        opening_mode=Event.OpeningMode.SHUFFLE_AT_OPEN, claim_opens_at=timezone.now() + timedelta(hours=1)
    )
    return event


def _open_now(event_id: int) -> float:
    from django.utils import timezone

    from events.cache import invalidate_event
    from events.models import Event

    Event.objects.filter(pk=event_id).update(claim_opens_at=timezone.now())
    invalidate_event(event_id)
    return time.time()


def _websocket(student: Student, queue_id: str, timeout: float) -> tuple[object, dict, int]:
    """A websocket on the entry, retried for a while (a web process may still be reconnecting)."""
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        attempts += 1
        try:
            ws = student.websocket(queue_id, timeout=10)
            return ws, json.loads(ws.recv()), attempts
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def run_probes(probes: list[tuple[Student, str]], event, promoted: float) -> dict:
    """After the switch: websockets on the probes' entries, the event opened, pushes awaited,
    then claims until the rate limit answers."""
    sockets = []
    for student, queue_id in probes:
        ws, first, attempts = _websocket(student, queue_id, 20)
        sockets.append((student, ws, first, attempts))
    opened = _open_now(event.id)
    pushes = []
    for _student, ws, first, attempts in sockets:
        try:
            message = read_until(ws, lambda m: m.get("status") in ("completed", "failed"), timeout=30)
            pushes.append({"first": first["status"], "pushed": message["status"], "at": time.time(), "tries": attempts})
        except AssertionError as exc:
            pushes.append({"first": first["status"], "pushed": None, "error": str(exc)[:300], "tries": attempts})
        finally:
            ws.close()
    # While a web process' "redis" breaker is still open (up to REDIS_BREAKER_RESET_SECONDS after
    # the switch) its limits are counted per process, by design; the probe is of the Redis count.
    time.sleep(max(0.0, promoted + BREAKER_RESET_SECONDS + 3 - time.time()))
    healthy = time.time()
    limited = []
    for student, _ in probes:
        statuses = []
        for _ in range(8):  # RATELIMIT_CLAIM is 3 a minute; each probe has claimed once already
            status, _body = student.claim(event.slug, timeout=30)
            statuses.append(status)
            if status == 429:
                break
        limited.append(statuses)
    return {"opened": opened, "pushes": pushes, "healthy": healthy, "rate_limited": limited}


def run(args: argparse.Namespace) -> dict:
    numbers = dict(QUICK if args.quick else FULL)
    for key in ("students", "capacity"):
        if getattr(args, key) is not None:
            numbers[key] = getattr(args, key)
    work = common.fresh_work_dir("sentinel-drill")
    receiver = common.AlertReceiver().start()
    stack = SentinelStack(work, receiver.env())
    client = None
    try:
        stack.start()
        stamp = int(time.time())
        slug = f"drill-sentinel-{stamp}"
        say(f"{numbers['students']} students, event {slug} with {numbers['capacity']} seats")
        event = common.make_event(slug, numbers["capacity"])
        probe_event = _probe_event(f"{slug}-probe", numbers["probes"])
        users = common.make_students(numbers["students"] + numbers["probes"], f"{stamp % 1000:03d}5")
        sessions = common.make_sessions(users)
        war, probe_sessions = sessions[: numbers["students"]], sessions[numbers["students"] :]
        stack.start_processes()
        stack.wait_healthy()
        probes = []
        for session in probe_sessions:
            student = Student(stack.base_url, session["session"], session["csrf"], ws_origin=stack.ws_origin)
            status, body = student.claim(probe_event.slug)
            if status != 202 or body.get("position") is not None:  # in the pre-queue: no place yet
                raise RuntimeError(f"probe pre-claim answered {status}: {body}")
            probes.append((student, body["queue_id"]))
        seconds = numbers["warmup"] + numbers["after"]
        start_at = time.time() + 2
        rng = random.Random(26379)
        claim_times = [rng.uniform(2, seconds - 4) for _ in war]
        plan_path, out_path = work / "plan.json", work / "client.json"
        plan_path.write_text(json.dumps(common.build_plan(slug, war, claim_times, start_at, seconds)))
        client = common.run_loadclient(stack.base_url, plan_path, out_path, work / "client.log")
        sampler = common.HealthSampler(stack.base_url)
        sampler.start()

        time.sleep(max(0, start_at + numbers["warmup"] - time.time()))
        killed = stack.kill_primary()
        say("Redis primary SIGKILLed")
        promoted = stack.group.wait_promoted(timeout=60)
        say(f"replica promoted after {promoted - killed:.1f} s")
        probe_results = run_probes(probes, probe_event, promoted)
        end = start_at + seconds
        client.wait(timeout=seconds + 180)
        say("client finished; waiting for the queue to drain")
        drained_after = checks.wait_queue_empty(stack.database_url, event.id, numbers["drain"])
        sampler.stop()
        results = json.loads(out_path.read_text())
        figures = {
            "numbers": numbers,
            "command": " ".join(
                shlex.quote(a) for a in [".venv/bin/python", "loadtests/drills/sentinel_drill.py", *sys.argv[1:]]
            ),
            "machine": tables.machine_line(),
            "started_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(start_at)),
            "times": {"start": start_at, "killed": killed, "promoted": promoted, "end": end},
            "without_primary_s": promoted - killed,
            "drained_after_end_s": drained_after,
            "windows": tables.summarise_requests(
                results["samples"],
                {
                    "before (primary up)": (start_at, killed),
                    "no primary (kill to promotion)": (killed, promoted),
                    "first 10 s on the new primary": (promoted, promoted + 10),
                    "rest": (promoted + 10, end),
                },
            ),
            "claims": checks.accepted_claims(stack.database_url, event.id, results),
            "invariants": checks.invariants(stack.database_url, event.id),
            "probe_invariants": checks.invariants(stack.database_url, probe_event.id),
            "probes": probe_results,
            "breaker": [(at, state) for at, state in sampler.transitions("redis")],
            "healthz": sampler.healthz_transitions(),
        }
        rows = figures["claims"].pop("rows")
        figures["delay_lines"] = checks.delays_by_arrival(
            rows,
            {"before the kill": (start_at, killed), "without a primary": (killed, promoted), "after": (promoted, end)},
        )
        after = [w for w in figures["windows"] if w["window"] == "rest"]
        figures["claims_accepted_after_switch"] = sum(1 for r in rows if r[0] >= promoted)
        figures["ok"] = bool(
            figures["invariants"]["ok"]
            and figures["probe_invariants"]["ok"]
            and figures["claims"]["missing_in_table"] == 0
            and figures["claims"]["undecided"] == 0
            and figures["claims_accepted_after_switch"] > 0
            and after
            and after[0]["errors"] == 0
            and all(p["pushed"] == "completed" for p in probe_results["pushes"])
            and all(statuses[-1] == 429 for statuses in probe_results["rate_limited"])
        )
        return figures
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        receiver.stop()
        say("stopping the stack")
        stack.stop()
        common.cleanup(work, args.keep or sys.exc_info()[0] is not None)


def markdown(f: dict) -> str:
    n, t = f["numbers"], f["times"]
    origin = t["killed"]
    pushes = f["probes"]["pushes"]
    limited = f["probes"]["rate_limited"]
    lines = [
        "### Redis primary killed, Sentinel promotes the replica",
        "",
        "```",
        f["command"],
        "```",
        "",
        f"Run {f['started_at']} on {f['machine']}. Redis: a primary, one replica and three sentinels "
        "(`down-after-milliseconds` 1000, quorum 2), every role (cache and rate limits, Celery broker, "
        f"channel layer) configured by `REDIS_SENTINELS` only. Load: {n['students']} logged-in students "
        "from `loadtests/drills/loadclient.py` (event poll every 5 s, one claim each spread over the run, "
        f"then the entry every 1-2 s); event of {n['capacity']} seats. The primary was SIGKILLed after "
        f"{n['warmup']} s. Times below are relative to the kill.",
        "",
        f"**Without a primary: {f['without_primary_s']:.1f} s** (SIGKILL to the sentinels naming the "
        "promoted replica, which answers as primary).",
        "",
        *tables.requests_table(f["windows"]),
        "",
        "Claim-to-decision time (`processed_at - created_at`), by when the claim was queued:",
        "",
        *f["delay_lines"],
        "",
        f"After the switch: {len(pushes)} probe students opened websockets on their pre-queue entries "
        "of a second (shuffled) event, which was then opened; "
        f"{sum(1 for p in pushes if p['pushed'] == 'completed')} of them received their ticket as a push "
        f"(websocket attempts needed: {', '.join(str(p['tries']) for p in pushes)}). Once the breakers had "
        f"had time to close ({tables.clock(f['probes']['healthy'], origin)}) their next claims were answered "
        f"{'; '.join(', '.join(map(str, s)) for s in limited)} (the rate limit is 3 a minute; 0: no answer "
        "within 30 s).",
        "",
        "Circuit breaker `redis` (`/metrics`, highest over all processes): "
        + (", ".join(f"{state} at {tables.clock(at, origin)}" for at, state in f["breaker"]) or "no sample")
        + ". `/healthz`: "
        + ", ".join(f"{state} at {tables.clock(at, origin)}" for at, state in f["healthz"])
        + ".",
        "",
        f"Accepted claims (200/202 seen by the client): {f['claims']['accepted']} "
        f"({f['claims_accepted_after_switch']} queued after the promotion); missing in the table: "
        f"{f['claims']['missing_in_table']}; still undecided after the drain: {f['claims']['undecided']}. "
        "Claim clicks by answer: "
        + ", ".join(f"{'no answer' if k == 0 else k}: {v}" for k, v in f["claims"]["click_statuses"].items())
        + f". Queue empty {f['drained_after_end_s']:.0f} s after the load stopped.",
        "",
        *checks.invariants_table(f["invariants"]),
        "",
        f"Verdict: {'nothing lost or doubled, every role followed the promoted replica' if f['ok'] else '**FAILED**'}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = common.drill_parser(__doc__)
    parser.add_argument("--students", type=int, default=None)
    parser.add_argument("--capacity", type=int, default=None)
    args = parser.parse_args(argv)
    return common.drill_main(args, run=run, markdown=markdown, section="sentinel")


if __name__ == "__main__":
    sys.exit(main())
