"""The web and the worker through a real PgBouncer in transaction mode, as behind Supabase's
pooler on :6543 with ``DATABASE_POOLER_TRANSACTION_MODE=true`` (docs/DEPLOYMENT.md)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tools import devservices
from tools.stack import Processes
from tools.testing import ROOT, Student, bulk_students, database_url_for, free_port, subprocess_env, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(150)]


@pytest.fixture
def pgbouncer(tmp_path):
    """``(port, database URL through it)`` of a PgBouncer in transaction mode before the test database.

    Fewer server connections than clients (web threads, worker processes, this test), as on a
    small Supabase plan: clients' transactions really move between server connections.
    """
    from django.db import connection

    port = free_port()
    process = devservices.pgbouncer_start(
        tmp_path / "pgbouncer", port, int(connection.settings_dict["PORT"]), pool_size=4
    )
    url = database_url_for({**connection.settings_dict, "HOST": "127.0.0.1", "PORT": port})
    yield port, url
    devservices.stop_process(process)


def _bouncer_transactions(port: int, database: str) -> int:
    """Transactions PgBouncer has passed to ``database`` (its admin console's SHOW STATS)."""
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/pgbouncer", autocommit=True) as conn:
        conn.prepare_threshold = None  # the admin console knows no extended protocol niceties
        cursor = conn.execute("SHOW STATS")
        names = [c.name for c in cursor.description]
        for row in cursor.fetchall():
            stats = dict(zip(names, row, strict=True))
            if stats["database"] == database:
                return int(stats["total_xact_count"])
    return 0


_ITERATE = """
import json, os, django, psycopg
django.setup()
from events.models import Event
rows = Event.objects.order_by("id").iterator(chunk_size=1)
first = next(rows)
second = psycopg.connect(os.environ["PROBE_DSN"], autocommit=True)
try:
    with second.transaction():  # holds the server connection the first fetch ran on
        second.execute("SELECT 1").fetchone()
        print(json.dumps({"rows": 1 + len(list(rows))}))
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__}))
"""


@pytest.mark.parametrize("flag", ["false", "true"])
def test_queryset_iterator_behind_a_transaction_pooler_needs_the_flag(pgbouncer, make_event, flag):
    """Django's ``.iterator()`` (the exports) opens a server-side cursor and fetches from it in
    later transactions, which the pooler may send to another server connection: the flag turns
    those cursors off."""
    from django.db import connection

    for _ in range(3):
        make_event()
    _port, url = pgbouncer
    env = subprocess_env(connection.settings_dict, DATABASE_URL=url, DATABASE_POOLER_TRANSACTION_MODE=flag)
    result = subprocess.run(
        [sys.executable, "-c", _ITERATE], cwd=ROOT, env={**env, "PROBE_DSN": url},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    outcome = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else result.stderr
    if flag == "true":
        assert outcome == {"rows": 3}, outcome
    else:
        assert outcome == {"error": "InvalidCursorName"}, outcome


def test_psycopg_prepared_statements_break_behind_a_transaction_pooler(pgbouncer):
    """psycopg prepares a statement after a few runs on *its* connection, and the pooler then
    sends the next run to a server connection that never saw it; the flag sets psycopg's
    ``prepare_threshold`` to None (Django's default client-side binding does not prepare, but
    ``server_side_binding`` or a hand-made psycopg connection would)."""
    _port, url = pgbouncer

    def run(prepare_threshold):
        first, second = psycopg.connect(url, autocommit=True), psycopg.connect(url, autocommit=True)
        first.prepare_threshold = prepare_threshold
        try:
            for _ in range(6):  # the default threshold is 5: now prepared on the server connection used
                first.execute("SELECT count(*) FROM events_event").fetchone()
            with second.transaction():  # holds that server connection for the moment
                second.execute("SELECT 1").fetchone()
                first.execute("SELECT count(*) FROM events_event").fetchone()  # another server connection
        finally:
            first.close()
            second.close()

    with pytest.raises(psycopg.errors.InvalidSqlStatementName):
        run(5)  # psycopg's default
    run(None)  # what DATABASE_POOLER_TRANSACTION_MODE sets: never prepared, works


def test_claim_race_through_pgbouncer_in_transaction_mode(pgbouncer, make_event):
    """Many students racing real connections through the pooler, a real worker deciding."""
    from django.db import connection

    from queueing.models import QueueEntry
    from tickets.models import Ticket

    port, url = pgbouncer
    seats, students = 120, 160
    event = make_event(capacity=seats)
    before = _bouncer_transactions(port, connection.settings_dict["NAME"])
    env = subprocess_env(connection.settings_dict, DATABASE_URL=url, DATABASE_POOLER_TRANSACTION_MODE="true")
    app = Processes(env)
    try:
        base_url = app.serve("web")
        app.start("worker")
        clicks = [Student.login(base_url, user) for user in bulk_students(students)] * 2
        random.Random(6543).shuffle(clicks)

        def click(student: Student) -> int:
            return student.claim(event.slug, timeout=30)[0]

        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = Counter(pool.map(click, clicks))
        assert set(statuses) <= {202, 200, 409, 410}, statuses  # queued, again, holder, sold out
        live = QueueEntry.objects.filter(event=event, status__in=["pending", "processing"])
        wait_until(lambda: not live.exists(), timeout=60, interval=0.3, message="queue not drained")
    finally:
        app.stop()
    tickets = Ticket.objects.filter(event=event, status="active")
    assert tickets.count() == tickets.values("user").distinct().count() == seats  # one each, no seat twice
    event.refresh_from_db()
    assert event.remaining == 0
    assert QueueEntry.objects.filter(event=event, status="completed", ticket__in=tickets).count() == seats
    assert not QueueEntry.objects.filter(event=event, status="failed", reason="error").exists()
    # The web's and the worker's queries really went through the pooler.
    assert _bouncer_transactions(port, connection.settings_dict["NAME"]) - before > students, "not pooled"
