"""A raw HTTP/1.1 client on asyncio streams: logged-in students' requests, kept alive or each on a new connection."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from urllib.parse import urlparse

from loadtests.harness.report import percentile


def address(base_url: str) -> tuple[str, int]:
    parsed = urlparse(base_url)
    return parsed.hostname or "127.0.0.1", parsed.port or 80


def request_bytes(base_url: str, method: str, path: str, session: dict | str, *, keep_alive: bool = True) -> bytes:
    """One request of a logged-in student (``session``: ``make_sessions``' dict, or a cookie header)."""
    host, port = address(base_url)
    if isinstance(session, str):
        cookie, csrf = session, ""
    else:
        cookie, csrf = f"sessionid={session['session']}; csrftoken={session['csrf']}", session["csrf"]
    body = "{}" if method == "POST" else ""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nX-CSRFToken: {csrf}\r\n"
        f"Cookie: {cookie}\r\nConnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n{body}"
    ).encode()


def requests(base_url: str, method: str, path: str, sessions: list, *, repeat: bool | None = None):
    """An iterator of requests, one per session in turn (GETs: round and round; POSTs: once each)."""
    built = [request_bytes(base_url, method, path, s) for s in sessions]
    return iter(itertools.cycle(built) if (method == "GET" if repeat is None else repeat) else built)


async def read_response(reader: asyncio.StreamReader) -> str:
    """Read one response off a kept-alive connection; its status code ('closed' if none, or if the
    server closes the connection after it)."""
    status_line = await reader.readline()
    if not status_line:
        return "closed"
    length, chunked, keep_alive = 0, False, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            keep_alive = False
    if chunked:
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status_line.split()[1].decode() if keep_alive else "closed:" + status_line.split()[1].decode()


async def _connection(host, port, requests, deadline, latencies, codes) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for request in requests:
            if time.perf_counter() >= deadline:
                return
            started = time.perf_counter()
            writer.write(request)
            status = await read_response(reader)
            latencies.append((time.perf_counter() - started) * 1000)
            codes[status.removeprefix("closed:")] += 1
            if status.startswith("closed"):
                return
    finally:
        writer.close()


def measure(base_url: str, requests, connections: int, seconds: float) -> dict:
    """Send ``requests`` (an iterator shared by all connections, each kept alive) for at most ``seconds``."""
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    started = time.perf_counter()
    host, port = address(base_url)

    async def run() -> None:
        await asyncio.gather(
            *[_connection(host, port, requests, started + seconds, latencies, codes) for _ in range(connections)],
            return_exceptions=True,
        )

    asyncio.run(run())
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies), "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) or 0, 2), "p95_ms": round(percentile(latencies, 95) or 0, 2),
        "codes": dict(codes),
    }  # fmt: skip


async def _one(host, port, request: bytes, conn, send_at: float, out: list, held: list | None = None) -> None:
    """``request`` at ``send_at`` on ``conn`` (kept alive), or on a new connection (``conn`` None);
    the connection is then closed, or left open in ``held``."""
    await asyncio.sleep(max(0.0, send_at - time.perf_counter()))
    started = time.perf_counter()
    if isinstance(conn, str):  # its warm-up failed: counted as such
        out.append((started, started, conn))
        return
    try:
        reader, writer = conn or await asyncio.open_connection(host, port)
        writer.write(request)
        status = (await asyncio.wait_for(read_response(reader), timeout=60)).removeprefix("closed:")
        if held is None:
            writer.close()
        else:
            held.append((reader, writer))
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        status = type(exc).__name__
    out.append((started, time.perf_counter(), status))


async def _warm(host, port, base_url: str, session: dict, gate: asyncio.Semaphore):
    """A page that has polled before: its connection is open and has carried one request."""
    async with gate:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request_bytes(base_url, "GET", "/api/ping/", session))
            status = await asyncio.wait_for(read_response(reader), timeout=60)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            return f"warm-up {type(exc).__name__}"
        return (reader, writer) if status == "200" else f"warm-up {status}"


def spike(base_url: str, method: str, path: str, sessions: list[dict], spread: float, *, kept_alive: bool = False,
          idle: int = 0, on_start=None) -> dict:  # fmt: skip
    """Each session sends one request, all within ``spread`` seconds (uniformly).

    On its own new connection, or (``kept_alive``) on a connection opened and used once before
    the spike, as a page that polls keeps it: the spike then pays for no connection set-up.
    With ``idle``, each session also holds that many more such connections, idle throughout (a
    phone's browser keeps several to the host), and keeps the request's own connection open after
    its answer, as a browser does. ``on_start`` is called when the spike (not the
    warm-up) begins, e.g. to read the server's CPU.
    """
    host, port = address(base_url)

    async def run() -> tuple[list, dict]:
        extra, conns, held = {}, [None] * len(sessions), []
        if kept_alive or idle:
            # A hundred at a time (the warm-up is no spike of its own), and quickly: the server
            # closes a connection idle for 60 s, which a page polling every 5 s never is.
            gate, warm_started = asyncio.Semaphore(100), time.perf_counter()
            if kept_alive:
                conns = await asyncio.gather(*[_warm(host, port, base_url, s, gate) for s in sessions])
            held = await asyncio.gather(*[_warm(host, port, base_url, s, gate) for s in sessions for _ in range(idle)])
            extra["warm_up_s"] = round(time.perf_counter() - warm_started, 1)
            if idle:
                extra["idle_connections"] = dict(Counter("open" if isinstance(c, tuple) else c for c in held))
        if on_start is not None:
            on_start()
        t0, out = time.perf_counter() + 0.5, []
        await asyncio.gather(
            *[
                _one(host, port, request_bytes(base_url, method, path, s, keep_alive=kept_alive or bool(idle)), conn,
                     t0 + random.uniform(0, spread), out, held if idle else None)
                for s, conn in zip(sessions, conns, strict=True)
            ]
        )  # fmt: skip
        for conn in held:
            if isinstance(conn, tuple):
                conn[1].close()
        return out, extra

    out, extra = asyncio.run(run())
    latencies = [(end - start) * 1000 for start, end, _status in out]
    first, last = min(start for start, _e, _s in out), max(end for _s, end, _st in out)
    return {
        "requests": len(out), "statuses": dict(Counter(status for _s, _e, status in out)),
        "p50_ms": round(percentile(latencies, 50) or 0, 1), "p95_ms": round(percentile(latencies, 95) or 0, 1),
        "p99_ms": round(percentile(latencies, 99) or 0, 1), "max_ms": round(max(latencies), 1),
        "first_sent_to_last_answered_s": round(last - first, 2),
        "answered_per_second": round(len(out) / (last - first), 1),
        **extra,
    }  # fmt: skip
