"""What the failure drills share: a private stack, an alert receiver, samplers and the report.

Every drill starts its own PostgreSQL, Redis, web (uvicorn, 2 workers), Celery worker and beat
with ``loadtests/run.py``'s :class:`~loadtests.run.Stack` (the Procfile's command lines), so what
is drilled is what ``make run`` runs, and stops all of it in a ``finally``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from loadtests import run as harness  # noqa: E402
from ticketwar import devservices  # noqa: E402

PYTHON = sys.executable
WEBHOOK_SECRET = "drill-webhook-secret"  # noqa: S105 (a loopback receiver of the drill)


def say(message: str) -> None:
    print(f"[drill {time.strftime('%H:%M:%S', time.gmtime())}] {message}", file=sys.stderr, flush=True)


def dsn(database_url: str) -> str:
    return database_url.replace("postgres://", "postgresql://", 1)


# --- alert webhook receiver --------------------------------------------------------------------


class AlertReceiver:
    """A loopback HTTP server that records every alert webhook and checks its signature."""

    def __init__(self, secret: str = WEBHOOK_SECRET) -> None:
        self.secret = secret
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                # Signed over "<timestamp>.<body>" (docs/MONITORING.md, "Channels").
                timestamp = self.headers.get("X-Ticketwar-Timestamp", "")
                message = timestamp.encode() + b"." + body
                expected = "sha256=" + hmac.new(receiver.secret.encode(), message, hashlib.sha256).hexdigest()
                signature = self.headers.get("X-Ticketwar-Signature", "")
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"unparsable": body[:200].decode(errors="replace")}
                receiver.received.append(
                    {"at": time.time(), "valid_signature": hmac.compare_digest(expected, signature), **payload}
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def start(self) -> AlertReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def env(self) -> dict[str, str]:
        return {"ALERT_WEBHOOK_URL": self.url, "ALERT_WEBHOOK_SECRET": self.secret}


# --- the stack ---------------------------------------------------------------------------------


class DrillStack(harness.Stack):
    """``run.Stack`` plus what the drills break and repair: Redis, PostgreSQL, the worker."""

    def __init__(self, work: Path, extra_env: dict[str, str] | None = None) -> None:
        super().__init__(work)
        self.extra_env = extra_env or {}

    def start_services(self) -> None:
        # A drill breaks its own servers: never adopt a DATABASE_URL / REDIS_URL from outside.
        for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CACHE_REDIS_URL", "CHANNEL_REDIS_URL"):
            os.environ.pop(name, None)
        super().start_services()
        self.env.update(self.extra_env)

    def start(self) -> None:
        self.start_services()
        say("migrating")
        self.manage("migrate", "--noinput", "-v", "0")
        # Django in this process (students, sessions, bulk rows) talks to the same servers.
        os.environ.update({k: v for k, v in self.env.items() if k in {"DATABASE_URL", "REDIS_URL"}})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketwar.settings")
        os.environ.setdefault("LOG_LEVEL", "ERROR")
        import importlib

        import django
        from django.conf import settings
        from django.utils.functional import empty

        # Importing ``ticketwar`` (for devservices) already read the settings module with the
        # default URLs: read it again now that this stack's URLs are in the environment.
        importlib.reload(importlib.import_module("ticketwar.settings"))
        settings._wrapped = empty
        django.setup()

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    def redis_pid(self) -> int | None:
        return devservices.redis_running(self.services.redis_dir)

    def kill_redis(self) -> None:
        pid = self.redis_pid()
        if pid is None:
            raise RuntimeError("Redis is not running")
        os.kill(pid, signal.SIGKILL)

    def start_redis(self) -> None:
        """Start Redis again on the same port with the same arguments as before."""
        import psutil

        # The SIGKILLed Redis (daemonized, so not our child) may linger as a zombie until init
        # reaps it; its pid file would then make redis_start believe it still runs.
        pid = self.redis_pid()
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    (self.services.redis_dir / "redis.pid").unlink(missing_ok=True)
        devservices.redis_start(self.services.redis_dir, self.services.redis_port, persistent=True)

    def postgres_pid(self) -> int | None:
        return devservices.pg_running(self.services.pgdata)

    def stop_postgres(self) -> None:
        devservices.pg_stop(self.services.pgdata)  # pg_ctl stop -m fast

    def start_postgres(self) -> None:
        devservices.pg_start(self.services.pgdata, self.services.pg_port)

    def kill_worker(self) -> list[int]:
        """SIGKILL the Celery worker and its pool children at once (no warm shutdown)."""
        import psutil

        process = self.processes.pop("worker")
        family = [process.pid]
        with contextlib.suppress(psutil.Error):
            family += [child.pid for child in psutil.Process(process.pid).children(recursive=True)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return family


def fresh_work_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"ticketwar-{prefix}-"))


def cleanup(work: Path, keep: bool) -> None:
    if keep:
        say(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


# --- students and sessions ---------------------------------------------------------------------


def make_students(count: int, tag: str) -> list:
    """Verified students created in bulk (one password hash for all: they log in by session)."""
    from loadtests.queue_bench import make_students as bulk_students

    return bulk_students(count, tag)


def make_sessions(users: list) -> list[dict]:
    """A logged-in session per student, as the login form would leave it, plus a CSRF secret."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.cached_db import SessionStore

    sessions = []
    for user in users:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        sessions.append({"user_id": user.pk, "session": session.session_key, "csrf": secrets.token_hex(16)})
    return sessions


def make_event(slug: str, capacity: int):
    from loadtests.queue_bench import make_event as bench_event

    return bench_event(slug, capacity)


# --- samplers ----------------------------------------------------------------------------------

_SAMPLE = re.compile(r'^ticketwar_breaker_state\{[^}]*name="(?P<name>[^"]+)"[^}]*\}\s+(?P<value>\S+)', re.M)
BREAKER_STATES = {0: "closed", 1: "half-open", 2: "open"}


class HealthSampler(threading.Thread):
    """Every ``interval`` s: /healthz (status, redis breaker as the answering process sees it)
    and /metrics (``ticketwar_breaker_state``, the maximum over all processes)."""

    def __init__(self, base_url: str, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.interval = interval
        self.samples: list[dict] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            sample: dict = {"at": time.time()}
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=3) as response:  # noqa: S310
                    body = json.loads(response.read())
                    sample["healthz"] = response.status
            except urllib.error.HTTPError as exc:
                sample["healthz"] = exc.code
                try:
                    body = json.loads(exc.read())
                except ValueError:
                    body = {}
            except OSError:
                sample["healthz"] = 0
                body = {}
            checks = body.get("checks", {}) if isinstance(body, dict) else {}
            sample["status"] = body.get("status") if isinstance(body, dict) else None
            sample["checks"] = {name: check.get("status") for name, check in checks.items()}
            breaker = checks.get("redis", {}).get("breakers", {}).get("redis", {})
            sample["healthz_breaker"] = breaker.get("state")
            try:
                text = harness.scrape_metrics(self.base_url, timeout=3)
                sample["metrics_breakers"] = {
                    m["name"]: BREAKER_STATES.get(int(float(m["value"])), m["value"]) for m in _SAMPLE.finditer(text)
                }
            except (OSError, ValueError):
                sample["metrics_breakers"] = None
            self.samples.append(sample)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def transitions(self, key: str = "redis") -> list[tuple[float, str]]:
        """(time, state) each time the redis breaker changed, as /metrics (max of processes) shows."""
        out: list[tuple[float, str]] = []
        for sample in self.samples:
            state = (sample.get("metrics_breakers") or {}).get(key)
            if state is None:
                continue
            if not out or out[-1][1] != state:
                out.append((sample["at"], state))
        return out

    def healthz_transitions(self) -> list[tuple[float, str]]:
        out: list[tuple[float, str]] = []
        for sample in self.samples:
            state = f"{sample['healthz']} {sample.get('status') or '-'}"
            if not out or out[-1][1] != state:
                out.append((sample["at"], state))
        return out


def postgres_rss_mb(pgdata: Path) -> float:
    """RSS of the postmaster and all its backends (shared buffers counted once per process
    that touched them, so this overstates; PSS would be fairer but needs root on other users)."""
    import psutil

    pid = devservices.pg_running(pgdata)
    if not pid:
        return 0.0
    parent = psutil.Process(pid)
    total = 0.0
    for process in [parent, *parent.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total / 2**20


def run_loadclient(base_url: str, plan_path: Path, out_path: Path, log_path: Path) -> subprocess.Popen:
    """Start the constant-load client (gevent, its own process so it never patches this one)."""
    return subprocess.Popen(
        [PYTHON, str(ROOT / "loadtests" / "drills" / "loadclient.py"), "--base-url", base_url,
         "--plan", str(plan_path), "--out", str(out_path)],
        cwd=ROOT, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def build_plan(
    slug: str, sessions: list[dict], claim_times: list[float | None], start_at: float, seconds: float
) -> dict:
    students = [{**session, "claim_at": at} for session, at in zip(sessions, claim_times, strict=True)]
    return {"slug": slug, "start_at": start_at, "seconds": seconds, "students": students}


def wait_for_alert(receiver: AlertReceiver, prefix: str, state: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(
            str(a.get("rule", "")).startswith(prefix) and a.get("event", a.get("state")) == state
            for a in receiver.received
        ):
            return True
        time.sleep(0.5)
    return False


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every ``finally`` stops what the drill started."""

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)


def settle_alerts(receiver: AlertReceiver, event_id: int, timeout: float) -> float | None:
    """Close the drill's event and wait until every alert that fired has resolved.

    Cancelling the event takes it off the remaining-tickets list, which resolves its alert at
    the next evaluation; the latency and error-rate alerts resolve once their 5-minute window
    is clear for the rule's cooldown. Returns when the event was cancelled (None: not waited).
    """
    if timeout <= 0:
        return None
    from django.db import connection

    from events.services import event_cancel

    connection.close()  # the drill may have restarted PostgreSQL under this connection
    event_cancel(event_id=event_id)
    cancelled = time.time()
    say(f"event cancelled; waiting up to {timeout:.0f} s for the fired alerts to resolve")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fired = {a.get("rule") for a in receiver.received if a.get("event") == "firing"}
        resolved = {a.get("rule") for a in receiver.received if a.get("event") == "resolved"}
        if fired and fired <= resolved:
            break
        time.sleep(2)
    return cancelled


def drill_parser(doc: str):
    """The options every drill takes; each drill adds its own numbers."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny numbers (test suite); docs untouched")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/BENCHMARKS.md")
    parser.add_argument("--keep", action="store_true", help="keep the logs of the stack")
    return parser


def drill_main(args, *, run, markdown, section: str) -> int:
    """Run a drill, print its report, save its figures and (full runs) update docs/BENCHMARKS.md."""
    from loadtests.drills import tables

    stop_on_sigterm()
    figures = run(args)
    text = markdown(figures)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    if not args.quick and not args.no_docs:
        tables.update_benchmarks(section, text)
    return 0 if figures["ok"] else 1
