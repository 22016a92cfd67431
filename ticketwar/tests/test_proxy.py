"""deploy/nginx/nginx.conf in front of the Procfile's web and ws: real nginx, real processes.

The production path: one public port, pages and the API to web (granian), ``/ws/`` upgraded
and passed to ws (uvicorn), connections kept alive longer than the pages' 5 s polling.
"""

from __future__ import annotations

import http.client
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def nginx_in_front(live_split_server, tmp_path):
    """nginx with the repository's config, its upstreams pointed at the live processes."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    web_port = live_split_server.url.rsplit(":", 1)[1]
    ws_port = live_split_server.ws_origin.rsplit(":", 1)[1]
    port = free_port()
    config = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    for old, new in (
        ("server web:8000;", f"server 127.0.0.1:{web_port};"),
        ("server ws:8001;", f"server 127.0.0.1:{ws_port};"),
        ("listen 80;", f"listen 127.0.0.1:{port};"),
        ("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;"),
    ):
        assert old in config, old
        config = config.replace(old, new)
    (tmp_path / "logs").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(config)
    check = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off; error_log stderr warn;"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert process.poll() is None and time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.django_db(transaction=True)
def test_nginx_routes_pages_to_web_and_ws_to_the_websocket_process(nginx_in_front, make_user, event):
    import websocket
    from django.test import Client

    from queueing.services import queue_enqueue

    student = make_user()
    entry, _created = queue_enqueue(user=student, event_slug=event.slug)
    client = Client()
    client.force_login(student)
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    conn = http.client.HTTPConnection("127.0.0.1", nginx_in_front, timeout=10)
    conn.request("GET", "/api/ping/", headers={"Cookie": cookie})
    first = conn.getresponse()
    assert first.status == 200 and first.read()
    local = conn.sock.getsockname()
    # Idle longer than the event page's 5 s poll: the same connection still answers.
    time.sleep(6)
    conn.request("GET", f"/api/events/{event.slug}/", headers={"Cookie": cookie})
    second = conn.getresponse()
    assert second.status == 200 and re.search(rb'"slug": ?"' + event.slug.encode(), second.read())
    assert conn.sock.getsockname() == local  # not a new connection
    conn.close()

    ws = websocket.create_connection(
        f"ws://127.0.0.1:{nginx_in_front}/ws/queue/{entry.public_id}/",
        cookie=cookie,
        origin=f"http://127.0.0.1:{nginx_in_front}",
        timeout=10,
    )
    try:
        assert '"status": "pending"' in ws.recv()
    finally:
        ws.close()
