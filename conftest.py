"""Shared fixtures: personas, events, and the real servers behind the tests.

Tests run against real PostgreSQL and Redis (`make test` starts private ones; see
tools/devservices.py). Nothing here fakes a server.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tools import stack
from tools.testing import (
    ROOT,
    RedisControl,
    SmtpServer,
    door_open_times,
    free_port,
    open_event,
    password_hash,
    reset_redis_state,
    subprocess_env,
)

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls made by the
# test itself are still synchronous. Subprocesses (uvicorn, workers) never inherit this flag.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_sessions(django_db_setup, django_db_blocker):
    """Before the test database is dropped, end sessions the tests left open.

    ORM calls made while Playwright's event loop is marked running get a connection of their
    own (Django keeps connections per context), which nothing closes at the end of the test; the
    drop then fails with "database is being accessed by other users". Test harness only.
    """
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with an empty cache (the Redis is shared by the whole run), fresh
    per-process rate-limit counters, no one-second drain-rate memo, and a process that has read
    the whole revocation feed (the tests' own changes reach it as they are made: no watcher thread
    runs in the test process)."""
    from django.core.cache import cache

    from accounts import revocation
    from common.cache import local_clear
    from common.ratelimit import process_counters
    from queueing import selectors

    cache.clear()
    local_clear()
    process_counters.clear()
    selectors._drain_rate_memo[:] = [float("-inf"), 0.0]
    revocation.reset(in_sync_for=3600)
    yield


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model

    counter = iter(range(10**6))

    def make(
        *,
        nim: str | None = None,
        verified: bool = True,
        staff: bool = False,
        roles: tuple[str, ...] = (),
        password: str = "s3cret-pass!",
    ):
        """A student, or with ``staff`` / ``roles`` a staff account (``is_staff`` = ``staff``) in
        the role groups named (accounts/roles.py)."""
        n = next(counter)
        user_model = get_user_model()
        if staff or roles:
            user = user_model(username=f"staff{n}_{time.monotonic_ns()}", is_staff=staff, full_name=f"Staff {n}")
        else:
            user = user_model.verified_student(nim or f"{(time.monotonic_ns() + n) % 10**9:09d}", password_hash="")
            if not verified:
                user.email_verified_at = None
        user.password = password_hash(password)
        user.save()
        if roles:
            from accounts.roles import roles_ensure

            # Ensured here: a transactional test's flush empties the groups the migration made.
            groups = roles_ensure()
            user.groups.add(*(groups[role] for role in roles))
        return user

    return make


@pytest.fixture
def student(make_user):
    return make_user()


@pytest.fixture
def other_student(make_user):
    return make_user()


@pytest.fixture
def staff(make_user):
    """A staff member who works the door and watches the monitoring (is_staff, two roles)."""
    from accounts.roles import DOOR_STAFF, OPERATORS

    return make_user(staff=True, roles=(DOOR_STAFF, OPERATORS))


@pytest.fixture
def door_staff(make_user):
    """A door volunteer: the scan page and the check-in API only, no admin (not is_staff)."""
    from accounts.roles import DOOR_STAFF

    return make_user(roles=(DOOR_STAFF,))


@pytest.fixture
def operator(make_user):
    from accounts.roles import OPERATORS

    return make_user(staff=True, roles=(OPERATORS,))


@pytest.fixture
def organiser(make_user):
    from accounts.roles import ORGANISERS

    return make_user(staff=True, roles=(ORGANISERS,))


@pytest.fixture
def plain_staff(make_user):
    """An is_staff account in no group: since the roles, it holds none of their rights."""
    return make_user(staff=True)


@pytest.fixture
def admin_client(client, make_user):
    """A client logged in as a superuser made like every other persona (pytest-django's own
    ``admin_client`` is replaced so the admin gets the same fields as ``staff``)."""
    user = make_user(staff=True)
    user.is_superuser = True
    user.save()
    client.force_login(user)
    return client


@pytest.fixture
def make_event(db):
    counter = iter(range(10**6))

    def make(*, capacity: int = 500, opens_in: float = -60, status: str = "published", **fields):
        n = next(counter)
        fields = {"slug": f"event-{n}-{time.monotonic_ns()}", "title": f"Event {n}", "status": status, **fields}
        return open_event(capacity=capacity, opens_in=opens_in, **fields)

    return make


@pytest.fixture
def event(make_event):
    return make_event()


@pytest.fixture
def door_event(make_event):
    """A published event whose claim window and door are both open now."""
    return make_event(**door_open_times())


@pytest.fixture
def celery_worker_process(transactional_db, settings):
    """``start()`` runs the Procfile's worker on the test database (its own process group:
    ``tools.stack.kill`` takes its pool with it); all stopped at teardown."""
    from django.db import connection

    env = subprocess_env(connection.settings_dict)
    processes: list[subprocess.Popen] = []

    def start(*extra: str, concurrency: int = 2, **environment: str) -> subprocess.Popen:
        """``extra``: more command-line arguments; ``environment``: variables set for this worker."""
        args = shlex.join(["--loglevel", "WARNING", "-n", f"test{len(processes)}_{os.getpid()}@%h", *extra])
        process = stack.start("worker", {**env, **environment}, args=args, WORKER_CONCURRENCY=str(concurrency))
        processes.append(process)
        return process

    yield start
    stack.stop(*processes)


@pytest.fixture
def celery_beat_process(transactional_db, tmp_path):
    """``start()`` runs a real Celery beat on the test database (several may run, by mistake)."""
    from django.db import connection

    env = subprocess_env(connection.settings_dict)
    processes: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        schedule = str(tmp_path / f"beat-{len(processes)}")
        process = stack.start("beat", env, args="--loglevel WARNING", CELERY_BEAT_SCHEDULE_FILE=schedule)
        processes.append(process)
        return process

    yield start
    stack.stop(*processes, timeout=10)


@pytest.fixture
def enqueue():
    """``enqueue(user, event)``: the real enqueue service, returning the entry."""
    from claims.services import claim_submit

    def run(user, event):
        return claim_submit(user=user, event_slug=event.slug)[0]

    return run


@pytest.fixture
def redis_server():
    """The test run's real Redis (a ``RedisControl``) for a test that kills or hangs it; left running,
    with every circuit breaker closed, at teardown, so later tests are unaffected."""
    data_dir = os.environ.get("TICKETWAR_TEST_DATA_DIR")
    if not data_dir:
        pytest.fail("run the tests through `python -m tools.devservices test` (it owns the test Redis)")
    port = urlparse(os.environ["REDIS_URL"]).port
    control = RedisControl(Path(data_dir), port)
    reset_redis_state()
    yield control
    control.restore()
    reset_redis_state()
    # Connections in the pool point at the old (dead or stopped) server: drop them.
    from django_redis import get_redis_connection

    get_redis_connection("default").connection_pool.disconnect()


@pytest.fixture
def smtp_server():
    """A real SMTP server on 127.0.0.1 for this test (``.port``, ``.received``)."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def guarded_smtp(settings):
    """This process sends mail over SMTP to 127.0.0.1 through the guarded backend (the "smtp"
    breaker, closed at start and end); set ``EMAIL_PORT`` on what it yields."""
    from common.breaker import get_breaker

    settings.EMAIL_BACKEND = "common.mail.GuardedEmailBackend"
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_TIMEOUT = 2
    get_breaker("smtp").reset()
    yield settings
    get_breaker("smtp").reset()


@pytest.fixture
def live_mail_dir(tmp_path):
    """Where the live server's mail goes (Django's file backend): one file per message."""
    path = tmp_path / "live-mail"
    path.mkdir()
    return path


@pytest.fixture
def live_asgi_server(transactional_db, live_mail_dir):
    """The real ASGI app (HTTP + websockets: the Procfile's ws process) on the test database.

    Yields the base URL, e.g. ``http://127.0.0.1:41234``. Data must be committed to be
    seen by the server, hence ``transactional_db``.
    """
    from django.db import connection

    env = subprocess_env(
        connection.settings_dict,
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(live_mail_dir),
    )
    app = stack.Processes(env)
    try:
        yield app.serve("ws")
    finally:
        app.stop(timeout=10)


@dataclass(frozen=True)
class SplitServers:
    url: str  # the pages (granian, the Procfile's web)
    ws_origin: str  # the websockets (uvicorn, the Procfile's ws), as settings.WEBSOCKET_ORIGIN


@pytest.fixture
def live_split_server(transactional_db, live_mail_dir):
    """The Procfile's web and ws processes, as `make run` starts them, on the test database.

    Pages come from granian on one port, websockets from uvicorn on another, and the pages are
    told where (``WEBSOCKET_ORIGIN``): what a browser meets in development.
    """
    from django.db import connection

    ws_port = free_port()
    ws_origin = f"ws://127.0.0.1:{ws_port}"
    env = subprocess_env(
        connection.settings_dict,
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(live_mail_dir),
        WS_PORT=str(ws_port),
        WEBSOCKET_ORIGIN=ws_origin,
        LOG_LEVEL="WARNING",
    )
    app = stack.Processes(env)
    try:
        stack.wait_for_port(ws_port, app.start("ws"))
        yield SplitServers(url=app.serve("web"), ws_origin=ws_origin)
    finally:
        app.stop()


@pytest.fixture
def browser():
    """Debian's Chromium driven by Playwright (its own browser download does not work here).

    Per test, not per session: Playwright's sync API keeps an asyncio loop marked as running
    in the main thread for as long as it is open, and any later test that uses
    ``async_to_sync`` (websocket tests) would then fail with "cannot use AsyncToSync in the
    same thread as an async event loop". A launch costs about a second.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield instance
        instance.close()


@pytest.fixture
def phone_page(browser):
    """A fresh browser context with a phone-sized viewport."""
    # bypass_csp: Playwright's wait_for_function evaluates its expression with eval(), which the
    # Content-Security-Policy refuses. The policy itself is tested in ticketwar/tests/test_csp_browser.py.
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, locale="id-ID", bypass_csp=True
    )
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot_dir(tmp_path):
    """Where browser tests save screenshots: docs/screenshots/ with UPDATE_SCREENSHOTS=1
    (`make screenshots`), else a temporary folder, so a test run leaves the tree clean."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        path = ROOT / "docs" / "screenshots"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path
