"""Sentinel drill: the Redis primary SIGKILLed during a student war; Sentinel promotes the replica.

    .venv/bin/python -m loadtests.drills.sentinel_drill            # 500 students
    .venv/bin/python -m loadtests.drills.sentinel_drill --quick    # tiny, for the test suite

What it measures: docs/BENCHMARKS.md, "Redis primary killed, Sentinel promotes the replica".
"""

from __future__ import annotations

import json
import random
import secrets
import sys
import time
from datetime import timedelta

from loadtests.harness import load, report
from loadtests.harness.fixtures import Student, make_event, make_sessions, make_students, read_until
from loadtests.harness.invariants import accepted_claims, invariants, wait_queue_empty
from loadtests.harness.report import clock
from loadtests.harness.stack import Stack, say
from tools import devservices

FULL = {"students": 500, "capacity": 400, "warmup": 20, "after": 60, "probes": 10, "drain": 180}
QUICK = {"students": 40, "capacity": 30, "warmup": 6, "after": 16, "probes": 3, "drain": 90}
# The "redis" breaker's default REDIS_BREAKER_RESET_SECONDS: it closes on its first probe after.
BREAKER_RESET_SECONDS = 5


class SentinelStack(Stack):
    """The stack with its Redis as the primary of a Sentinel group (one replica, three sentinels),
    every Redis role configured by ``REDIS_SENTINELS`` only."""

    group: devservices.SentinelGroup | None = None

    def start_services(self) -> None:
        super().start_services()
        self.group = devservices.SentinelGroup(
            self.work / "sentinel", primary_dir=self.services.redis_dir, primary_port=self.services.redis_port
        )
        self.group.start()
        self.env.update(self.group.env())

    def kill_redis(self) -> float:
        killed = self.group.kill_primary()
        self.started_services["redis"] = False  # gone; stop() must not wait for it
        return killed

    def stop(self) -> None:
        super().stop()
        if self.group is not None:
            self.group.stop()


def run_probes(probes: list[tuple[Student, str]], event, promoted: float, limit_slug: str) -> dict:
    """After the switch: websockets on the probes' pre-queue entries, the event opened, pushes
    awaited, then claims of the event ``limit_slug`` (not open yet: each answer a 425 that counts)
    until the rate limit answers. Not of ``event``: its ticket holders are told about their ticket
    (409) whatever the rate limit says."""
    from django.utils import timezone

    from events.cache import invalidate_event
    from events.models import Event

    sockets = []
    for student, queue_id in probes:
        deadline, attempts = time.monotonic() + 20, 0
        while True:  # retried for a while: a web process may still be reconnecting
            attempts += 1
            try:
                ws = student.websocket(queue_id, timeout=10)
                sockets.append((ws, json.loads(ws.recv()), attempts))
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    now = timezone.now()
    due = now.replace(microsecond=0) + timedelta(seconds=2)
    Event.objects.filter(pk=event.id).update(claim_opens_at=now, draw_beacon_due_at=due)
    invalidate_event(event.id)
    opened = time.time()
    enter_public_value(event.id, due)
    pushes = []
    for ws, first, attempts in sockets:
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
    healthy, limited = time.time(), []
    for student, _ in probes:
        statuses = []
        for _ in range(8):  # RATELIMIT_CLAIM is 3 a minute; each probe has claimed once already
            statuses.append(student.claim(limit_slug, timeout=30)[0])
            if statuses[-1] == 429:
                break
        limited.append(statuses)
    return {"opened": opened, "pushes": pushes, "healthy": healthy, "rate_limited": limited}


def enter_public_value(event_id: int, due) -> None:
    """The organiser's step of a shuffled opening: once the worker has frozen the pre-queue and
    the value is due, enter it (a fresh random one stands for the published value)."""
    from django.utils import timezone

    from events.models import Event
    from queueing.draw import draw_enter_beacon

    deadline = time.monotonic() + 30
    while not Event.objects.filter(pk=event_id, draw_frozen_at__isnull=False).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the probe event's pre-queue was not frozen within 30 s")
        time.sleep(0.2)
    time.sleep(max(0.0, (due - timezone.now()).total_seconds()))
    draw_enter_beacon(event_id=event_id, value=secrets.token_hex(16), user_id=None)


def run(args) -> dict:
    from django.utils import timezone

    n = load.numbers(args, QUICK, FULL, "students", "capacity")
    with load.drill(args, "sentinel-drill", alerts=True, stack_class=SentinelStack) as (stack, _receiver):
        stamp = int(time.time())
        slug = f"drill-sentinel-{stamp}"
        say(f"{n['students']} students, event {slug} with {n['capacity']} seats")
        event = make_event(slug, n["capacity"])
        # A shuffled event not open yet: the probes' claims made now wait in its pre-queue.
        opens = timezone.now() + timedelta(hours=1)
        probe_event = make_event(
            f"{slug}-probe",
            n["probes"],
            opening_mode="shuffle_at_open",
            claim_opens_at=opens,
            draw_beacon_source="drill: a random value entered by the drill itself",
            draw_beacon_due_at=opens + timedelta(minutes=1),
        )
        limit_event = make_event(f"{slug}-limit", 1, claim_opens_at=opens)  # first come, not open yet
        sessions = make_sessions(make_students(n["students"] + n["probes"], f"{stamp % 1000:03d}5"))
        war, probe_sessions = sessions[: n["students"]], sessions[n["students"] :]
        stack.start_processes()
        stack.wait_healthy()
        probes = []
        for session in probe_sessions:
            student = Student(stack.base_url, session["session"], session["csrf"], ws_origin=stack.ws_origin)
            status, body = student.claim(probe_event.slug)
            if status != 202 or body.get("position") is not None:  # in the pre-queue: no place yet
                raise RuntimeError(f"probe pre-claim answered {status}: {body}")
            probes.append((student, body["queue_id"]))
        seconds = n["warmup"] + n["after"]
        rng = random.Random(26379)
        with load.Load(stack, slug, war, [rng.uniform(2, seconds - 4) for _ in war], seconds) as client:
            client.sleep_until(n["warmup"])
            killed = stack.kill_redis()
            say("Redis primary SIGKILLed")
            promoted = stack.group.wait_promoted(timeout=60)
            say(f"replica promoted after {promoted - killed:.1f} s")
            probe_results = run_probes(probes, probe_event, promoted, limit_event.slug)
            results = client.results()
            say("client finished; waiting for the queue to drain")
            drained_after = wait_queue_empty(stack.database_url, event.id, n["drain"])
            client.stop()
            start, end = client.start_at, client.end
            figures = {
                **load.header("loadtests.drills.sentinel_drill", n, start),
                "times": {"start": start, "killed": killed, "promoted": promoted, "end": end},
                "without_primary_s": promoted - killed,
                "drained_after_end_s": drained_after,
                "windows": load.summarise_requests(
                    results["samples"],
                    {
                        "before (primary up)": (start, killed),
                        "no primary (kill to promotion)": (killed, promoted),
                        "first 10 s on the new primary": (promoted, promoted + 10),
                        "rest": (promoted + 10, end),
                    },
                ),
                "claims": accepted_claims(stack.database_url, event.id, results),
                "invariants": invariants(stack.database_url, event.id),
                "probe_invariants": invariants(stack.database_url, probe_event.id),
                "probes": probe_results,
                "breaker": client.sampler.transitions("redis"),
                "healthz": client.sampler.transitions(None),
            }
    rows = figures["claims"].pop("rows")
    figures["delay_lines"] = load.delays_by_arrival(
        rows, {"before the kill": (start, killed), "without a primary": (killed, promoted), "after": (promoted, end)}
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


def markdown(f: dict) -> str:
    n, t = f["numbers"], f["times"]
    origin = t["killed"]
    pushes, limited = f["probes"]["pushes"], f["probes"]["rate_limited"]
    lines = [
        *report.heading("### Redis primary killed, Sentinel promotes the replica", f["command"]),
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
        *load.requests_table(f["windows"]),
        "",
        "Claim-to-decision time (`processed_at - created_at`), by when the claim was queued:",
        "",
        *f["delay_lines"],
        "",
        f"After the switch: {len(pushes)} probe students opened websockets on their pre-queue entries "
        "of a second (shuffled) event, which was then opened; "
        f"{sum(1 for p in pushes if p['pushed'] == 'completed')} of them received their ticket as a push "
        f"(websocket attempts needed: {', '.join(str(p['tries']) for p in pushes)}). Once the breakers had "
        f"had time to close ({clock(f['probes']['healthy'], origin)}) their next claims were answered "
        f"{'; '.join(', '.join(map(str, s)) for s in limited)} (the rate limit is 3 a minute; 0: no answer "
        "within 30 s).",
        "",
        load.transitions(f, origin, "Circuit breaker `redis` (`/metrics`, highest over all processes): "),
        "",
        f"Accepted claims (200/202 seen by the client): {f['claims']['accepted']} "
        f"({f['claims_accepted_after_switch']} queued after the promotion); missing in the table: "
        f"{f['claims']['missing_in_table']}; still undecided after the drain: {f['claims']['undecided']}. "
        f"Claim clicks by answer: {load.click_statuses(f['claims'])}. "
        f"Queue empty {f['drained_after_end_s']:.0f} s after the load stopped.",
        "",
        *load.invariants_table(f["invariants"]),
        "",
        f"Verdict: {'nothing lost or doubled, every role followed the promoted replica' if f['ok'] else '**FAILED**'}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    keys = ("students", "capacity")
    return load.drill_main(__doc__, argv, run=run, markdown=markdown, section="drill:sentinel", keys=keys)


if __name__ == "__main__":
    sys.exit(main())
