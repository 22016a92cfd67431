"""The private stack of a benchmark or drill: PostgreSQL, Redis and the Procfile's processes."""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tools import devservices
from tools.testing import procfile

ROOT = Path(__file__).resolve().parent.parent.parent
PYTHON = sys.executable
# /metrics needs a bearer token (docs/MONITORING.md): one per run, given to the stack's processes.
METRICS_TOKEN = secrets.token_urlsafe(32)
OUTSIDE_URLS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CACHE_REDIS_URL", "CHANNEL_REDIS_URL")


def say(message: str) -> None:
    print(f"[loadtests {time.strftime('%H:%M:%S', time.gmtime())}] {message}", file=sys.stderr, flush=True)


def django_here(*, migrate: bool = True) -> None:
    """Django in this process on the environment's servers (``devservices test``'s), migrated."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketwar.settings")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", "--noinput", verbosity=0)


def dsn(database_url: str) -> str:
    return database_url.replace("postgres://", "postgresql://", 1)


def family(pid: int) -> list:
    """``pid`` and all its descendants (psutil processes; empty if it is gone)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return []


def family_usage(pid: int) -> tuple[list[float], float]:
    """RSS in MB of ``pid`` and each of its descendants, and the CPU seconds they used in all."""
    import psutil

    sizes, cpu = [], 0.0
    for process in family(pid):
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            sizes.append(process.memory_info().rss / 2**20)
            cpu += times.user + times.system
    return sizes, cpu


def scrape_metrics(base_url: str, *, timeout: float) -> str:
    """The Prometheus text of ``base_url``/metrics (our own loopback stack), read with this run's token."""
    request = urllib.request.Request(f"{base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return response.read().decode()


def machine() -> dict:
    import psutil

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        "unknown",
    )
    return {
        "cpus": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1), "cpu": cpu,
        "python": platform.python_version(), "kernel": platform.release(),
    }  # fmt: skip


def versions(env: dict[str, str]) -> dict:
    import psycopg
    import redis

    with psycopg.connect(dsn(env["DATABASE_URL"])) as conn:
        postgres = conn.execute("SHOW server_version").fetchone()[0]
    client = redis.Redis.from_url(env["REDIS_URL"])
    redis_version = client.info("server").get("redis_version")
    client.close()
    return {"postgresql": postgres, "redis": redis_version}


class Stack:
    """PostgreSQL, Redis and the Procfile's processes of one run in ``work``; ``stop()`` undoes all of it.

    ``private`` (the drills: they break their own servers) never adopts a ``DATABASE_URL`` /
    ``REDIS_URL`` from outside; ``extra_env`` goes to every process.
    """

    def __init__(self, work: Path, extra_env: dict[str, str] | None = None, *, private: bool = True) -> None:
        self.work = work
        self.extra_env = extra_env or {}
        self.private = private
        self.services = devservices.Services(work / "data", devservices.free_port(), devservices.free_port())
        self.started_services: dict[str, bool] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.port, self.ws_port = devservices.free_port(), devservices.free_port()
        # web, and the ws process (websockets) as the pages are told under `make run`
        self.base_url, self.ws_origin = f"http://127.0.0.1:{self.port}", f"ws://127.0.0.1:{self.ws_port}"
        self.env: dict[str, str] = {}

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    def start_services(self) -> None:
        if self.private:
            for name in OUTSIDE_URLS:
                os.environ.pop(name, None)
        say("starting PostgreSQL and Redis")
        self.started_services = self.services.start()
        (self.work / "prometheus").mkdir()
        self.env = {
            **os.environ, **self.services.env(),
            "PROMETHEUS_MULTIPROC_DIR": str(self.work / "prometheus"), "METRICS_TOKEN": METRICS_TOKEN,
            "CELERY_BEAT_SCHEDULE_FILE": str(self.work / "celerybeat-schedule"),
            "PORT": str(self.port), "WS_PORT": str(self.ws_port), "WEBSOCKET_ORIGIN": self.ws_origin,
            # Measured like production: no debug bookkeeping of every query, quiet logs.
            "DEBUG": "false", "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
            "PATH": f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }  # fmt: skip

    def start(self) -> None:
        """Servers up, migrated, and Django in this process (students, sessions, rows) on them."""
        self.start_services()
        say("migrating")
        self.manage("migrate", "--noinput", "-v", "0")
        os.environ.update({k: v for k, v in self.env.items() if k.startswith(("DATABASE_URL", "REDIS_"))})
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

    def manage(self, *argv: str) -> str:
        result = subprocess.run(
            [PYTHON, str(ROOT / "manage.py"), *argv], env=self.env, cwd=ROOT, capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(argv)} failed: {result.stderr.strip()[-2000:]}")
        return result.stdout

    def start_processes(
        self, overrides: dict[str, dict[str, str]] | None = None, *, only: set[str] | None = None
    ) -> None:
        """The Procfile's processes (``only`` those), ``overrides`` adding environment variables to one."""
        for name, command in procfile().items():
            if only is None or name in only:
                self.start_command(name, command, (overrides or {}).get(name))
        say(f"running {', '.join(self.processes)} (web on {self.base_url})")

    def start_command(self, name: str, command: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Run one shell command line as process ``name`` (its own process group, log in work/)."""
        log = (self.work / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            ["bash", "-c", command], env={**self.env, **(env or {})}, cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        return self.processes[name]

    def check_processes(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}); see {self.work / (name + '.log')}")

    def wait_healthy(self, timeout: float = 60, *, answering: bool = False, path: str = "/healthz") -> None:
        """Wait for ``path`` to answer 200 (or, with ``answering``, to answer at all)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self.check_processes()
            try:
                with urllib.request.urlopen(f"{self.base_url}{path}", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                if answering:
                    return
                last = str(exc)
            except OSError as exc:
                last = str(exc)
            time.sleep(0.5)
        raise RuntimeError(f"the stack did not become healthy in {timeout:.0f} s ({last})")

    def kill(self, name: str) -> list[int]:
        """SIGKILL a process' whole group at once (no warm shutdown); the pids that died."""
        process = self.processes.pop(name)
        pids = [p.pid for p in family(process.pid)] or [process.pid]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return pids

    def redis_pid(self) -> int | None:
        return devservices.redis_running(self.services.redis_dir)

    def kill_redis(self) -> None:
        os.kill(self.redis_pid(), signal.SIGKILL)

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

    def postgres_rss_mb(self) -> float:
        """RSS of the postmaster and all its backends (shared buffers counted once per process
        that touched them, so this overstates; PSS would be fairer but needs root)."""
        pid = self.postgres_pid()
        return sum(family_usage(pid)[0]) if pid else 0.0

    def stop_postgres(self) -> None:
        devservices.pg_stop(self.services.pgdata)  # pg_ctl stop -m fast

    def start_postgres(self) -> None:
        devservices.pg_start(self.services.pgdata, self.services.pg_port)

    def stop(self) -> None:
        if self.started_services.get("postgres") and self.postgres_pid() is None:
            self.start_postgres()  # a drill stopped it: start it so that it is stopped cleanly below
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop within 20 s: killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()
        if self.started_services:
            self.services.stop(self.started_services)
            self.started_services = {}


@contextlib.contextmanager
def running(prefix: str, keep: bool = False, stack_class=Stack, **options):
    """A started ``Stack`` in a fresh temporary directory; stopped (and the directory removed
    unless ``keep`` or the run failed: its process logs are for the post-mortem) on the way out."""
    work = Path(tempfile.mkdtemp(prefix=f"ticketwar-{prefix}-"))
    stack = stack_class(work, **options)
    failed = True
    try:
        yield stack
        failed = False
    finally:
        say("stopping the stack")
        stack.stop()
        if keep or failed:
            say(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
