"""Helpers shared by the tests and the test fixtures (conftest.py): ports, subprocess
environments, live mail, a real SMTP server, bulk students, racing threads, websocket clients,
control of the test run's Redis and extra Redis servers, and a logged-in student talking to the
app's real processes (started with ``tools.stack``) over HTTP and a websocket.

Plain functions and classes, no fixtures: tests and conftest files import them from here;
nothing is ever imported from a conftest.py.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone

from tools.devservices import free_port  # the tests take it from here too

ROOT = Path(__file__).resolve().parent.parent


def subprocess_env(settings_dict: dict, **extra: str) -> dict[str, str]:
    """Environment for a server or worker subprocess that must use the test database."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({"DATABASE_URL": database_url_for(settings_dict), "PYTHONUNBUFFERED": "1", **extra})
    return env


def database_url_for(settings_dict: dict) -> str:
    user = settings_dict.get("USER") or "postgres"
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    return f"postgres://{auth}{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"


def door_open_times() -> dict:
    """Event times for a claim window open now and a door open now (it starts within the hour),
    so a test can issue a ticket the real way and check it in."""
    now = timezone.now()
    return {
        "claim_opens_at": now - timedelta(minutes=1),
        "claim_closes_at": now + timedelta(minutes=30),
        "starts_at": now + timedelta(hours=1),
    }


def open_event(*, slug: str, capacity: int, title: str = "Event", opens_in: float = -60, **fields):
    """A published event whose claim window opened ``-opens_in`` seconds ago (or opens in
    ``opens_in``), closes in a day, two days before it starts; ``fields`` override any column."""
    from events.models import Event

    now = timezone.now()
    values = {
        "slug": slug, "title": title, "speaker": "Speaker", "venue": "Aula", "capacity": capacity,
        "remaining": capacity, "status": "published", "claim_opens_at": now + timedelta(seconds=opens_in),
        "claim_closes_at": now + timedelta(days=1), "starts_at": now + timedelta(days=2),
    }  # fmt: skip
    return Event.objects.create(**{**values, **fields})


def read_live_mail(mail_dir: Path) -> list[str]:
    """The messages the live server sent, oldest first."""
    return [p.read_text() for p in sorted(mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)]


def logged_in_session(user) -> str:
    """The session cookie's value of ``user`` logged in, as the login form leaves it: Django's
    ``login()`` on the configured engine (its signals give the session its revocable id), without
    checking a password."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import login
    from django.http import HttpRequest

    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()
    login(request, user, settings.AUTHENTICATION_BACKENDS[0])
    request.session.save()
    return request.session.session_key


def wait_until(predicate, *, timeout: float, interval: float = 0.1, message: str = "condition not met"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{message} within {timeout} s")


_BATCH_STAMPS = itertools.count(time.monotonic_ns() // 1000)


@functools.cache
def password_hash(password: str) -> str:
    """One hash per password for the whole run: PBKDF2 costs a third of a second a user here."""
    from django.contrib.auth.hashers import make_password

    return make_password(password)


def bulk_students(count: int) -> list:
    """``count`` verified students created in one INSERT (one password hash shared by all)."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    password = password_hash("s3cret-pass!")
    # NIMs are 9 digits: a 4-digit batch stamp + 5 for the index. The stamp starts from the clock
    # (test runs apart) and then counts, so two batches of one run never share NIMs (two batches
    # made within the same clock tick did, now and then, in the racing tests).
    stamp = next(_BATCH_STAMPS) % 10**4
    return user_model.objects.bulk_create(
        [user_model.verified_student(f"{stamp:04d}{i:05d}", password_hash=password) for i in range(count)]
    )


def issue_ticket(*, event_id: int, user_id: int, **options):
    """One student's ticket through the one issuing path (``ticket_issue_many``); its refusal raised."""
    from tickets.services import ticket_issue_many

    outcome = ticket_issue_many(event_id=event_id, user_ids=[user_id], **options)[user_id]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def run_race(jobs: Iterable[Callable[[], Any]], *, timeout: float = 60) -> list[tuple[str, Any]]:
    """Run every job in its own thread, released together by a barrier.

    Each thread uses its own database connection (Django's connections are per thread) and
    closes it at the end. Returns ``("ok", value)`` or ``("error", exception)`` per job, in
    the order given.
    """
    from django.db import connection

    jobs = list(jobs)
    barrier = threading.Barrier(len(jobs))
    outcomes: list[tuple[str, Any] | None] = [None] * len(jobs)

    def runner(index: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=timeout)
            outcomes[index] = ("ok", job())
        except Exception as exc:
            outcomes[index] = ("error", exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, job), daemon=True) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
    assert all(outcome is not None for outcome in outcomes)
    return outcomes  # type: ignore[return-value]


def race_values(jobs: Iterable[Callable[[], Any]], *, timeout: float = 60) -> list:
    """``run_race`` for jobs that must all return: their values, in the order given."""
    outcomes = run_race(jobs, timeout=timeout)
    assert all(kind == "ok" for kind, _ in outcomes), [value for kind, value in outcomes if kind != "ok"]
    return [value for _, value in outcomes]


def wait_for_lock_wait(sql_fragment: str, timeout: float = 20) -> None:
    """Until another connection waits for a lock while running a statement containing ``sql_fragment``."""
    from django.db import connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE %s",
                [f"%{sql_fragment}%"],
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.05)
    raise AssertionError(f"no connection waited on a lock running {sql_fragment!r} within {timeout} s")


class TicketCommittedMeanwhile:
    """Another connection inserts a ticket for ``user_id`` and keeps its transaction open.

    ``ticket_issue_held`` (a waiting-list seat) inserts without touching the event row, so it
    can slip in between ``ticket_issue_many``'s check and its INSERT: that INSERT then waits
    for this transaction on the unique index, and fails on the constraint once it commits.
    """

    def __init__(self, *, event_id: int, user_id: int) -> None:
        self._inserted, self._commit = threading.Event(), threading.Event()
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(event_id, user_id), daemon=True)

    def _run(self, event_id: int, user_id: int) -> None:
        from django.db import connection, transaction

        from tickets.services import ticket_issue_held

        try:
            with transaction.atomic():
                ticket_issue_held(event_id=event_id, user_id=user_id)
                self._inserted.set()
                self._commit.wait(30)
        except BaseException as exc:
            self.errors.append(exc)
            self._inserted.set()
        finally:
            connection.close()

    def start(self) -> None:
        self._thread.start()
        assert self._inserted.wait(30) and not self.errors, self.errors

    def commit(self) -> None:
        self._commit.set()
        self._thread.join(30)
        assert not self._thread.is_alive() and not self.errors, self.errors

    def commit_during(self, job: Callable[[], Any]) -> tuple[str, Any]:
        """Run ``job`` in a thread of its own (its own connection) until it waits on this ticket's
        lock in an INSERT into tickets_ticket, then commit. ``("ok", value)`` or ``("error", exception)``."""
        from django.db import connection

        outcome: list[tuple[str, Any]] = []

        def run() -> None:
            try:
                outcome.append(("ok", job()))
            except Exception as exc:
                outcome.append(("error", exc))
            finally:
                connection.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        wait_for_lock_wait("INSERT INTO tickets_ticket")
        self.commit()
        thread.join(30)
        assert not thread.is_alive(), "the job still waits after the commit"
        return outcome[0]


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


class RedisControl:
    """Control of the test run's real Redis server: kill it, hang it, bring it back.

    ``python -m tools.devservices test`` starts a private Redis whose pid file is
    ``$TICKETWAR_TEST_DATA_DIR/redis/redis.pid`` (the ``redis_server`` fixture always leaves it
    running again at teardown).
    """

    def __init__(self, data_dir: Path, port: int) -> None:
        self.dir = data_dir / "redis"
        self.port = port
        self.stopped = False

    @property
    def pid(self) -> int | None:
        from tools.devservices import redis_running

        return redis_running(self.dir)

    def kill(self) -> None:
        """SIGKILL: the port refuses connections from now on."""
        pid = self.pid
        assert pid, "the test Redis is not running"
        if self.stopped:
            os.kill(pid, signal.SIGCONT)
            self.stopped = False
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.pid and time.monotonic() < deadline:
            time.sleep(0.01)

    def hang(self) -> None:
        """SIGSTOP: connections stay open (the kernel still accepts) but nothing answers."""
        pid = self.pid
        assert pid, "the test Redis is not running"
        os.kill(pid, signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        pid = self.pid
        if pid and self.stopped:
            os.kill(pid, signal.SIGCONT)
        self.stopped = False

    def restart(self) -> None:
        """Start it again on the same port with the same arguments (after a kill)."""
        from tools.devservices import redis_start

        if self.pid:
            return
        redis_start(self.dir, self.port, persistent=False)

    def restore(self) -> None:
        self.resume()
        if not self.pid:
            self.restart()


class RedisMonitor:
    """Every command clients send to the test run's real Redis (MONITOR), while in the block;
    ``sent()`` lists them (a script's own calls, run inside Redis, left out)."""

    def __init__(self) -> None:
        from django.conf import settings

        self.url = settings.REDIS_URL
        self.lines: list[str] = []

    def __enter__(self) -> RedisMonitor:
        import redis

        self._client = redis.Redis.from_url(self.url)
        self._monitor = self._client.monitor().__enter__()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        time.sleep(0.2)
        return self

    def _read(self) -> None:
        for event in self._monitor.listen():
            if self._stop.is_set():
                return
            self.lines.append(f"{event['client_address']} {event['command']}")

    def __exit__(self, *exc) -> None:
        import redis

        time.sleep(0.2)
        self._stop.set()
        redis.Redis.from_url(self.url).ping()  # wakes the reader up
        self._thread.join(timeout=5)
        self._client.close()

    def sent(self) -> list[str]:
        """Commands sent over the network (a script's own calls show as ``lua``)."""
        return [line for line in self.lines if not line.startswith("lua") and not line.endswith("PING")]


def reset_redis_state() -> None:
    """Every circuit breaker closed, the in-process rate limits and pending cache invalidations gone."""
    from common import cache as lib_cache
    from common.breaker import all_breakers
    from common.ratelimit import process_counters

    for breaker in all_breakers().values():
        breaker.reset()
    process_counters.clear()
    with lib_cache._pending_lock:
        lib_cache._pending_invalidations.clear()


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept messages; what arrives is kept on the server."""

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                self.wfile.write(b"250 test\r\n")
            elif command == b"DATA":
                self.wfile.write(b"354 go ahead\r\n")
                data = b""
                while (chunk := self.rfile.readline()) and chunk != b".\r\n":
                    data += chunk[1:] if chunk.startswith(b"..") else chunk  # RFC 5321 dot-unstuffing
                self.server.received.append(data)
                self.wfile.write(b"250 queued\r\n")
            elif command == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


class _SmtpTcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # a test may listen again on the port it found closed
    daemon_threads = True


class SmtpServer:
    """A real SMTP server on 127.0.0.1 in a thread; ``received`` holds each message's bytes.

    ``with SmtpServer(port) as server:`` (port 0: any free one, see ``server.port``).
    """

    def __init__(self, port: int = 0) -> None:
        self._server = _SmtpTcpServer(("127.0.0.1", port), _SmtpHandler)
        self._server.received = []
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def received(self) -> list[bytes]:
        return self._server.received

    def __enter__(self) -> SmtpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Student:
    """A logged-in student (a session made by ``Student.login``) talking to the app at ``base_url``."""

    base_url: str
    session: str
    csrf: str = field(default_factory=lambda: os.urandom(16).hex())

    @classmethod
    def login(cls, base_url: str, user) -> Student:
        from django.test import Client

        client = Client()
        client.force_login(user)
        return cls(base_url, client.cookies["sessionid"].value)

    @property
    def cookie(self) -> str:
        return f"sessionid={self.session}; csrftoken={self.csrf}"

    def request(self, method: str, path: str, *, timeout: float = 10) -> tuple[int, dict]:
        """The status and JSON answer (status 0: no answer at all)."""
        headers, data = {"Cookie": self.cookie, "Accept": "application/json"}, None
        if method != "GET":
            headers.update({"X-CSRFToken": self.csrf, "Content-Type": "application/json"})
            data = b"{}"
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - a local test server
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, json.loads(body or b"{}")
            except ValueError:
                return exc.code, {"body": body[:300].decode(errors="replace")}
        except OSError as exc:
            return 0, {"error": f"{type(exc).__name__}: {exc}"}

    def claim(self, slug: str, *, timeout: float = 10) -> tuple[int, dict]:
        return self.request("POST", f"/api/events/{slug}/claim/", timeout=timeout)

    def websocket(self, queue_id: str, *, timeout: float = 20):
        import websocket  # websocket-client

        url = self.base_url.replace("http://", "ws://") + f"/ws/queue/{queue_id}/"
        return websocket.create_connection(url, timeout=timeout, cookie=self.cookie, origin=self.base_url)


def read_until(ws, predicate, *, timeout: float) -> dict:
    """Websocket messages until one satisfies ``predicate`` (returned); AssertionError at timeout."""
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            message = json.loads(ws.recv())
        except Exception as exc:  # websocket timeout: report what was seen
            raise AssertionError(f"no matching websocket message; saw {seen}") from exc
        seen.append(message)
        if predicate(message):
            return message
    raise AssertionError(f"no matching websocket message within {timeout} s; saw {seen}")


class RedisServers:
    """Extra real Redis servers (the embedded binary) under ``root``; ``stop()`` ends them."""

    def __init__(self, root: Path) -> None:
        self.root, self.dirs = root, []

    def start(self, name: str) -> str:
        from tools.devservices import redis_start

        rdir, port = self.root / f"redis-{name}", free_port()
        redis_start(rdir, port, persistent=False)
        self.dirs.append(rdir)
        return f"redis://127.0.0.1:{port}/0"

    def stop_one(self, index: int) -> None:
        from tools.devservices import redis_stop

        redis_stop(self.dirs[index])

    def stop(self) -> None:
        for index in range(len(self.dirs)):
            self.stop_one(index)


def redis_keys(url: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return sorted(key.decode() for key in client.keys("*"))
    finally:
        client.close()


_PROBE = """
import json, django
django.setup()
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from ticketwar.celery import app
from common import redis as redis_lib
from common.breaker import all_breakers

def attempt(fn):
    # Each role meets the server itself: a breaker opened by the role before stays out of it.
    for breaker in all_breakers().values():
        breaker.reset()
    try:
        fn()
        return "ok"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300]

def broker():
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        conn.default_channel.client.ping()

def cache_roundtrip():
    cache.set("probe", "1", 30)
    assert cache.get("probe") == "1", "cache miss (IGNORE_EXCEPTIONS hides the error)"

print(json.dumps({
    "cache": attempt(cache_roundtrip),
    "cache_client": attempt(lambda: redis_lib.get_client().ping()),
    "broker": attempt(broker),
    "broker_client": attempt(lambda: redis_lib.broker_client().ping()),
    "channels": attempt(lambda: async_to_sync(get_channel_layer().send)("probe", {"type": "probe"})),
}))
"""


def probe_redis_roles(env: dict[str, str]) -> dict[str, str]:
    """Each Redis role used once by a fresh process with ``env``: "ok" or the error it met."""
    result = subprocess.run(  # noqa: S603 - this interpreter on the probe above
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(f"probe failed: {result.stderr[-2000:]}")
    return json.loads(lines[-1])


SERVICE_UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class FlakyProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target_port`` whose network can go bad on demand.

    ``mode``: ``"forward"`` relays both ways; ``"hang"`` accepts connections and swallows what
    clients send, never answering (a saturated Wi-Fi, a dead uplink behind a live access point);
    ``"503"`` answers every request with ``503 Service Unavailable``. The mode applies to open
    (kept-alive) connections too. Threads are daemons; ``close()`` stops accepting.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "forward"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    return
                if self.mode == "hang":
                    continue
                if self.mode == "503":
                    client.sendall(SERVICE_UNAVAILABLE)
                    return
                if upstream is None:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port))
                    threading.Thread(target=self._pipe_back, args=(upstream, client), daemon=True).start()
                upstream.sendall(data)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    def _pipe_back(self, upstream: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if self.mode == "hang":
                    continue  # an answer that never arrives
                client.sendall(data)
