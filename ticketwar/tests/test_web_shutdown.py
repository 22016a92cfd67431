"""The Procfile's web process stops promptly on SIGTERM, even with websockets open.

uvicorn waits for every running connection task before it exits; a websocket consumer that
never finishes (seen now and then with two workers and sockets open) would hold a deploy or a
Ctrl-C forever. The Procfile bounds the wait (``--timeout-graceful-shutdown``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import subprocess_env

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _procfile_web() -> str:
    lines = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    return lines["web"].strip()


def _wait_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "web exited before serving"
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"web did not listen within {timeout:.0f} s")


@pytest.mark.parametrize("round_", range(3))
def test_web_stops_within_seconds_of_sigterm_with_websockets_open(round_, make_user, event):
    import websocket
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.db import connection

    from queueing.services import queue_enqueue

    student = make_user()
    entry, _created = queue_enqueue(user=student, event_slug=event.slug)
    session = SessionStore()
    session.update(
        {
            SESSION_KEY: str(student.pk),
            BACKEND_SESSION_KEY: "ticketwar.lib.auth.CachedNimOrEmailBackend",
            HASH_SESSION_KEY: student.get_session_auth_hash(),
        }
    )
    session.create()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The Procfile says `python`: the virtualenv's, as under `make run`.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = subprocess_env(connection.settings_dict, PORT=str(port), LOG_LEVEL="WARNING", PATH=path)
    web = subprocess.Popen(
        ["bash", "-c", _procfile_web()], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    sockets = []
    try:
        _wait_port(port, web)
        for _ in range(6):  # spread over both uvicorn workers
            ws = websocket.create_connection(
                f"ws://127.0.0.1:{port}/ws/queue/{entry.public_id}/",
                cookie=f"sessionid={session.session_key}",
                origin=f"http://127.0.0.1:{port}",
                timeout=10,
            )
            assert '"status": "pending"' in ws.recv()
            sockets.append(ws)
        started = time.monotonic()
        os.killpg(web.pid, signal.SIGTERM)  # as honcho / docker stop / Ctrl-C do
        web.wait(timeout=30)
        assert time.monotonic() - started < 12
    finally:
        for ws in sockets:
            ws.close()
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait()
