"""The Locust benchmark, headless, in one command (``make loadtest``); docs/BENCHMARKS.md, "Load test".

    .venv/bin/python -m loadtests.run --users 500
    .venv/bin/python -m loadtests.run --users 1000 --spawn-rate 5

Starts its own stack (or uses ``DATABASE_URL`` / ``REDIS_URL`` when set), creates the students and
an event opening once all have logged in, runs Locust with ``loadtests/locustfile.py`` while
sampling every process' RSS and CPU, then reads the database, ``/metrics`` and the ratios of
``loadtests.ratios``, and writes ``docs/loadtest/<name>.json`` and ``.md`` and its section of
docs/BENCHMARKS.md (``--no-docs``: neither). Locust's HTML report only with ``--html PATH``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from loadtests.harness import invariants, report
from loadtests.harness.locust_report import SPIKE_SECONDS, client_figures, locust_stats, markdown
from loadtests.harness.stack import PYTHON, ROOT, Stack, family_usage, machine, running, say, scrape_metrics, versions
from tools import devservices


class MemorySampler(threading.Thread):
    """Once a second: RSS of each role (all its processes) and of its largest process, and CPU seconds."""

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
        first, last = (before[-1][2] if before else inside[0][2]), inside[-1][2]
        return {
            "seconds": round(inside[-1][0] - (before[-1][0] if before else inside[0][0]), 1),
            "cpu_seconds": {role: round(last[role] - first.get(role, 0), 1) for role in last},
            "cpu_percent_mean": round(sum(sample[1] for sample in inside) / len(inside), 1),
        }

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=5)


def metrics_figures(base_url: str) -> dict:
    """Cache hits and misses per key family from the Prometheus exposition."""
    families: dict[str, dict[str, float]] = {}
    for line in scrape_metrics(base_url, timeout=10).splitlines():
        match = re.match(r"^ticketwar_cache_requests_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)", line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
            family = families.setdefault(labels.get("family", "?"), {"hit": 0.0, "miss": 0.0})
            family[labels.get("result", "?")] = family.get(labels.get("result", "?"), 0.0) + float(match["value"])
    hits = sum(f.get("hit", 0) for f in families.values())
    misses = sum(f.get("miss", 0) for f in families.values())
    return {"cache_families": families, "cache_hit_ratio": hits / (hits + misses) if hits + misses else None}


def pg_sessions(database_url: str) -> int:
    """Sessions PostgreSQL has opened on this database so far (a connection costs a process)."""
    sql = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    return invariants.query(database_url, sql)[0]


def start_profilers(directory: str, roles: dict[str, int], duration: int) -> list[subprocess.Popen]:
    """py-spy (installed separately, for diagnosis only) on web and worker, raw stacks of GIL holders
    (threads waiting for a socket or for the GIL would drown where the Python CPU time goes)."""
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


def errors_in_logs(work: Path) -> dict[str, int]:
    """Tracebacks and ERROR lines per process log: a clean run has none."""
    counts = {}
    for log in work.glob("*.log"):
        text = log.read_text(errors="replace")
        counts[log.stem] = text.count("Traceback") + len(re.findall(r'"level": ?"(ERROR|CRITICAL)"', text))
    return counts


def run(args) -> dict:
    name = args.name or f"{args.users}-users"
    with running("loadtest", args.keep, private=False) as stack:
        return measure(args, name, stack)


def measure(args, name: str, stack: Stack) -> dict:
    work = stack.work
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
    results_path, csv_prefix = work / "locust-results.json", work / "locust"
    command = [
        PYTHON, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless",
        "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{duration}s", "--stop-timeout", "10",
        "--host", stack.base_url, *(["--html", args.html] if args.html else []), "--csv", str(csv_prefix),
        "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    locust_env = {
        **stack.env, "LOADTEST_EVENT": slug, "LOADTEST_CREDENTIALS": str(credentials),
        "LOADTEST_RESULTS": str(results_path), "LOADTEST_WS_FRACTION": str(args.ws_fraction),
    }  # fmt: skip
    database = stack.database_url
    sessions_before = pg_sessions(database)
    locust = stack.start_command("locust", shlex.join(["exec", *command]), locust_env)
    roles = {role: process.pid for role, process in stack.processes.items()}
    sampler = MemorySampler(roles)
    sampler.start()
    profilers: list[subprocess.Popen] = []
    if args.profile and args.profile_spike:
        # Only the opening: from 2 s before it for 30 s (the login phase is all PBKDF2).
        timer = threading.Timer(
            max(0.0, opens_in - 2), lambda: profilers.extend(start_profilers(args.profile, roles, 30))
        )
        timer.start()
    elif args.profile:
        profilers = start_profilers(args.profile, roles, duration)
    started = time.time()
    try:
        locust.wait()
    finally:
        sampler.stop()
    say(f"Locust finished after {time.time() - started:.0f} s (exit {locust.returncode})")
    sessions_during = pg_sessions(database) - sessions_before
    for profiler in profilers:
        profiler.wait(timeout=30)
    if not results_path.exists():
        raise RuntimeError(f"Locust wrote no results; see {work / 'locust.log'}")
    event = invariants.event_id(database, slug)
    invariants.wait_queue_empty(database, event, 60, fail=False)
    client_results = json.loads(results_path.read_text())
    figures = {
        "name": name,
        "command": report.command_line("loadtests.run"),
        "locust_command": shlex.join(command[1:]),
        "started_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "users": args.users, "spawn_rate": args.spawn_rate, "capacity": args.capacity, "opens_in": opens_in,
        "duration": duration, "ws_fraction": args.ws_fraction,
        "web_db_pool": args.web_db_pool if args.web_db_pool is not None else os.environ.get("DATABASE_POOL_SIZE", "0"),
        "web_threads": args.web_threads, "web_workers": args.web_workers, "web_server": "granian",
        "machine": machine(), "versions": versions(stack.env), "locust_exit": locust.returncode,
        "stats": locust_stats(Path(f"{csv_prefix}_stats.csv")),
        "client": client_figures(client_results),
        "metrics": metrics_figures(stack.base_url),
        "db": {**invariants.invariants(database, event), "decision_seconds": invariants.decisions(database, event)},
        "queue_left": invariants.live_rows(database, event),
        "pg_sessions_opened": sessions_during,
        "memory_mb": {
            "max_total": {k: round(v, 1) for k, v in sampler.max_total.items()},
            "max_single": {k: round(v, 1) for k, v in sampler.max_single.items()},
        },
        "cpu_seconds": {k: round(v, 1) for k, v in sampler.cpu_seconds.items()},
        "cpu_percent_mean": round(sum(sampler.cpu_percent) / len(sampler.cpu_percent), 1)
        if sampler.cpu_percent
        else None,
        "spike_cpu": sampler.window(client_results.get("opens_at") or 0, SPIKE_SECONDS),
        "errors_in_logs": errors_in_logs(work),
        "locust_cpu_warning": "CPU usage above" in (work / "locust.log").read_text(errors="replace"),
    }  # fmt: skip
    for key in ("first_claim_to_last_decision_seconds", "first_claim_to_sold_out_seconds"):
        figures["db"][key] = figures["db"]["decision_seconds"].pop(key)
    for key in ("last_claim_seconds", "first_decision_seconds"):
        figures["db"]["decision_seconds"].pop(key)
    if not args.no_ratios:
        say("measuring the ratios (pgbench, ticket_issue, cached endpoint vs /api/ping/)")
        ratios_out = work / "ratios.json"
        result = subprocess.run(
            [PYTHON, "-m", "loadtests.ratios", "--base-url", stack.base_url, "--event", slug,
             "--seconds", str(args.ratio_seconds), "--json", str(ratios_out)],
            env=stack.env, cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode == 0:
            figures["ratios"] = json.loads(ratios_out.read_text())
        else:
            figures["ratios_error"] = result.stderr.strip()[-1500:]
            say(f"ratios failed: {figures['ratios_error']}")
    text = markdown(figures)
    if not args.no_docs:
        out_dir = ROOT / "docs" / "loadtest"
        (out_dir / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str))
        (out_dir / f"{name}.md").write_text(text)
    figures["ok"] = locust.returncode in (0, 1)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = report.parser(__doc__)
    parser.add_argument("--users", type=int, default=500, help="concurrent students (default 500)")
    parser.add_argument("--spawn-rate", type=float, default=4.0, help="students arriving (logging in) per second")
    parser.add_argument("--capacity", type=int, default=500, help="seats of the event (default 500)")
    parser.add_argument("--opens-in", type=int, default=0, help="seconds until the window opens (default: logins + 40)")
    parser.add_argument("--after-open", type=int, default=60, help="seconds Locust keeps running after the opening")
    parser.add_argument("--ws-fraction", type=float, default=0.8, help="share of students watching by websocket")
    parser.add_argument("--ratio-seconds", type=int, default=6, help="length of each ratio measurement")
    parser.add_argument("--no-ratios", action="store_true", help="skip the ratio measurements")
    parser.add_argument("--name", default="", help="report name under docs/loadtest/ (default <users>-users)")
    parser.add_argument("--html", default="", help="also write Locust's HTML report (about 1 MB) to this file")
    parser.add_argument("--web-db-pool", type=int, default=None, help="DATABASE_POOL_SIZE for the web processes")
    parser.add_argument("--web-workers", type=int, default=2, help="web worker processes (WEB_CONCURRENCY)")
    parser.add_argument("--web-threads", type=int, default=8, help="HTTP threads per web process (WEB_THREADS)")
    parser.add_argument("--profile", default="", help="directory for py-spy profiles of web and worker (diagnosis)")
    parser.add_argument("--profile-spike", action="store_true", help="with --profile: only the 30 s around opening")
    args = parser.parse_args(argv)
    name = args.name or f"{args.users}-users"
    try:
        return report.main(args, run=run, markdown=markdown, section=f"loadtest:{name}")
    except (RuntimeError, devservices.ServiceError) as exc:
        say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
