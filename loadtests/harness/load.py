"""A drill's run: its stack and alert receiver, the load client's students, health samples, windows."""

from __future__ import annotations

import contextlib
import json
import random
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request

from loadtests.harness.alerts import AlertReceiver, alerts_table
from loadtests.harness.fixtures import make_event, make_sessions, make_students
from loadtests.harness.invariants import accepted_claims, invariants, wait_queue_empty
from loadtests.harness.report import clock, command_line, machine_line, main, ms, parser, percentile, table
from loadtests.harness.stack import PYTHON, ROOT, Stack, running, say, scrape_metrics

_BREAKER = re.compile(r'^ticketwar_breaker_state\{[^}]*name="(?P<name>[^"]+)"[^}]*\}\s+(?P<value>\S+)', re.M)
BREAKER_STATES = {0: "closed", 1: "half-open", 2: "open"}


def numbers(args, quick: dict, full: dict, *keys: str) -> dict:
    """The drill's numbers: ``--quick``'s or the full run's, with the options given for ``keys``."""
    chosen = dict(quick if args.quick else full)
    chosen.update({key: getattr(args, key) for key in keys if getattr(args, key, None) is not None})
    return chosen


def header(module: str, chosen: dict, started: float) -> dict:
    return {
        "numbers": chosen, "command": command_line(module), "machine": machine_line(),
        "started_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
    }  # fmt: skip


@contextlib.contextmanager
def drill(args, prefix: str, extra_env: dict | None = None, *, alerts: bool = False, stack_class=Stack):
    """``(stack, receiver)``: a started private stack (with an alert receiver if ``alerts``)."""
    receiver = AlertReceiver() if alerts else None
    env = {**(receiver.env() if receiver else {}), **(extra_env or {})}
    try:
        with running(prefix, args.keep, stack_class, extra_env=env) as stack:
            stack.start()
            yield stack, receiver
    finally:
        if receiver is not None:
            receiver.stop()


class HealthSampler(threading.Thread):
    """Every ``interval`` s: /healthz (status, checks) and /metrics (``ticketwar_breaker_state``,
    the maximum over all processes)."""

    def __init__(self, base_url: str, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.base_url, self.interval = base_url, interval
        self.samples: list[dict] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            sample: dict = {"at": time.time()}
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=3) as response:  # noqa: S310
                    sample["healthz"], body = response.status, json.loads(response.read())
            except urllib.error.HTTPError as exc:
                sample["healthz"] = exc.code
                try:
                    body = json.loads(exc.read())
                except ValueError:
                    body = {}
            except OSError:
                sample["healthz"], body = 0, {}
            body = body if isinstance(body, dict) else {}
            sample["status"] = body.get("status")
            sample["checks"] = {name: check.get("status") for name, check in body.get("checks", {}).items()}
            try:
                text = scrape_metrics(self.base_url, timeout=3)
                sample["metrics_breakers"] = {
                    m["name"]: BREAKER_STATES.get(int(float(m["value"])), m["value"]) for m in _BREAKER.finditer(text)
                }
            except (OSError, ValueError):
                sample["metrics_breakers"] = None
            self.samples.append(sample)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=10)

    def transitions(self, key: str | None = "redis") -> list[tuple[float, str]]:
        """(time, state) at each change: of breaker ``key`` on /metrics, or (None) of /healthz."""
        out: list[tuple[float, str]] = []
        for sample in self.samples:
            if key is None:
                state = f"{sample['healthz']} {sample.get('status') or '-'}"
            else:
                state = (sample.get("metrics_breakers") or {}).get(key)
            if state is not None and (not out or out[-1][1] != state):
                out.append((sample["at"], state))
        return out


class Load:
    """The load client's students (``loadtests/drills/loadclient.py``, its own gevent process) on one
    event from two seconds from now for ``seconds``, each claiming at its ``claim_times`` entry
    (seconds after the start; None: never), and a ``HealthSampler``; ``stop()`` ends both."""

    def __init__(self, stack: Stack, slug: str, sessions: list[dict], claim_times: list, seconds: float,
                 name: str = "load", *, sample: bool = True) -> None:  # fmt: skip
        self.start_at, self.seconds = time.time() + 2, seconds
        self.end = self.start_at + seconds
        students = [{**session, "claim_at": at} for session, at in zip(sessions, claim_times, strict=True)]
        plan, self.out = stack.work / f"{name}-plan.json", stack.work / f"{name}-client.json"
        plan.write_text(json.dumps({"slug": slug, "start_at": self.start_at, "seconds": seconds, "students": students}))
        self.client = subprocess.Popen(
            [PYTHON, "-m", "loadtests.drills.loadclient", "--base-url", stack.base_url, "--plan", str(plan),
             "--out", str(self.out)],
            cwd=ROOT, stdout=(stack.work / f"{name}-client.log").open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.sampler = HealthSampler(stack.base_url)
        if sample:
            self.sampler.start()

    def __enter__(self) -> Load:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def sleep_until(self, offset: float) -> float:
        """Sleep until ``offset`` seconds after the start; the time then."""
        time.sleep(max(0, self.start_at + offset - time.time()))
        return time.time()

    def results(self, timeout: float = 180) -> dict:
        self.client.wait(timeout=self.seconds + timeout)
        return json.loads(self.out.read_text())

    def stop(self) -> None:
        if self.client.poll() is None:
            self.client.kill()
        self.sampler.stop()


def summarise_requests(samples: list[list], windows: dict[str, tuple[float, float]]) -> list[dict]:
    """Per time window: requests, error rate (5xx and connection errors), statuses, p50/p95."""
    rows = []
    for name, (begin, end) in windows.items():
        if end <= begin:
            continue
        chosen = [s for s in samples if begin <= s[0] < end]
        statuses: dict[int, int] = {}
        for sample in chosen:
            statuses[sample[3]] = statuses.get(sample[3], 0) + 1
        errors = sum(n for code, n in statuses.items() if code >= 500 or code == 0)
        claims = [s[2] for s in chosen if s[1] == "claim"]
        rows.append(
            {
                "window": name, "seconds": end - begin, "requests": len(chosen),
                "rps": len(chosen) / max(1e-6, end - begin), "errors": errors,
                "error_rate": errors / len(chosen) if chosen else 0.0, "statuses": dict(sorted(statuses.items())),
                "p50": percentile([s[2] for s in chosen], 50), "p95": percentile([s[2] for s in chosen], 95),
                "reads_p95": percentile([s[2] for s in chosen if s[1] != "claim"], 95),
                "claims_p95": percentile(claims, 95), "claims": len(claims),
            }
        )  # fmt: skip
    return rows


def requests_table(rows: list[dict]) -> list[str]:
    return table(
        "window | length | requests | req/s | errors (5xx + refused) | error rate | p50 ms | p95 ms "
        "| reads p95 ms | claims | claims p95 ms | statuses",
        [
            f"| {r['window']} | {r['seconds']:.0f} s | {r['requests']} | {r['rps']:.0f} | {r['errors']} "
            f"| {r['error_rate'] * 100:.2f} % | {ms(r['p50'])} | {ms(r['p95'])} | {ms(r['reads_p95'])} "
            f"| {r['claims']} | {ms(r['claims_p95'])} | "
            + ", ".join(f"{'conn. error' if c == 0 else c}: {n}" for c, n in r["statuses"].items())
            + " |"
            for r in rows
        ],
    )


def delays_by_arrival(rows: list[tuple], windows: dict[str, tuple[float, float]]) -> list[str]:
    """Claim-to-decision time of queued claims (``accepted_claims``' rows), grouped by when they arrived."""
    lines = []
    for name, (begin, end) in windows.items():
        chosen = [r for r in rows if begin <= r[0] < end]
        waits = [r[1] - r[0] for r in chosen if r[1] is not None]
        p50, p95 = percentile(waits, 50), percentile(waits, 95)
        lines.append(
            f"| {name} | {len(chosen)} | {len(waits)} | {'–' if p50 is None else f'{p50:.1f}'} "
            f"| {'–' if p95 is None else f'{p95:.1f}'} | {f'{max(waits):.1f}' if waits else '–'} |"
        )
    return table("claims queued | entries | decided | p50 s | p95 s | max s", lines)


def invariants_table(figures: dict) -> list[str]:
    q = ", ".join(f"{k}: {v}" for k, v in figures["queue"].items())
    return table(
        "capacity | distinct claimants | tickets | expected min(capacity, claimants) | one per student "
        "| remaining | entries still live | completed ↔ ticket | max attempts | queue outcomes | verdict",
        [
            f"| {figures['capacity']} | {figures['claimants']} | {figures['tickets']} | {figures['expected_tickets']} "
            f"| {'yes' if figures['holders'] == figures['tickets'] else 'NO'} | {figures['remaining']} "
            f"| {figures['live_entries']} | {figures['completed_linked']} | {figures['max_attempts']} | {q} "
            f"| {'nothing lost or doubled' if figures['ok'] else '**BROKEN**'} |"
        ],
    )


def click_statuses(claims: dict) -> str:
    return ", ".join(f"{'no answer' if int(k) == 0 else k}: {v}" for k, v in claims["click_statuses"].items())


def war(tag: str, stack, slug: str, n: dict, seconds: float, *, seed: int = 7, claim_times=None):
    """The event, its students with sessions and the stack's processes; then the ``Load`` on them."""
    say(f"{n['students']} students, event {slug} with {n['capacity']} seats")
    event = make_event(slug, n["capacity"])
    sessions = make_sessions(make_students(n["students"], f"{int(time.time()) % 1000:03d}{tag}"))
    from django.db import connection

    connection.close()  # this process's Django connection must not outlive a restart
    stack.start_processes()
    stack.wait_healthy()
    # By default claims arrive evenly over the run (from a few seconds in to a few seconds before
    # the end), so some are made before, many during and some after the failure.
    rng = random.Random(seed)
    times = claim_times(rng, len(sessions)) if claim_times else [rng.uniform(2, seconds - 4) for _ in sessions]
    return event, Load(stack, slug, sessions, times, seconds)


def finish(
    args, stack, receiver, event, client, n: dict, module: str, waits: list, windows: dict, arrivals: dict
) -> dict:
    """After the load: the drain, the alerts, and the figures every load drill reports."""
    results = client.results()
    say("client finished; waiting for the queue to drain")
    drained_after = wait_queue_empty(stack.database_url, event.id, n["drain"])
    # Beat evaluates the alert rules every 30 s: give each alert of ``waits`` (prefix, seconds) its round.
    for prefix, timeout in waits:
        receiver.wait_for(prefix, "firing", timeout)
    client.stop()
    claims = accepted_claims(stack.database_url, event.id, results)
    rows = claims.pop("rows")
    return {
        **header(module, n, client.start_at),
        "drained_after_end_s": drained_after,
        "windows": summarise_requests(results["samples"], windows),
        "claims": claims,
        "rows": rows,
        "invariants": invariants(stack.database_url, event.id),
        "breaker": client.sampler.transitions("redis"),
        "healthz": client.sampler.transitions(None),
        "alerts": receiver.received,
        "event_cancelled_at": receiver.settle(event.id, args.wait_resolved),
        "delay_lines": delays_by_arrival(rows, arrivals),
    }


def transitions(f: dict, origin: float, breaker: str) -> str:
    """The breaker (/metrics) and /healthz over time, as a sentence."""
    return (
        breaker
        + (", ".join(f"{state} at {clock(at, origin)}" for at, state in f["breaker"]) or "no sample")
        + ". `/healthz`: "
        + ", ".join(f"{state} at {clock(at, origin)}" for at, state in f["healthz"])
        + "."
    )


def alerts_and_verdict(f: dict, origin: float) -> list[str]:
    """The end of a drill report: invariants, the alerts the webhook received, the verdict."""
    cancelled = f.get("event_cancelled_at")
    return [
        *invariants_table(f["invariants"]),
        "",
        "Alerts received by the webhook receiver (HMAC checked)"
        + (
            f"; the drill's event was cancelled at {clock(cancelled, origin)} and the drill waited for the alerts "
            "to resolve:"
            if cancelled
            else ":"
        ),
        "",
        *alerts_table(f["alerts"], origin),
        "",
        f"Verdict: {'passed' if f['ok'] else '**FAILED**'}.",
    ]


def drill_parser(doc: str, *keys: str):
    """The drill options: ``--quick`` and the others, ``keys`` of the numbers, and ``--wait-resolved``."""
    parser_ = parser(doc)
    for key in keys:
        parser_.add_argument(f"--{key.replace('_', '-')}", dest=key, type=int, default=None)
    parser_.add_argument(
        "--wait-resolved", type=int, default=0,
        help="afterwards cancel the event and wait up to this many seconds for the fired alerts to resolve",
    )  # fmt: skip
    return parser_


def drill_main(doc: str, argv, *, run, markdown, section: str, keys: tuple[str, ...]) -> int:
    """A load drill's command line (``drill_parser``) and run (``report.main``)."""
    return main(drill_parser(doc, *keys).parse_args(argv), run=run, markdown=markdown, section=section)
