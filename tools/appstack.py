"""The app as separate real processes (uvicorn web, Celery worker) with an environment of the
test's choosing, and a logged-in student speaking to them over HTTP and a websocket.

For tests that change how the app reaches its servers (three Redis roles, TLS, Sentinel,
PgBouncer): the settings are read from the environment at start, as in production, so only a
process started with that environment shows what those settings do.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from dataclasses import dataclass, field

from loadtests.harness.fixtures import Student, read_until  # noqa: F401 - shared with the drills
from tools import devservices
from tools.testing import ROOT, free_port, stop_processes


@dataclass
class AppProcesses:
    """Web and worker processes started with ``env``; ``stop()`` ends them all."""

    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)
    base_url: str = ""

    def start_web(self) -> str:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "ticketwar.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--lifespan", "off", "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env=self.env,
        )  # fmt: skip
        self.processes.append(process)
        if not devservices._wait_port(port, 30) or process.poll() is not None:
            raise RuntimeError("uvicorn did not start within 30 s")
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    def start_worker(self, *, concurrency: int = 2) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ticketwar", "worker", "-Q", "claims,default",
             "--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
             "-n", f"roles{len(self.processes)}_{secrets.token_hex(3)}@%h"],
            cwd=ROOT, env=self.env,
        )  # fmt: skip
        self.processes.append(process)
        return process

    def stop(self) -> None:
        stop_processes(self.processes, timeout=15)


class RedisServers:
    """Extra real Redis servers (the embedded binary) under ``root``; ``stop()`` ends them."""

    def __init__(self, root) -> None:
        self.root = root
        self.dirs: list = []

    def start(self, name: str) -> str:
        rdir = self.root / f"redis-{name}"
        port = free_port()
        devservices.redis_start(rdir, port, persistent=False)
        self.dirs.append(rdir)
        return f"redis://127.0.0.1:{port}/0"

    def stop_one(self, index: int) -> None:
        devservices.redis_stop(self.dirs[index])

    def stop(self) -> None:
        for rdir in self.dirs:
            devservices.redis_stop(rdir)


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
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(f"probe failed: {result.stderr[-2000:]}")
    return json.loads(lines[-1])
