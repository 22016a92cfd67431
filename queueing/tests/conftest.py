"""Helpers shared by the queue tests."""

from __future__ import annotations

import contextlib
import itertools
import time

import pytest

from ticketwar.testing import stop_processes

_BATCH_STAMPS = itertools.count(time.monotonic_ns() // 1000)


def bulk_students(count: int) -> list:
    """``count`` verified students created in one INSERT (one password hash shared by all)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    user_model = get_user_model()
    password = make_password("s3cret-pass!")
    now = timezone.now()
    # NIMs are 9 digits: a 4-digit batch stamp + 5 for the index. The stamp starts from the clock
    # (test runs apart) and then counts, so two batches of one run never share NIMs (two batches
    # made within the same clock tick did, now and then, in the racing tests).
    stamp = next(_BATCH_STAMPS) % 10**4
    nims = [f"{stamp:04d}{i:05d}" for i in range(count)]
    users = [
        user_model(
            username=nims[i],
            nim=nims[i],
            email=f"{nims[i]}@student.itera.ac.id",
            full_name=f"Mahasiswa {i}",
            email_verified_at=now,
            password=password,
        )
        for i in range(count)
    ]
    return user_model.objects.bulk_create(users)


def wait_until(predicate, *, timeout: float, interval: float = 0.1, message: str = "condition not met"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{message} within {timeout} s")


@pytest.fixture
def enqueue():
    """``enqueue(user, event)``: the real enqueue service, returning the entry."""
    from queueing.services import queue_enqueue

    def run(user, event):
        return queue_enqueue(user=user, event_slug=event.slug)[0]

    return run


@pytest.fixture
def celery_beat_process(transactional_db, tmp_path):
    """``start()`` runs a real Celery beat on the test database (several may run, by mistake)."""
    import subprocess
    import sys

    from django.db import connection

    from ticketwar.testing import ROOT, subprocess_env

    env = subprocess_env(connection.settings_dict)
    processes: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        schedule = tmp_path / f"beat-{len(processes)}"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ticketwar", "beat", "--loglevel", "WARNING",
             "--schedule", str(schedule)],
            cwd=ROOT, env=env,
        )  # fmt: skip
        processes.append(process)
        return process

    yield start
    stop_processes(processes, timeout=10)


def kill_tree(process) -> None:
    """SIGKILL a worker and its pool children at once: no goodbye, no ack, no rollback by us."""
    import psutil

    parent = psutil.Process(process.pid)
    victims = [*parent.children(recursive=True), parent]
    for victim in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.kill()
    psutil.wait_procs(victims, timeout=10)


@pytest.fixture
def decided_log(transactional_db):
    """A trigger recording every processing -> completed/failed transition of ticket_queue.

    Lets a test prove that no entry was decided twice, whatever the workers believe.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE TABLE IF NOT EXISTS test_decided_log (entry_id bigint NOT NULL, status text NOT NULL);
            CREATE OR REPLACE FUNCTION test_log_decided() RETURNS trigger AS $$
            BEGIN INSERT INTO test_decided_log (entry_id, status) VALUES (NEW.id, NEW.status); RETURN NEW; END
            $$ LANGUAGE plpgsql;
            DROP TRIGGER IF EXISTS test_log_decided ON ticket_queue;
            CREATE TRIGGER test_log_decided AFTER UPDATE ON ticket_queue FOR EACH ROW
            WHEN (OLD.status = 'processing' AND NEW.status IN ('completed', 'failed'))
            EXECUTE FUNCTION test_log_decided();
            TRUNCATE test_decided_log;
            """
        )

    def read() -> list[tuple[int, str]]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT entry_id, status FROM test_decided_log")
            return cursor.fetchall()

    yield read
    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER IF EXISTS test_log_decided ON ticket_queue; DROP TABLE IF EXISTS test_decided_log;"
        )


class WebsocketClient:
    """A websocket test client on asgiref's ApplicationCommunicator.

    Same idea as ``channels.testing.WebsocketCommunicator``, whose package also imports the
    Daphne live server (not installed: uvicorn serves the app here).
    """

    def __init__(self, application, path: str, user) -> None:
        from asgiref.testing import ApplicationCommunicator

        scope = {
            "type": "websocket",
            "path": path,
            "query_string": b"",
            "headers": [],
            "subprotocols": [],
            "user": user,
        }
        self._app = ApplicationCommunicator(application, scope)

    async def connect(self, timeout: float = 5) -> dict:
        await self._app.send_input({"type": "websocket.connect"})
        return await self._app.receive_output(timeout)

    async def receive_output(self, timeout: float = 5) -> dict:
        return await self._app.receive_output(timeout)

    async def receive_json(self, timeout: float = 5) -> dict:
        import json

        message = await self._app.receive_output(timeout)
        assert message["type"] == "websocket.send", message
        return json.loads(message["text"])

    async def send_json(self, data) -> None:
        import json

        await self._app.send_input({"type": "websocket.receive", "text": json.dumps(data)})

    async def receive_nothing(self, timeout: float = 0.3) -> bool:
        return await self._app.receive_nothing(timeout)

    async def disconnect(self) -> None:
        await self._app.send_input({"type": "websocket.disconnect", "code": 1000})
        await self._app.wait(2)


@pytest.fixture(autouse=True)
def _fresh_process_memos():
    """Each test starts without this process's one-second drain-rate memo."""
    from queueing import selectors

    selectors._drain_rate_memo[:] = [float("-inf"), 0.0]
    yield
