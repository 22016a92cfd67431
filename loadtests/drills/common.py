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
DRILLS_HEADING = "## Failure drills"


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
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
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

    def stop(self) -> None:
        # Services first if they were taken away by a drill that failed half-way: stop() of the
        # parent class only stops what is running.
        super().stop()


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
                with urllib.request.urlopen(f"{self.base_url}/metrics", timeout=3) as response:  # noqa: S310
                    text = response.read().decode()
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


# --- the database truth ------------------------------------------------------------------------


def invariants(database_url: str, event_id: int) -> dict:
    """What must hold after any drill: nothing lost, nothing doubled."""
    import psycopg

    with psycopg.connect(dsn(database_url), autocommit=True) as conn:
        capacity, remaining = conn.execute(
            "SELECT capacity, remaining FROM events_event WHERE id = %s", [event_id]
        ).fetchone()
        tickets, holders = conn.execute(
            "SELECT count(*), count(DISTINCT user_id) FROM tickets_ticket WHERE event_id = %s AND status = 'active'",
            [event_id],
        ).fetchone()
        claimants = conn.execute(
            "SELECT count(DISTINCT user_id) FROM ticket_queue WHERE event_id = %s", [event_id]
        ).fetchone()[0]
        statuses = dict(
            conn.execute(
                "SELECT status || CASE WHEN reason <> '' THEN ':' || reason ELSE '' END, count(*) "
                "FROM ticket_queue WHERE event_id = %s GROUP BY 1 ORDER BY 1",
                [event_id],
            ).fetchall()
        )
        live = conn.execute(
            "SELECT count(*) FROM ticket_queue WHERE event_id = %s AND status IN ('pending', 'processing')",
            [event_id],
        ).fetchone()[0]
        completed_linked = conn.execute(
            "SELECT count(*) FROM ticket_queue q JOIN tickets_ticket t ON t.id = q.ticket_id "
            "WHERE q.event_id = %s AND q.status = 'completed' AND t.user_id = q.user_id AND t.status = 'active'",
            [event_id],
        ).fetchone()[0]
        max_attempts = conn.execute(
            "SELECT coalesce(max(attempts), 0) FROM ticket_queue WHERE event_id = %s", [event_id]
        ).fetchone()[0]
    expected = min(capacity, claimants)
    return {
        "capacity": capacity,
        "remaining": remaining,
        "claimants": claimants,
        "tickets": tickets,
        "holders": holders,
        "expected_tickets": expected,
        "queue": statuses,
        "live_entries": live,
        "completed_linked": completed_linked,
        "max_attempts": max_attempts,
        "ok": (
            tickets == expected
            and holders == tickets
            and remaining == capacity - tickets
            and live == 0
            and completed_linked == tickets
            and statuses.get("failed:error", 0) == 0
        ),
    }


def wait_queue_empty(database_url: str, event_id: int, timeout: float) -> float:
    """Seconds waited until no entry of the event is pending or processing (raises on timeout)."""
    import psycopg

    started = time.monotonic()
    while True:
        try:
            with psycopg.connect(dsn(database_url), autocommit=True, connect_timeout=3) as conn:
                live = conn.execute(
                    "SELECT count(*) FROM ticket_queue WHERE event_id = %s AND status IN ('pending', 'processing')",
                    [event_id],
                ).fetchone()[0]
        except psycopg.OperationalError:
            live = -1
        if live == 0:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{live} entries still live after {timeout:.0f} s")
        time.sleep(0.5)


def alerts_from_db(database_url: str, since: float) -> list[dict]:
    """Alert rows (monitoring.Alert) started since ``since`` (epoch seconds)."""
    import psycopg

    with psycopg.connect(dsn(database_url), autocommit=True) as conn:
        table = conn.execute("SELECT to_regclass('monitoring_alert')").fetchone()[0]
        if table is None:
            return []
        columns = {row[0] for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'monitoring_alert'"
        ).fetchall()}  # fmt: skip
        key = "key" if "key" in columns else "rule_id"
        rows = conn.execute(
            f"SELECT {key}, state, value, threshold, extract(epoch FROM started_at), "  # noqa: S608
            "extract(epoch FROM resolved_at) FROM monitoring_alert "
            "WHERE started_at >= to_timestamp(%s) ORDER BY started_at",
            [since],
        ).fetchall()
    return [
        {
            "rule": r[0],
            "state": r[1],
            "value": r[2],
            "threshold": r[3],
            "started_at": float(r[4]),
            "resolved_at": float(r[5]) if r[5] else None,
        }
        for r in rows
    ]


# --- report ------------------------------------------------------------------------------------


def clock(at: float | None, origin: float) -> str:
    if at is None:
        return "–"
    return f"{time.strftime('%H:%M:%S', time.gmtime(at))} (t{at - origin:+.0f} s)"


def alerts_table(received: list[dict], origin: float) -> list[str]:
    lines = [
        "| alert (webhook) | state | value | threshold | received at | signature |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for alert in received:
        value = alert.get("value")
        lines.append(
            f"| `{alert.get('rule', '?')}` | {alert.get('event', alert.get('state', '?'))} | {value} "
            f"| {alert.get('threshold')} "
            f"| {clock(alert['at'], origin)} | {'valid' if alert['valid_signature'] else 'INVALID'} |"
        )
    if not received:
        lines.append("| (none) | | | | | |")
    return lines


def machine_line() -> str:
    m = harness.machine()
    return (
        f"{m['cpus']} CPUs ({m['cpu']}), {m['ram_gb']} GB RAM, Python {m['python']}, Linux {m['kernel']}; "
        f"load generator, PostgreSQL, Redis, web, worker and beat on the same machine"
    )


def update_benchmarks(name: str, block: str, path: Path | None = None) -> None:
    """Put ``block`` between this drill's markers in the "Failure drills" section."""
    path = path or ROOT / "docs" / "BENCHMARKS.md"
    start, end = f"<!-- drill:{name}:start -->", f"<!-- drill:{name}:end -->"
    wrapped = f"{start}\n{block.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, _, rest = text.partition(start)
        _, _, after = rest.partition(end)
        text = before + wrapped + after
    elif DRILLS_HEADING in text:
        before, _, rest = text.partition(DRILLS_HEADING)
        match = re.search(r"^## ", rest[1:], flags=re.MULTILINE)
        cut = match.start() + 1 if match else len(rest)
        body, after = rest[:cut].rstrip(), rest[cut:]
        text = before + DRILLS_HEADING + body + "\n\n" + wrapped + "\n" + ("\n" + after if after else "")
    else:
        intro = (
            f"{DRILLS_HEADING}\n\nScripts in `loadtests/drills/`; each starts its own PostgreSQL, Redis, web "
            "(uvicorn, 2 workers), Celery worker and beat with the Procfile's command lines, breaks "
            "something on purpose, checks the database afterwards, and stops everything it started. "
            "`--quick` runs the same drill with tiny numbers (`loadtests/tests/test_drills.py`).\n"
        )
        text = text.rstrip() + "\n\n" + intro + "\n" + wrapped + "\n"
    path.write_text(text)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fmt_ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def run_loadclient(base_url: str, plan_path: Path, out_path: Path, log_path: Path) -> subprocess.Popen:
    """Start the constant-load client (gevent, its own process so it never patches this one)."""
    return subprocess.Popen(
        [PYTHON, str(ROOT / "loadtests" / "drills" / "loadclient.py"), "--base-url", base_url,
         "--plan", str(plan_path), "--out", str(out_path)],
        cwd=ROOT, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def summarise_requests(samples: list[list], windows: dict[str, tuple[float, float]]) -> list[dict]:
    """Per time window: requests, error rate (5xx and connection errors), statuses, p50/p95."""
    rows = []
    for name, (begin, end) in windows.items():
        if end <= begin:
            continue
        chosen = [s for s in samples if begin <= s[0] < end]
        statuses: dict[int, int] = {}
        for sample in chosen:
            statuses[sample[3]] = statuses.get(sample[3], 0) + 1
        errors = sum(n for code, n in statuses.items() if code >= 500 or code == 0)
        reads = [s[2] for s in chosen if s[1] != "claim"]
        claims = [s[2] for s in chosen if s[1] == "claim"]
        rows.append(
            {
                "window": name,
                "seconds": end - begin,
                "requests": len(chosen),
                "rps": len(chosen) / max(1e-6, end - begin),
                "errors": errors,
                "error_rate": errors / len(chosen) if chosen else 0.0,
                "statuses": dict(sorted(statuses.items())),
                "p50": percentile([s[2] for s in chosen], 0.5),
                "p95": percentile([s[2] for s in chosen], 0.95),
                "reads_p95": percentile(reads, 0.95),
                "claims_p95": percentile(claims, 0.95),
                "claims": len(claims),
            }
        )
    return rows


def requests_table(rows: list[dict]) -> list[str]:
    lines = [
        "| window | length | requests | req/s | errors (5xx + refused) | error rate | p50 ms | p95 ms "
        "| reads p95 ms | claims | claims p95 ms | statuses |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        codes = ", ".join(f"{'conn. error' if c == 0 else c}: {n}" for c, n in r["statuses"].items())
        lines.append(
            f"| {r['window']} | {r['seconds']:.0f} s | {r['requests']} | {r['rps']:.0f} | {r['errors']} "
            f"| {r['error_rate'] * 100:.2f} % | {fmt_ms(r['p50'])} | {fmt_ms(r['p95'])} | {fmt_ms(r['reads_p95'])} "
            f"| {r['claims']} | {fmt_ms(r['claims_p95'])} | {codes} |"
        )
    return lines


# --- claims seen by the client, checked against the table -------------------------------------


def build_plan(
    slug: str, sessions: list[dict], claim_times: list[float | None], start_at: float, seconds: float
) -> dict:
    students = [{**session, "claim_at": at} for session, at in zip(sessions, claim_times, strict=True)]
    return {"slug": slug, "start_at": start_at, "seconds": seconds, "students": students}


def accepted_claims(database_url: str, event_id: int, results: dict) -> dict:
    """Every claim the client saw accepted (200/202 with a queue id) must end decided in the table."""
    import psycopg

    accepted = {s["queue_id"]: s for s in results["students"] if s["queue_id"]}
    with psycopg.connect(dsn(database_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT public_id::text, status, reason, extract(epoch FROM created_at), extract(epoch FROM processed_at) "
            "FROM ticket_queue WHERE event_id = %s",
            [event_id],
        ).fetchall()
    by_id = {row[0]: row for row in rows}
    missing = [qid for qid in accepted if qid not in by_id]
    undecided = [qid for qid in accepted if qid in by_id and by_id[qid][1] not in ("completed", "failed")]
    seen_by_client = sum(1 for s in accepted.values() if s["decision"])
    disagree = [
        qid
        for qid, s in accepted.items()
        if s["decision"] and qid in by_id and s["decision"]["status"] != by_id[qid][1]
    ]
    clicks = [click for s in results["students"] for click in s["clicks"]]
    return {
        "accepted": len(accepted),
        "missing_in_table": len(missing),
        "undecided": len(undecided),
        "decided_seen_by_client": seen_by_client,
        "client_and_table_disagree": len(disagree),
        "clicks": len(clicks),
        "click_statuses": _count(click[1] for click in clicks),
        "students_clicking_more_than_once": sum(1 for s in results["students"] if len(s["clicks"]) > 1),
        "rows": [(float(r[3]), float(r[4]) if r[4] is not None else None, r[1], r[2]) for r in rows],
    }


def _count(values) -> dict:
    out: dict = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return dict(sorted(out.items()))


def delays_by_arrival(rows: list[tuple], windows: dict[str, tuple[float, float]]) -> list[str]:
    """Claim-to-decision time of queued claims, grouped by when they arrived."""
    lines = [
        "| claims queued | entries | decided | p50 s | p95 s | max s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, (begin, end) in windows.items():
        chosen = [r for r in rows if begin <= r[0] < end]
        waits = [r[1] - r[0] for r in chosen if r[1] is not None]
        p50, p95 = percentile(waits, 0.5), percentile(waits, 0.95)
        lines.append(
            f"| {name} | {len(chosen)} | {len(waits)} | {'–' if p50 is None else f'{p50:.1f}'} "
            f"| {'–' if p95 is None else f'{p95:.1f}'} | {f'{max(waits):.1f}' if waits else '–'} |"
        )
    return lines


def invariants_table(figures: dict) -> list[str]:
    q = ", ".join(f"{k}: {v}" for k, v in figures["queue"].items())
    return [
        "| capacity | distinct claimants | tickets | expected min(capacity, claimants) | one per student "
        "| remaining | entries still live | completed ↔ ticket | max attempts | queue outcomes | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {figures['capacity']} | {figures['claimants']} | {figures['tickets']} | {figures['expected_tickets']} "
        f"| {'yes' if figures['holders'] == figures['tickets'] else 'NO'} | {figures['remaining']} "
        f"| {figures['live_entries']} | {figures['completed_linked']} | {figures['max_attempts']} | {q} "
        f"| {'nothing lost or doubled' if figures['ok'] else '**BROKEN**'} |",
    ]


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


def count_rows(database_url: str, event_id: int, status: str) -> int:
    import psycopg

    with psycopg.connect(dsn(database_url), autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM ticket_queue WHERE event_id = %s AND status = %s", [event_id, status]
        ).fetchone()[0]


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every ``finally`` stops what the drill started."""

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
