"""deploy/nginx/nginx.conf in front of the Procfile's web and ws: real nginx, real processes.

The production path: one public port, pages and the API to web (granian), ``/ws/`` upgraded
and passed to ws (uvicorn), connections kept alive longer than the pages' 5 s polling.
"""

from __future__ import annotations

import http.client
import re
import time

import pytest

from tools.stack import run_nginx

pytestmark = [pytest.mark.slow]


@pytest.fixture
def nginx_in_front(live_split_server, tmp_path):
    """nginx with the repository's config, its upstreams pointed at the live processes."""
    web_port = int(live_split_server.url.rsplit(":", 1)[1])
    ws_port = int(live_split_server.ws_origin.rsplit(":", 1)[1])
    with run_nginx(tmp_path, web_port=web_port, ws_port=ws_port) as (port, _internal):
        yield port


@pytest.mark.django_db(transaction=True)
def test_nginx_routes_pages_to_web_and_ws_to_the_websocket_process(nginx_in_front, make_user, event):
    import websocket
    from django.test import Client

    from claims.services import claim_submit

    student = make_user()
    entry, _created = claim_submit(user=student, event_slug=event.slug)
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
