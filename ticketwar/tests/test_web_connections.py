"""The web process and the shipped nginx serve a crowd holding far more connections than threads.

A phone's browser keeps several connections to the host, idle between requests; at the opening a
thousand students hold thousands. A new connection must be answered at once, not after someone
else's idle connection has timed out: granian admits at most ``--backpressure`` connections per
worker (by default 1024 / 2 workers = 512) for as long as each stays open, and an nginx worker at
most ``worker_connections`` (both sides of a proxied request counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import resource

import pytest
from django.db import connection

from tools import stack
from tools.testing import free_port, subprocess_env

pytestmark = [pytest.mark.slow]

ANSWER_WITHIN = 10  # seconds: an idle connection is closed after 30 s or more, never this soon


async def _get(port: int, conn=None):
    """The pages' stylesheet on ``conn`` or a new connection, left open: (the connection, the
    status), or (None, "closed"), or (None, "no answer") after ``ANSWER_WITHIN`` seconds."""

    async def get():
        reader, writer = conn or await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /static/css/base.css HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        status_line = await reader.readline()
        if not status_line:
            return None, "closed"
        status = status_line.split()[1].decode()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            length = int(value) if name.strip().lower() == b"content-length" else length
        await reader.readexactly(length)
        return (reader, writer), status

    try:
        return await asyncio.wait_for(get(), timeout=ANSWER_WITHIN)
    except TimeoutError:
        return None, "no answer"


async def _crowd(port: int, idle: int, *, used: bool) -> list[str]:
    """``idle`` connections opened (and, if ``used``, each used once) a hundred at a time and left
    idle; then a request on a new connection and one on the first idle one. The statuses."""
    gate, held = asyncio.Semaphore(100), []

    async def hold() -> str:
        async with gate:
            if used:
                conn, status = await _get(port)
            else:  # a browser's preconnection: open, nothing sent yet
                try:
                    conn = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), ANSWER_WITHIN)
                    status = "open"
                except (OSError, TimeoutError) as exc:
                    conn, status = None, type(exc).__name__
            if conn:
                held.append(conn)
            return status

    try:
        statuses = await asyncio.gather(*[hold() for _ in range(idle)])
        _conn, new = await _get(port)
        _conn, again = await _get(port, held[0])
        return [*statuses, new, again]
    finally:
        for _reader, writer in held:
            writer.close()


@contextlib.contextmanager
def web_process(files: int):
    """The Procfile's web on a free port, with ``files`` open files allowed here (the client's
    sockets; web and nginx inherit the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= files, f"the crowd needs {files} open files (ulimit -Hn is {hard})"
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    web = stack.Processes(subprocess_env(connection.settings_dict, LOG_LEVEL="WARNING"))
    try:
        yield int(web.serve("web").rsplit(":", 1)[1])
    finally:
        web.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_web_answers_a_new_connection_while_more_kept_alive_ones_idle_than_its_default_admits():
    idle = 1100  # more than 2 workers × 512
    with web_process(2 * idle + 500) as port:
        statuses = asyncio.run(_crowd(port, idle, used=True))
    assert statuses == ["200"] * (idle + 2)


def test_nginx_keeps_thousands_of_idle_connections_and_answers_a_new_one(tmp_path):
    idle = 8300  # more than nginx's 2 workers × 4096 before (the machines here have two cores)
    with (
        web_process(2 * idle + 1000) as web_port,
        stack.run_nginx(tmp_path, web_port=web_port, ws_port=free_port()) as (port, _internal),
    ):
        statuses = asyncio.run(_crowd(port, idle, used=False))
    assert statuses == ["open"] * idle + ["200", "200"]
