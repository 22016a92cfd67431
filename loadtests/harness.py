"""What the benchmarks share: the command line and its recorded figures, students, Locust, the truth.

A benchmark is a module ``loadtests/<name>.py`` with ``run(args) -> figures`` (on its own
``tools.stack.Stack``), ``markdown(record) -> str`` (its tables) and ``main`` calling
``harness.main``. A full run records ``docs/benchmarks/<name>.json`` (the figures, the command,
the machine and how busy it was); ``python -m loadtests.tables`` prints the tables of the
records. ``--quick`` runs it small and records nothing unless ``--out`` says where.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from tools.stack import ROOT, Stack

RECORDS = ROOT / "docs" / "benchmarks"


def say(message: str) -> None:
    print(f"[loadtests {time.strftime('%H:%M:%S', time.gmtime())}] {message}", file=sys.stderr, flush=True)


def main(doc: str, argv, *, run, name, options=()) -> int:
    """Parse the options (``options``: ``(flag, keywords)`` pairs), run, record and print.

    ``name(args)`` names the record. SIGTERM unwinds like Ctrl-C, so the stack stops what it started.
    """
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small numbers (the test suite); records nothing")
    parser.add_argument("--out", default="", help="write the record here (default: docs/benchmarks/<name>.json)")
    parser.add_argument("--keep", action="store_true", help="keep the stack's logs")
    for flag, keywords in options:
        parser.add_argument(flag, **keywords)
    args = parser.parse_args(argv)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    before = os.getloadavg()
    try:
        figures = run(args)
    except KeyboardInterrupt:
        say("interrupted; everything started was stopped")
        return 130
    record = {
        "name": name(args),
        "module": sys.modules[run.__module__].__spec__.name,
        "command": shlex.join(
            [".venv/bin/python", "-m", sys.modules[run.__module__].__spec__.name, *(argv or sys.argv[1:])]
        ),
        "ended": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "load_average": {"before": [round(x, 2) for x in before], "after": [round(x, 2) for x in os.getloadavg()]},
        "quick": args.quick,
        "figures": figures,
    }
    out = Path(args.out) if args.out else None if args.quick else RECORDS / f"{record['name']}.json"
    if out is not None:
        out.write_text(json.dumps(record, indent=1, default=str) + "\n")
    print(sys.modules[run.__module__].markdown(record))
    return 0 if figures.get("ok", True) else 1


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, Linux {platform.release()}"


def report(record: dict, title: str, shared: str, *parts: str) -> str:
    """A record's section: its title, command and machine (``shared``: what ran on the same cores), then
    ``parts`` (the empty ones left out)."""
    load = record["load_average"]
    head = (
        f"### {title} ({record['ended']})\n\nCommand: `{record['command']}`  \nMachine: {record['machine']}; "
        f"load average {load['before'][0]} before the run, {load['after'][0]} after it; {shared} on the same cores."
    )
    return "\n\n".join([head, *filter(None, parts)])


def percentile(values, q: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else None


def ms(values) -> str:
    """``p50 / p95 / max`` of ``values`` (milliseconds)."""
    return " / ".join(
        "–" if v is None else f"{v:,.0f}"
        for v in (percentile(values, 50), percentile(values, 95), max(values, default=None))
    )


def codes(counts: dict) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(counts.items(), key=lambda kv: str(kv[0])))


def table(columns: str, rows: list[list]) -> str:
    """A markdown table of ``rows`` under ``columns`` (``"name | count:"``: a name ending in ":" heads
    a right-aligned column of numbers); empty without rows."""
    if not rows:
        return ""
    names = columns.split(" | ")
    head = [name.rstrip(":") for name in names]
    align = ["---:" if name.endswith(":") else "---" for name in names]
    return "\n".join("| " + " | ".join(map(str, row)) + " |" for row in [head, align, *rows])


# --- students, events and Locust ---------------------------------------------------------------


def sessions(count: int) -> list[dict]:
    """``count`` verified students, each logged in (as the login form leaves a session): ``{user_id,
    session, csrf}``."""
    from tools.testing import bulk_students, logged_in_session

    return [
        {"user_id": u.pk, "session": logged_in_session(u), "csrf": secrets.token_hex(16)} for u in bulk_students(count)
    ]


def event(slug: str, capacity: int, **fields):
    """A published event open for claims (``fields`` override)."""
    from tools.testing import open_event

    return open_event(slug=slug, capacity=capacity, title="Benchmark", **fields)


def locust(stack: Stack, plan: dict, *, host: str = "") -> dict:
    """Locust headless with ``loadtests/locustfile.py`` on ``plan`` (its kind, users, spawn rate,
    limit); what the locustfile recorded (requests, students, marks)."""
    from django.db import connections

    connections.close_all()  # the run may restart PostgreSQL under this process' connections
    number = len(list(stack.work.glob("plan-*.json")))
    path, out = stack.work / f"plan-{number}.json", stack.work / f"locust-{number}.json"
    path.write_text(json.dumps(plan))
    # A crowd holds thousands of sockets: the generator (and nothing else) may open as many.
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "loadtests" / "locustfile.py"),
        "--headless",
        "--host",
        host or stack.base_url,
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "5",
    ]
    env = {**stack.env, "LOADTEST_PLAN": str(path), "LOADTEST_OUT": str(out)}
    with (stack.work / f"locust-{number}.log").open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        stack.running[f"locust-{number}"] = process
        try:
            process.wait(timeout=plan["limit"] + 120)
        finally:
            stack.stop(f"locust-{number}")
    if not out.exists():
        raise RuntimeError(f"Locust wrote no results; see {stack.work / f'locust-{number}.log'}")
    return json.loads(out.read_text())


def statuses(samples: list, prefix: str = "") -> dict:
    counts: dict = {}
    for sample in samples:
        if sample[1].startswith(prefix):
            counts[sample[3]] = counts.get(sample[3], 0) + 1
    return counts


# --- the database's truth ---------------------------------------------------------------------


def query(sql: str, params=(), *, rows: bool = False):
    """One statement on this process's Django connection (opened again if PostgreSQL restarted)."""
    from django.db import OperationalError, connection

    for attempt in (1, 2):
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                if cursor.description is None:  # a statement without rows
                    return None
                return cursor.fetchall() if rows else cursor.fetchone()
        except OperationalError:
            connection.close()
            if attempt == 2:
                raise
    return None


TRUTH_SQL = """SELECT e.capacity, e.remaining,
  (SELECT count(*) FROM tickets_ticket t WHERE t.event_id = e.id AND t.status = 'active'),
  (SELECT count(DISTINCT user_id) FROM tickets_ticket t WHERE t.event_id = e.id AND t.status = 'active'),
  (SELECT count(DISTINCT user_id) FROM ticket_queue q WHERE q.event_id = e.id),
  (SELECT count(*) FROM ticket_queue q WHERE q.event_id = e.id AND q.status IN ('pending', 'processing')),
  (SELECT count(*) FROM ticket_queue q JOIN tickets_ticket t ON t.id = q.ticket_id WHERE q.event_id = e.id
     AND q.status = 'completed' AND t.user_id = q.user_id AND t.status = 'active'),
  (SELECT count(*) FROM ticket_queue q WHERE q.event_id = e.id AND q.status = 'failed' AND q.reason = 'error'),
  (SELECT coalesce(max(attempts), 0) FROM ticket_queue q WHERE q.event_id = e.id)
FROM events_event e WHERE e.id = %s"""


def truth(event_id: int) -> dict:
    """What must hold after any run: tickets == min(seats, claimants), one per student, every entry
    decided and the completed ones holding their ticket, no claim given up on an error."""
    names = "capacity remaining tickets holders claimants undecided completed_linked failed_error max_attempts"
    found = dict(zip(names.split(), query(TRUTH_SQL, [event_id]), strict=True))
    found["ok"] = (
        found["tickets"] == min(found["capacity"], found["claimants"]) == found["holders"] == found["completed_linked"]
        and found["remaining"] == found["capacity"] - found["tickets"]
        and found["undecided"] == found["failed_error"] == 0
    )
    return found


def held(found: dict) -> str:
    return f"{'held' if found['ok'] else '**BROKEN**'} ({found['tickets']} tickets, {found['holders']} holders)"


def decisions(event_id: int) -> dict:
    """Claim-to-decision seconds (``processed_at - created_at``) of the event's entries, and when
    (after the first claim) the last claim came, the first and the last were decided."""
    sql = """SELECT percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP
      (ORDER BY extract(epoch FROM processed_at - created_at)),
      max(extract(epoch FROM processed_at - created_at)), count(processed_at),
      extract(epoch FROM max(created_at) - min(created_at)), extract(epoch FROM min(processed_at) - min(created_at)),
      extract(epoch FROM max(processed_at) - min(created_at)) FROM ticket_queue WHERE event_id = %s"""
    p, worst, decided, last_claim, first, last = query(sql, [event_id])
    number = lambda value: None if value is None else float(value)  # noqa: E731
    return {
        "p50": number((p or [None])[0]),
        "p95": number((p or [None, None])[1]),
        "max": number(worst),
        "decided": decided,
        "last_claim_s": number(last_claim),
        "first_decision_s": number(first),
        "last_decision_s": number(last),
    }


def wait_decided(event_id: int, timeout: float) -> float:
    """Seconds until no entry of the event is pending or processing (RuntimeError after ``timeout``)."""
    started = time.monotonic()
    while live := query(
        "SELECT count(*) FROM ticket_queue WHERE event_id = %s AND status IN ('pending', 'processing')", [event_id]
    )[0]:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{live} entries still undecided after {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - started
