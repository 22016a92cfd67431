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
import time

import pytest
import websocket
from django.db import connection

from claims.services import claim_submit
from tools import stack
from tools.testing import free_port, logged_in_session, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def assert_stops_soon_after_sigterm(process) -> None:
    """SIGTERM the process group, as honcho / docker stop / Ctrl-C do: it must be gone within 12 s."""
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
    assert time.monotonic() - started < 12


@pytest.mark.parametrize("round_", range(3))
def test_ws_stops_within_seconds_of_sigterm_with_websockets_open(round_, make_user, event):
    student = make_user()
    entry, _created = claim_submit(user=student, event_slug=event.slug)
    session_key = logged_in_session(student)
    port = free_port()
    # Two workers: the hang was seen with sockets spread over both.
    env = subprocess_env(connection.settings_dict, WS_PORT=str(port), WS_CONCURRENCY="2", LOG_LEVEL="WARNING")
    web = stack.start("ws", env, output=subprocess.DEVNULL)
    sockets = []
    try:
        stack.wait_for_port(port, web)
        for _ in range(6):  # spread over both uvicorn workers (the page is on another port)
            ws = websocket.create_connection(
                f"ws://127.0.0.1:{port}/ws/queue/{entry.public_id}/",
                cookie=f"sessionid={session_key}",
                origin="http://127.0.0.1:8000",
                timeout=10,
            )
            assert '"status": "pending"' in ws.recv()
            sockets.append(ws)
        # The origin check: a page of an allowed host on any port, nothing else.
        with pytest.raises(websocket.WebSocketBadStatusException, match="403"):
            websocket.create_connection(
                f"ws://127.0.0.1:{port}/ws/queue/{entry.public_id}/",
                cookie=f"sessionid={session_key}",
                origin="http://evil.example",
                timeout=10,
            )
        assert_stops_soon_after_sigterm(web)
    finally:
        for ws in sockets:
            ws.close()
        stack.stop(web, timeout=0)


@pytest.mark.parametrize("round_", range(2))
def test_web_stops_within_seconds_of_sigterm_with_keep_alive_connections_open(round_, student):
    """Pages keep their connection between polls: open ones, idle and mid-request, must not hold web."""
    session_key = logged_in_session(student)
    port = free_port()
    web = stack.start("web", subprocess_env(connection.settings_dict, PORT=str(port)), output=subprocess.DEVNULL)
    request = (f"GET /api/ping/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: sessionid={session_key}\r\n\r\n").encode()
    connections = []
    try:
        stack.wait_for_port(port, web)
        for _ in range(8):  # kept alive after one answered request, as a polling page leaves them
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            conn.sendall(request)
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
            connections.append(conn)
        half_sent = socket.create_connection(("127.0.0.1", port), timeout=10)
        half_sent.sendall(request[:20])  # a request whose headers never finish
        connections.append(half_sent)
        assert_stops_soon_after_sigterm(web)
    finally:
        for conn in connections:
            conn.close()
        stack.stop(web, timeout=0)
