"""The load-test harness cannot silently rot: a tiny headless Locust run against the real stack.

Five students (real accounts, real login form) race for three seats of an event opening a few
seconds into the run, on uvicorn serving the test database and a real Celery worker. Locust
runs in a subprocess: importing it here would monkey-patch this test process with gevent.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from django.core.management import call_command

from loadtests.harness import locust_report, report

pytestmark = pytest.mark.slow

STUDENTS = 5
SEATS = 3


def test_five_students_race_for_three_seats(live_asgi_server, celery_worker_process, make_event, tmp_path):
    from tickets.models import Ticket

    credentials = tmp_path / "students.csv"
    call_command("create_students", count=STUDENTS, prefix="7", out=str(credentials), stdout=io.StringIO())
    event = make_event(capacity=SEATS, opens_in=5)
    celery_worker_process()
    results_path, csv_prefix = tmp_path / "results.json", tmp_path / "locust"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "LOADTEST_EVENT": event.slug,
        "LOADTEST_CREDENTIALS": str(credentials),
        "LOADTEST_RESULTS": str(results_path),
        "LOADTEST_WS_FRACTION": "0.5",
    }
    run = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless", "-u", str(STUDENTS),
         "-r", str(STUDENTS), "-t", "18s", "--stop-timeout", "5", "--host", live_asgi_server,
         "--csv", str(csv_prefix), "--only-summary", "--loglevel", "WARNING"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    stats = {row["name"]: row for row in locust_report.locust_stats(csv_prefix.with_name("locust_stats.csv"))}
    failures = csv_prefix.with_name("locust_failures.csv").read_text()
    assert stats["Aggregated"]["failures"] == 0, failures + run.stdout[-2000:]
    assert run.returncode == 0, run.stdout[-2000:]

    results = json.loads(results_path.read_text())
    assert results["users_logged_in"] == STUDENTS
    claims = results["claim_codes"]
    # Everyone clicked once at the opening: queued (202) or, once the seats were gone, 410.
    assert claims.get("202", 0) + claims.get("410", 0) == STUDENTS, claims
    assert claims.get("202", 0) >= SEATS, claims
    # Every queued claim was decided and seen by its student; exactly SEATS of them won.
    outcomes = results["queue_outcomes"]
    assert "timeout" not in outcomes, outcomes
    assert sum(outcomes.values()) == claims["202"], outcomes
    assert sum(n for key, n in outcomes.items() if key.startswith("completed")) == SEATS, outcomes
    assert len(results["decision_ms"]) == claims["202"]
    # The winners opened their ticket page; the students were exactly those of the CSV.
    assert stats["GET /tickets/[id]/"]["requests"] == SEATS
    with credentials.open(newline="") as handle:
        nims = {row["nim"] for row in csv.DictReader(handle)}
    holders = set(Ticket.objects.filter(event=event, status="active").values_list("user__nim", flat=True))
    assert len(holders) == SEATS
    assert holders <= nims

    # The report of such a run renders (the same code writes docs/BENCHMARKS.md).
    figures = locust_report.client_figures(results)
    assert figures["whole"]["claim"]["count"] == STUDENTS
    assert figures["failures"] == 0


def test_sections_are_replaced_not_duplicated(tmp_path):
    """Each run's table has its markers in its section ("Load test", "Failure drills"): replaced, never repeated."""
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Start-up\n\ntext\n")
    for marker, block in (
        ("loadtest:500-users", "### 500 users\n\nfirst\n"),
        ("drill:redis", "### Redis\n\nfirst\n"),
        ("loadtest:1000-users", "### 1000 users\n\nbig\n"),
        ("drill:worker-db", "### DB\n\nonce\n"),
        ("loadtest:500-users", "### 500 users\n\nsecond\n"),
        ("drill:redis", "### Redis\n\nsecond\n"),
    ):
        report.update_benchmarks(marker, block, path)
    text = path.read_text()
    assert text.startswith("# Benchmarks\n\n## Start-up\n\ntext\n")
    assert text.count("## Load test") == 1 and text.count("## Failure drills") == 1
    assert "first" not in text and text.count("### Redis") == 1 and text.count("### 500 users") == 1
    assert text.index("## Load test") < text.index("### 500 users") < text.index("### 1000 users")
    drills = text.index("## Failure drills")
    assert drills < text.index("### Redis") < text.index("### DB")
    assert text.index("second") < text.index("big")
