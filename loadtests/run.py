"""The Locust benchmark, headless, in one command (``make loadtest``).

    .venv/bin/python loadtests/run.py --users 500
    .venv/bin/python loadtests/run.py --users 1000 --spawn-rate 5

What it does, and undoes:

1. starts private PostgreSQL and Redis servers in a temporary directory (durable settings, as
   ``make run``; or uses ``DATABASE_URL`` / ``REDIS_URL`` when set), migrates, creates the
   students (``create_students --out``);
2. starts web (uvicorn, 2 workers), Celery worker and Celery beat with the Procfile's own
   command lines, ``PROMETHEUS_MULTIPROC_DIR`` in the temporary directory;
3. creates a fresh event ``lt-<timestamp>`` (``create_event --capacity 500 --opens-in N``, N
   long enough for every student to log in first) and runs Locust headless with
   ``loadtests/locustfile.py``, sampling the RSS of every process once a second;
4. waits for the queue to drain, then collects: requests/s and p50/p95/p99 per endpoint
   (Locust), reads and claims during the opening spike (raw samples), refusals per status code,
   the cache hit ratio (``/metrics``), claim-to-decision times (``ticket_queue``), memory, and
   the invariant: tickets issued == capacity, one per student;
5. measures the ratios of ``loadtests/ratios.py`` on the same, now idle, stack;
6. prints a markdown report, writes it to ``docs/loadtest/<name>.md`` (+ Locust's HTML report
   ``docs/loadtest/<name>.html`` and the raw figures ``<name>.json``) and updates its section in
   ``docs/BENCHMARKS.md``;
7. stops everything it started, also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtests import report  # noqa: E402
from ticketwar import devservices  # noqa: E402

PYTHON = sys.executable


def say(message: str) -> None:
    print(f"[loadtest] {message}", file=sys.stderr, flush=True)


def procfile() -> dict[str, str]:
    """The Procfile's command line of each process type (``make run`` and the benchmarks run these)."""
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.strip().startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


class Stack:
    """The servers and processes of one benchmark run; ``stop()`` undoes all of it."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.services = devservices.Services(work / "data", devservices.free_port(), devservices.free_port())
        self.started_services: dict[str, bool] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.port = devservices.free_port()
        self.ws_port = devservices.free_port()
        self.env: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_origin(self) -> str:
        """The ws process (websockets), as the pages are told under `make run`."""
        return f"ws://127.0.0.1:{self.ws_port}"

    def start_services(self) -> None:
        say("starting PostgreSQL and Redis")
        self.started_services = self.services.start()
        metrics_dir = self.work / "prometheus"
        metrics_dir.mkdir()
        self.env = {
            **os.environ,
            **self.services.env(),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "METRICS_TOKEN": METRICS_TOKEN,
            "CELERY_BEAT_SCHEDULE_FILE": str(self.work / "celerybeat-schedule"),
            "PORT": str(self.port),
            "WS_PORT": str(self.ws_port),
            "WEBSOCKET_ORIGIN": self.ws_origin,
            # Measured like production: no debug bookkeeping of every query, quiet logs.
            "DEBUG": "false",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
            "PATH": f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
        }

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
        """web, ws, worker and beat exactly as the Procfile (and so ``make run``) starts them.

        ``overrides`` adds environment variables to one process, e.g. ``{"web": {...}}``;
        ``only`` starts just those processes (call again for the others).
        """
        overrides = overrides or {}
        for name, command in procfile().items():
            if only is not None and name not in only:
                continue
            self.start_command(name, command, overrides.get(name))
        say(f"running {', '.join(self.processes)} (web on {self.base_url})")

    def start_command(self, name: str, command: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Run one shell command line as process ``name`` (its own process group, log in work/)."""
        log = (self.work / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            ["bash", "-c", command], env={**self.env, **(env or {})}, cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        return self.processes[name]

    def wait_healthy(self, timeout: float = 60, *, answering: bool = False) -> None:
        """Wait for ``/healthz`` to be green (or, with ``answering``, to answer at all)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({process.returncode}); see {self.work / (name + '.log')}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=2) as response:  # noqa: S310
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

    def stop(self) -> None:
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


def family_usage(pid: int) -> tuple[list[float], float]:
    """RSS in MB of ``pid`` and each of its descendants, and the CPU seconds they used in all."""
    import psutil

    try:
        parent = psutil.Process(pid)
        family = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return [], 0.0
    sizes, cpu = [], 0.0
    for process in family:
        try:
            sizes.append(process.memory_info().rss / 2**20)
            times = process.cpu_times()
            cpu += times.user + times.system
        except psutil.Error:
            continue
    return sizes, cpu


class MemorySampler(threading.Thread):
    """Once a second: RSS of each role (all its processes) and of the largest web process."""

    def __init__(self, roles: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.roles = roles
        self.max_total: dict[str, float] = {}
        self.max_single: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.cpu_percent: list[float] = []
        # (time, machine CPU %, {role: CPU seconds so far}) once a second: CPU spent per phase.
        self.timeline: list[tuple[float, float, dict[str, float]]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        psutil.cpu_percent(None)
        while not self._halt.wait(1.0):
            self.cpu_percent.append(psutil.cpu_percent(None))
            self.timeline.append((time.time(), self.cpu_percent[-1], {}))
            for role, pid in self.roles.items():
                sizes, cpu = family_usage(pid)
                if sizes:
                    self.max_total[role] = max(self.max_total.get(role, 0), sum(sizes))
                    self.max_single[role] = max(self.max_single.get(role, 0), max(sizes))
                    self.cpu_seconds[role] = max(self.cpu_seconds.get(role, 0), cpu)
                    self.timeline[-1][2][role] = cpu

    def window(self, start: float, seconds: float) -> dict:
        """CPU seconds each role used in ``[start, start + seconds]``, and the machine's mean CPU %."""
        inside = [sample for sample in self.timeline if start <= sample[0] <= start + seconds]
        before = [sample for sample in self.timeline if sample[0] < start]
        if not inside:
            return {}
        first = before[-1][2] if before else inside[0][2]
        last = inside[-1][2]
        return {
            "seconds": round(inside[-1][0] - (before[-1][0] if before else inside[0][0]), 1),
            "cpu_seconds": {role: round(last[role] - first.get(role, 0), 1) for role in last},
            "cpu_percent_mean": round(sum(sample[1] for sample in inside) / len(inside), 1),
        }

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


# --- figures from the database and /metrics ----------------------------------------------------


def db_figures(database_url: str, slug: str) -> dict:
    import psycopg

    dsn = database_url.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        event_id, capacity, remaining = conn.execute(
            "SELECT id, capacity, remaining FROM events_event WHERE slug = %s", [slug]
        ).fetchone()
        tickets, holders = conn.execute(
            "SELECT count(*), count(DISTINCT user_id) FROM tickets_ticket WHERE event_id = %s AND status = 'active'",
            [event_id],
        ).fetchone()
        statuses = dict(
            conn.execute(
                "SELECT status || CASE WHEN reason <> '' THEN ':' || reason ELSE '' END, count(*) "
                "FROM ticket_queue WHERE event_id = %s GROUP BY 1",
                [event_id],
            ).fetchall()
        )
        completed_with_ticket = conn.execute(
            "SELECT count(*) FROM ticket_queue q JOIN tickets_ticket t ON t.id = q.ticket_id "
            "WHERE q.event_id = %s AND q.status = 'completed' AND t.event_id = %s AND t.user_id = q.user_id",
            [event_id, event_id],
        ).fetchone()[0]
        delays = conn.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM processed_at - created_at)),"
            " max(extract(epoch FROM processed_at - created_at)), count(*)"
            " FROM ticket_queue WHERE event_id = %s AND processed_at IS NOT NULL",
            [event_id],
        ).fetchone()
        first_last = conn.execute(
            "SELECT min(created_at), max(processed_at) FROM ticket_queue WHERE event_id = %s", [event_id]
        ).fetchone()
        sold_out_at = conn.execute(
            "SELECT max(issued_at) FROM tickets_ticket WHERE event_id = %s", [event_id]
        ).fetchone()[0]
    percentiles = [float(v) for v in (delays[0] or [])]
    return {
        "event_id": event_id,
        "capacity": capacity,
        "remaining": remaining,
        "tickets": tickets,
        "holders": holders,
        "queue": statuses,
        "completed_with_ticket": completed_with_ticket,
        "decision_seconds": {
            "p50": percentiles[0] if percentiles else None,
            "p95": percentiles[1] if percentiles else None,
            "p99": percentiles[2] if percentiles else None,
            "max": float(delays[1]) if delays[1] is not None else None,
            "decided": delays[2],
        },
        "first_claim_to_last_decision_seconds": (first_last[1] - first_last[0]).total_seconds()
        if first_last[0] and first_last[1]
        else None,
        "first_claim_to_sold_out_seconds": (sold_out_at - first_last[0]).total_seconds()
        if sold_out_at and first_last[0]
        else None,
    }


def pg_sessions(database_url: str) -> int:
    """Sessions PostgreSQL has opened on this database so far (a connection costs a process)."""
    import psycopg

    dsn = database_url.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


def queue_live(database_url: str, slug: str) -> int:
    import psycopg

    dsn = database_url.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM ticket_queue q JOIN events_event e ON e.id = q.event_id "
            "WHERE e.slug = %s AND q.status IN ('pending', 'processing')",
            [slug],
        ).fetchone()[0]


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>[-+\deE.naNinf]+)")


# /metrics needs a bearer token (docs/MONITORING.md): one per run, given to the stack's processes.
METRICS_TOKEN = secrets.token_urlsafe(32)


def scrape_metrics(base_url: str, *, timeout: float) -> str:
    """The Prometheus text of ``base_url``/metrics, read with this run's token."""
    url = f"{base_url}/metrics"  # our own stack's http://127.0.0.1 URL
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return response.read().decode()


def metrics_figures(base_url: str) -> dict:
    """Cache hits and misses per key family from the Prometheus exposition."""
    text = scrape_metrics(base_url, timeout=10)
    families: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or match["name"] != "ticketwar_cache_requests_total":
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
        family = families.setdefault(labels.get("family", "?"), {"hit": 0.0, "miss": 0.0})
        family[labels.get("result", "?")] = family.get(labels.get("result", "?"), 0.0) + float(match["value"])
    hits = sum(f.get("hit", 0) for f in families.values())
    misses = sum(f.get("miss", 0) for f in families.values())
    return {
        "cache_families": families,
        "cache_hit_ratio": hits / (hits + misses) if hits + misses else None,
    }


# --- the run -----------------------------------------------------------------------------------


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import psutil

    return {
        "cpus": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def versions(env: dict[str, str]) -> dict:
    import psycopg
    import redis

    dsn = env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        postgres = conn.execute("SHOW server_version").fetchone()[0]
    client = redis.Redis.from_url(env["REDIS_URL"])
    redis_version = client.info("server").get("redis_version")
    client.close()
    return {"postgresql": postgres, "redis": redis_version}


def run(args: argparse.Namespace) -> dict:
    name = args.name or f"{args.users}-users"
    out_dir = ROOT / "docs" / "loadtest"
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ticketwar-loadtest-"))
    stack = Stack(work)
    sampler: MemorySampler | None = None
    locust: subprocess.Popen | None = None
    try:
        stack.start_services()
        say("migrating and creating students")
        stack.manage("migrate", "--noinput", "-v", "0")
        credentials = work / "students.csv"
        stack.manage("create_students", "--count", str(args.users), "--out", str(credentials))
        web_env = {"DATABASE_POOL_SIZE": str(args.web_db_pool)} if args.web_db_pool is not None else {}
        web_env.update({"WEB_THREADS": str(args.web_threads), "WEB_CONCURRENCY": str(args.web_workers)})
        stack.start_processes({"web": web_env})
        stack.wait_healthy()
        # Everyone logs in before the window opens (a login costs ~0.25 s of CPU: PBKDF2).
        opens_in = args.opens_in or math.ceil(args.users / args.spawn_rate) + 40
        duration = opens_in + args.after_open
        slug = f"lt-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        stack.manage("create_event", "--slug", slug, "--capacity", str(args.capacity), "--opens-in", str(opens_in))
        say(f"event {slug}: {args.capacity} seats, opens in {opens_in} s; Locust runs {duration} s")
        results_path = work / "locust-results.json"
        csv_prefix = work / "locust"
        command = [
            PYTHON, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless",
            "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{duration}s", "--stop-timeout", "10",
            "--host", stack.base_url, "--html", str(out_dir / f"{name}.html"), "--csv", str(csv_prefix),
            "--only-summary", "--loglevel", "WARNING",
        ]  # fmt: skip
        locust_env = {
            **stack.env,
            "LOADTEST_EVENT": slug,
            "LOADTEST_CREDENTIALS": str(credentials),
            "LOADTEST_RESULTS": str(results_path),
            "LOADTEST_WS_FRACTION": str(args.ws_fraction),
        }
        sessions_before = pg_sessions(stack.env["DATABASE_URL"])
        locust_log = (work / "locust.log").open("w")
        locust = subprocess.Popen(command, env=locust_env, cwd=ROOT, stdout=locust_log, stderr=subprocess.STDOUT)
        roles = {name: process.pid for name, process in stack.processes.items()}
        roles["locust"] = locust.pid
        sampler = MemorySampler(roles)
        sampler.start()
        profilers: list[subprocess.Popen] = []
        if args.profile and args.profile_spike:
            # Only the opening: from 2 s before it for 30 s (the login phase is all PBKDF2).
            timer = threading.Timer(
                max(0.0, opens_in - 2), lambda: profilers.extend(_start_profilers(args.profile, roles, 30))
            )
            timer.start()
        elif args.profile:
            profilers = _start_profilers(args.profile, roles, duration)
        started = time.time()
        locust.wait()
        sampler.stop()
        say(f"Locust finished after {time.time() - started:.0f} s (exit {locust.returncode})")
        sessions_during = pg_sessions(stack.env["DATABASE_URL"]) - sessions_before
        for profiler in profilers:
            profiler.wait(timeout=30)
        if not results_path.exists():
            raise RuntimeError(f"Locust wrote no results; see {work / 'locust.log'}:\n" + _tail(work / "locust.log"))
        deadline = time.monotonic() + 60
        while queue_live(stack.env["DATABASE_URL"], slug) and time.monotonic() < deadline:
            time.sleep(1)
        client_results = json.loads(results_path.read_text())
        figures = {
            "name": name,
            "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "loadtests/run.py", *sys.argv[1:]]),
            "locust_command": " ".join(shlex.quote(a) for a in command[1:]),
            "started_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "users": args.users,
            "spawn_rate": args.spawn_rate,
            "capacity": args.capacity,
            "opens_in": opens_in,
            "duration": duration,
            "ws_fraction": args.ws_fraction,
            "web_db_pool": args.web_db_pool
            if args.web_db_pool is not None
            else os.environ.get("DATABASE_POOL_SIZE", "0"),
            "web_threads": args.web_threads,
            "web_workers": args.web_workers,
            "machine": machine(),
            "versions": versions(stack.env),
            "locust_exit": locust.returncode,
            "stats": report.locust_stats(Path(f"{csv_prefix}_stats.csv")),
            "client": report.client_figures(client_results),
            "metrics": metrics_figures(stack.base_url),
            "db": db_figures(stack.env["DATABASE_URL"], slug),
            "queue_left": queue_live(stack.env["DATABASE_URL"], slug),
            "pg_sessions_opened": sessions_during,
            "memory_mb": {
                "max_total": {k: round(v, 1) for k, v in sampler.max_total.items()},
                "max_single": {k: round(v, 1) for k, v in sampler.max_single.items()},
            },
            "cpu_seconds": {k: round(v, 1) for k, v in sampler.cpu_seconds.items()},
            "cpu_percent_mean": round(sum(sampler.cpu_percent) / len(sampler.cpu_percent), 1)
            if sampler.cpu_percent
            else None,
            "spike_cpu": sampler.window(client_results.get("opens_at") or 0, report.SPIKE_SECONDS),
            "errors_in_logs": _errors_in_logs(work),
            "locust_cpu_warning": "CPU usage above" in (work / "locust.log").read_text(errors="replace"),
        }
        if not args.no_ratios:
            say("measuring the ratios (pgbench, ticket_issue, cached endpoint vs /api/ping/)")
            ratios_out = work / "ratios.json"
            result = subprocess.run(
                [PYTHON, str(ROOT / "loadtests" / "ratios.py"), "--base-url", stack.base_url, "--event", slug,
                 "--seconds", str(args.ratio_seconds), "--out", str(ratios_out)],
                env=stack.env, cwd=ROOT, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if result.returncode == 0:
                figures["ratios"] = json.loads(ratios_out.read_text())
            else:
                figures["ratios_error"] = result.stderr.strip()[-1500:]
                say(f"ratios failed: {figures['ratios_error']}")
        (out_dir / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str))
        markdown = report.markdown(figures)
        (out_dir / f"{name}.md").write_text(markdown)
        if not args.no_docs:
            report.update_benchmarks(ROOT / "docs" / "BENCHMARKS.md", name, markdown)
        print(markdown)
        return figures
    finally:
        if locust is not None and locust.poll() is None:
            locust.terminate()
            try:
                locust.wait(timeout=15)
            except subprocess.TimeoutExpired:
                locust.kill()
        if sampler is not None:
            sampler.stop()
        say("stopping the stack")
        stack.stop()
        if args.keep:
            say(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _start_profilers(directory: str, roles: dict[str, int], duration: int) -> list[subprocess.Popen]:
    """py-spy (installed separately, for diagnosis only) on web and worker, collapsed stacks."""
    py_spy = shutil.which("py-spy", path=str(Path(PYTHON).parent)) or shutil.which("py-spy")
    if not py_spy:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    Path(directory).mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(roles[role]),
                "--subprocesses",
                "--nonblocking",
                # Samples of threads holding the GIL only: where the Python CPU time goes (threads
                # waiting for a socket or for the GIL would drown it).
                "--gil",
                "--format",
                "raw",
                "--rate",
                "50",
                "--duration",
                str(duration),
                "-o",
                str(Path(directory) / f"{role}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for role in ("web", "worker")
    ]


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _errors_in_logs(work: Path) -> dict[str, int]:
    """Tracebacks and ERROR lines per process log: a clean run has none."""
    counts = {}
    for log in work.glob("*.log"):
        text = log.read_text(errors="replace")
        counts[log.stem] = text.count("Traceback") + len(re.findall(r'"level": ?"(ERROR|CRITICAL)"', text))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500, help="concurrent students (default 500)")
    parser.add_argument("--spawn-rate", type=float, default=4.0, help="students arriving (logging in) per second")
    parser.add_argument("--capacity", type=int, default=500, help="seats of the event (default 500)")
    parser.add_argument(
        "--opens-in", type=int, default=0, help="seconds until the window opens (default: time to log everyone in + 40)"
    )
    parser.add_argument("--after-open", type=int, default=60, help="seconds Locust keeps running after the opening")
    parser.add_argument(
        "--ws-fraction",
        type=float,
        default=0.8,
        help="share of students watching the queue by websocket (the others poll, as when a network blocks them)",
    )
    parser.add_argument("--ratio-seconds", type=int, default=6, help="length of each ratio measurement")
    parser.add_argument("--no-ratios", action="store_true", help="skip the ratio measurements")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/BENCHMARKS.md")
    parser.add_argument("--name", default="", help="report name under docs/loadtest/ (default <users>-users)")
    parser.add_argument(
        "--web-db-pool", type=int, default=None, help="DATABASE_POOL_SIZE for the web processes (0: no pool)"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="uvicorn worker processes (WEB_CONCURRENCY)")
    parser.add_argument("--web-threads", type=int, default=8, help="HTTP threads per web process (WEB_THREADS)")
    parser.add_argument("--profile-spike", action="store_true", help="with --profile: only the 30 s around opening")
    parser.add_argument("--profile", default="", help="directory for py-spy profiles of web and worker (diagnosis)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory with the process logs")
    args = parser.parse_args(argv)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        figures = run(args)
    except KeyboardInterrupt:
        say("interrupted; everything started was stopped")
        return 130
    except (RuntimeError, devservices.ServiceError) as exc:
        say(f"error: {exc}")
        return 1
    return 0 if figures.get("locust_exit") in (0, 1) else 1


if __name__ == "__main__":
    sys.exit(main())
