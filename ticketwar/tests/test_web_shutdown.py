"""The Procfile's ws and web processes stop promptly on SIGTERM, with connections open.

uvicorn (ws) waits for every running connection task before it exits; a websocket consumer that
never finishes (seen now and then with two workers and sockets open) would hold a deploy or a
Ctrl-C forever. The Procfile bounds the wait (``--timeout-graceful-shutdown``). granian (web)
keeps idle keep-alive connections open for the pages' polling; they must not hold it either
(``--workers-kill-timeout``).
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

from ticketwar.testing import procfile_command, subprocess_env

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


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
def test_ws_stops_within_seconds_of_sigterm_with_websockets_open(round_, make_user, event):
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
    # Two workers: the hang was seen with sockets spread over both.
    env = subprocess_env(
        connection.settings_dict, WS_PORT=str(port), WS_CONCURRENCY="2", LOG_LEVEL="WARNING", PATH=path
    )
    web = subprocess.Popen(
        ["bash", "-c", procfile_command("ws")], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    sockets = []
    try:
        _wait_port(port, web)
        for _ in range(6):  # spread over both uvicorn workers (the page is on another port)
            ws = websocket.create_connection(
                f"ws://127.0.0.1:{port}/ws/queue/{entry.public_id}/",
                cookie=f"sessionid={session.session_key}",
                origin="http://127.0.0.1:8000",
                timeout=10,
            )
            assert '"status": "pending"' in ws.recv()
            sockets.append(ws)
        # The origin check: a page of an allowed host on any port, nothing else.
        with pytest.raises(websocket.WebSocketBadStatusException, match="403"):
            websocket.create_connection(
                f"ws://127.0.0.1:{port}/ws/queue/{entry.public_id}/",
                cookie=f"sessionid={session.session_key}",
                origin="http://evil.example",
                timeout=10,
            )
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("round_", range(2))
def test_web_stops_within_seconds_of_sigterm_with_keep_alive_connections_open(round_, student):
    """Pages keep their connection between polls: open ones, idle and mid-request, must not hold web."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.db import connection

    session = SessionStore()
    session.update(
        {
            SESSION_KEY: str(student.pk),
            BACKEND_SESSION_KEY: "ticketwar.lib.auth.CachedNimOrEmailBackend",
            HASH_SESSION_KEY: student.get_session_auth_hash(),
        }
    )
    session.create()
    port = free_port()
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = subprocess_env(connection.settings_dict, PORT=str(port), LOG_LEVEL="WARNING", PATH=path)
    web = subprocess.Popen(
        ["bash", "-c", procfile_command("web")], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    request = (
        f"GET /api/ping/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: sessionid={session.session_key}\r\n\r\n"
    ).encode()
    connections = []
    try:
        _wait_port(port, web)
        for _ in range(8):  # kept alive after one answered request, as a polling page leaves them
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            conn.sendall(request)
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
            connections.append(conn)
        half_sent = socket.create_connection(("127.0.0.1", port), timeout=10)
        half_sent.sendall(request[:20])  # a request whose headers never finish
        connections.append(half_sent)
        started = time.monotonic()
        os.killpg(web.pid, signal.SIGTERM)  # as honcho / docker stop / Ctrl-C do
        web.wait(timeout=30)
        assert time.monotonic() - started < 12
    finally:
        for conn in connections:
            conn.close()
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait()
