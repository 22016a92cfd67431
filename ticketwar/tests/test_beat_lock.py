"""Two beats started with the Procfile's command: one sends, the other idles and takes over.

Real processes and the real database: the lock is PostgreSQL's, so what is proven is what a
cluster gets when a second beat pod runs for a while.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tools import stack
from tools.testing import subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SENT = "Sending due task queueing-tick"


def _start_beat(tmp_path: Path, name: str, env: dict) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.log"
    process = stack.start("beat", env, output=log, CELERY_BEAT_SCHEDULE_FILE=str(tmp_path / f"{name}-schedule"))
    return process, log


def _sent(log: Path) -> int:
    return log.read_text(errors="replace").count(SENT)


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _lock_holders(database_url: str) -> list[str]:
    import psycopg

    from ticketwar.beat import BEAT_LOCK_ID

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            [BEAT_LOCK_ID],
        ).fetchall()
    return [row[0] for row in rows]


def test_a_second_beat_idles_and_takes_over_when_the_first_dies(tmp_path, settings):
    from django.db import connection

    # The beats' ticks go to a Redis database of their own, never to the suite's queues.
    redis_base = settings.REDIS_URL.rsplit("/", 1)[0]
    env = subprocess_env(
        connection.settings_dict,
        CELERY_BROKER_URL=f"{redis_base}/14",
        LOG_LEVEL="INFO",
        DEBUG="false",
    )
    database_url = env["DATABASE_URL"]
    first, first_log = _start_beat(tmp_path, "first", env)
    second = None
    try:
        assert _wait(lambda: _sent(first_log) >= 1, 40), first_log.read_text()[-3000:]
        second, second_log = _start_beat(tmp_path, "second", env)
        assert _wait(lambda: "another beat holds the beat lock" in second_log.read_text(errors="replace"), 40), (
            second_log.read_text()[-3000:]
        )
        before = _sent(first_log)
        time.sleep(6)  # three 2-second ticks: the first keeps sending, the second sends nothing
        assert _sent(first_log) >= before + 2, first_log.read_text()[-3000:]
        assert _sent(second_log) == 0, second_log.read_text()[-3000:]
        assert _lock_holders(database_url) == ["ticketwar-beat"]

        stack.kill(first)  # no shutdown: PostgreSQL frees the lock with the socket
        killed = time.monotonic()
        assert _wait(lambda: _sent(second_log) >= 1, 20), second_log.read_text()[-3000:]
        from ticketwar.beat import LOCK_RETRY_SECONDS

        assert time.monotonic() - killed < LOCK_RETRY_SECONDS + 4
        assert "beat holds the beat lock" in second_log.read_text(errors="replace")
    finally:
        stack.stop(*(process for process in (first, second) if process is not None))
