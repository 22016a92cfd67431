"""The Procfile's processes, started as ``make run`` starts them: the one place tests and load tests
start, signal and stop them.

- ``procfile()``: the command line of each process type (web, ws, worker, beat)
- ``start(name, env)``: one of them, run by bash with the virtualenv's ``python`` first on PATH, in
  its own process group; ``stop``, ``kill``, ``freeze`` and ``thaw`` act on the whole group
- ``Processes``: several, by name (``web2`` is a second ``web``), with one environment
- ``Stack``: ``Processes`` on a private PostgreSQL and Redis (``tools.devservices``), migrated, with
  Django set up on them in this process (the load tests: students, sessions, events)
- ``run_nginx``: the shipped ``deploy/nginx/nginx.conf`` in front of local web and ws processes
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tools import devservices
from tools.devservices import free_port

ROOT = Path(__file__).resolve().parent.parent
# Settings a test run leaves in the environment: a stack's processes get its own.
OUTSIDE = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CACHE_REDIS_URL", "CHANNEL_REDIS_URL")


def procfile() -> dict[str, str]:
    """The Procfile's command line of each process type, as ``make run`` (honcho) starts them."""
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.strip().startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


def procfile_command(name: str) -> str:
    """The Procfile's command line of process type ``name`` (web, ws, worker, beat)."""
    try:
        return procfile()[name]
    except KeyError:
        raise KeyError(f"no {name} process in the Procfile") from None


def start(name: str, env: dict[str, str], *, args: str = "", command: str = "", output=None, **extra: str):
    """The Procfile's process ``name`` (``web2``: a second ``web``; ``command``: another command line
    in its place) with ``env`` and ``extra``, ``args`` appended to its command line; its output to
    ``output`` (a path, a file, DEVNULL; None: this process's). The ``subprocess.Popen``."""
    command = (command or procfile_command(name.rstrip("0123456789"))) + (f" {args}" if args else "")
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.environ.get('PATH', ''))}"
    stream = Path(output).open("w") if isinstance(output, str | Path) else output  # noqa: SIM115 - the child's
    return subprocess.Popen(
        ["bash", "-c", command],
        cwd=ROOT,
        env={**env, "PYTHONUNBUFFERED": "1", **extra, "PATH": path},
        stdout=stream,
        stderr=subprocess.STDOUT if stream is not None else None,
        start_new_session=True,
    )


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}) before listening on {port}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listened on {port} within {timeout:.0f} s")


def _signal(process: subprocess.Popen, signum: int) -> None:
    """``signum`` to the process's group if it leads one (the Procfile's processes do), else to it."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)


def stop(*processes: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM each process group (as honcho and ``docker stop`` do), SIGKILL those still there
    after ``timeout`` seconds."""
    for process in processes:
        if process.poll() is None:
            _signal(process, signal.SIGCONT)  # a frozen process cannot stop
            _signal(process, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill(process)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the whole group at once: no goodbye, no acknowledgement, no rollback by us."""
    _signal(process, signal.SIGKILL)
    process.wait()


def freeze(process: subprocess.Popen) -> None:
    """SIGSTOP the group: its connections stay open, nothing answers (a stalled VM, a GC pause)."""
    _signal(process, signal.SIGSTOP)


def thaw(process: subprocess.Popen) -> None:
    _signal(process, signal.SIGCONT)


def family(pid: int) -> list:
    """``pid`` and all its descendants (psutil processes; none if it is gone)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return []


def usage(pids) -> tuple[float, float]:
    """Resident memory (MB) and CPU seconds used so far by ``pids`` and their descendants."""
    import psutil

    rss = cpu = 0.0
    for process in (p for pid in pids for p in family(pid)):
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            rss += process.memory_info().rss / 2**20
            cpu += times.user + times.system
    return rss, cpu


class Processes:
    """Procfile processes started with one environment, by name; ``stop()`` ends them all.

    With ``logs`` (a directory) each writes ``<name>.log`` there; else to this process's output.
    """

    def __init__(self, env: dict[str, str], logs: Path | None = None) -> None:
        self.env, self.logs = env, logs
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *, args: str = "", command: str = "", **extra: str) -> subprocess.Popen:
        output = self.logs / f"{name}.log" if self.logs else None
        self.running[name] = start(name, self.env, args=args, command=command, output=output, **extra)
        return self.running[name]

    def serve(self, name: str, **extra: str) -> str:
        """Start web or ws (``name``) on a free port; its URL once it listens."""
        port = free_port()
        self.start(name, **{"WS_PORT" if name.startswith("ws") else "PORT": str(port)}, **extra)
        wait_for_port(port, self.running[name])
        return f"http://127.0.0.1:{port}"

    def pid(self, name: str) -> int:
        return self.running[name].pid

    def kill(self, name: str) -> None:
        kill(self.running.pop(name))

    def freeze(self, name: str) -> None:
        freeze(self.running[name])

    def thaw(self, name: str) -> None:
        thaw(self.running[name])

    def check(self) -> None:
        """Raise if one of them has exited."""
        for name, process in self.running.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}); see {self.logs}")

    def stop(self, name: str | None = None, timeout: float = 20) -> None:
        stop(*(self.running.pop(key) for key in ([name] if name else list(self.running))), timeout=timeout)


class Stack(Processes):
    """A load-test run's own PostgreSQL, Redis and Procfile processes in a temporary directory.

    ``with Stack("floor") as stack:`` starts the servers (durable, as under ``make run``), migrates,
    points this process's Django at them and sets it up, and on the way out stops everything it
    started; the logs are kept when the run failed or with ``keep``. Web is ``stack.base_url``,
    ws ``stack.ws_origin``; ``extra`` goes to every process.
    """

    def __init__(self, name: str, *, keep: bool = False, **extra: str) -> None:
        self.work = Path(tempfile.mkdtemp(prefix=f"ticketwar-{name}-"))
        super().__init__({}, logs=self.work)
        self.keep, self.extra = keep, extra
        self.services = devservices.Services(self.work / "data", free_port(), free_port())
        self.started: dict[str, bool] = {}
        self.port, self.ws_port = free_port(), free_port()
        self.base_url, self.ws_origin = f"http://127.0.0.1:{self.port}", f"ws://127.0.0.1:{self.ws_port}"
        self.metrics_token = secrets.token_urlsafe(32)

    def __enter__(self) -> Stack:
        for name in OUTSIDE:
            os.environ.pop(name, None)
        self.started = self.services.start()
        (self.work / "prometheus").mkdir()
        self.env = {
            **os.environ,
            **self.services.env(),
            "PROMETHEUS_MULTIPROC_DIR": str(self.work / "prometheus"),
            "METRICS_TOKEN": self.metrics_token,
            "CELERY_BEAT_SCHEDULE_FILE": str(self.work / "celerybeat-schedule"),
            "PORT": str(self.port),
            "WS_PORT": str(self.ws_port),
            "WEBSOCKET_ORIGIN": self.ws_origin,
            # Measured as in production: no debug bookkeeping of every query, quiet logs.
            "DEBUG": "false",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
            **self.extra,
        }
        try:
            self.prepare()
            self.manage("migrate", "--noinput", "-v", "0")
        except BaseException:
            self.__exit__(RuntimeError)
            raise
        # Nothing in this process has read the settings yet: they are the processes' settings.
        os.environ.update(self.env)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketwar.settings")
        import django

        django.setup()
        return self

    def __exit__(self, kind, *_exc) -> None:
        self.stop()
        # This process's revocation watcher (started by whatever it asked Django) outlives the
        # database it reads: its complaint once that is stopped would be about the harness, not the app.
        logging.getLogger("ticketwar.revocation").disabled = True
        if self.started.get("postgres") and self.postgres_pid() is None:
            self.start_postgres()  # a drill stopped it: started again to be stopped cleanly
        self.services.stop(self.started)
        if self.keep or kind is not None:
            print(f"logs kept in {self.work}", file=sys.stderr)
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    def prepare(self) -> None:
        """Called once the servers run and ``env`` is made, before anything uses them."""

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    def manage(self, *argv: str) -> str:
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *argv],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(argv)} failed: {result.stderr.strip()[-2000:]}")
        return result.stdout

    def wait_healthy(self, timeout: float = 60, *, url: str = "", green: bool = True) -> float:
        """Seconds until ``url``/healthz (web's by default) answers green (or, not ``green``, at all)."""
        started, deadline, last = time.monotonic(), time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            self.check()
            try:
                with urllib.request.urlopen(f"{url or self.base_url}/healthz", timeout=3) as response:  # noqa: S310
                    if not green or b'"green"' in response.read():
                        return time.monotonic() - started
            except urllib.error.HTTPError as exc:
                if not green:
                    return time.monotonic() - started
                last = str(exc)
            except OSError as exc:
                last = str(exc)
            time.sleep(0.5)
        raise RuntimeError(
            f"{url or self.base_url}/healthz not {'green' if green else 'answering'} in {timeout:.0f} s ({last})"
        )

    def postgres_pid(self) -> int | None:
        return devservices.pg_running(self.services.pgdata)

    def stop_postgres(self) -> None:
        devservices.pg_stop(self.services.pgdata)  # pg_ctl stop -m fast

    def start_postgres(self) -> None:
        devservices.pg_start(self.services.pgdata, self.services.pg_port)


@contextlib.contextmanager
def run_nginx(work: Path, *, web_port: int, ws_port: int):
    """The shipped ``deploy/nginx/nginx.conf`` on this machine, its upstreams the local web and ws
    processes, its pid file and logs in ``work``; yields ``(public port, internal port)`` (the
    internal listener serves /healthz and /metrics) and stops it after."""
    nginx, port, internal = shutil.which("nginx") or "/usr/sbin/nginx", free_port(), free_port()
    config = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    for old, new in (
        ("server web:8000;", f"server 127.0.0.1:{web_port};"),
        ("server ws:8001;", f"server 127.0.0.1:{ws_port};"),
        ("listen 8081;", f"listen 127.0.0.1:{internal};"),
        ("listen 80 ", f"listen 127.0.0.1:{port} "),
        ("pid /tmp/nginx.pid;", f"pid {work}/nginx.pid;"),
    ):
        assert old in config, old
        config = config.replace(old, new)
    (work / "logs").mkdir(exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(config)
    check = subprocess.run([nginx, "-t", "-p", str(work), "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [nginx, "-p", str(work), "-c", str(conf), "-g", "daemon off; error_log stderr warn;"], stdout=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, process, timeout=10)
        yield port, internal
    finally:
        process.terminate()
        process.wait(timeout=10)
