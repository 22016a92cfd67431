"""Control of the test run's real Redis server: kill it, hang it, bring it back.

``python -m ticketwar.devservices test`` starts a private Redis whose pid file is
``$TICKETWAR_TEST_DATA_DIR/redis/redis.pid``. The fixture always leaves that Redis running
(and every circuit breaker closed) at teardown, so later tests are unaffected.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest


class RedisControl:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.dir = data_dir / "redis"
        self.port = port
        self.stopped = False

    @property
    def pid(self) -> int | None:
        from ticketwar.devservices import redis_running

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
        from ticketwar.devservices import redis_start

        if self.pid:
            return
        redis_start(self.dir, self.port, persistent=False)

    def restore(self) -> None:
        self.resume()
        if not self.pid:
            self.restart()


def reset_redis_state() -> None:
    from ticketwar.lib import cache as lib_cache
    from ticketwar.lib.breaker import all_breakers
    from ticketwar.lib.ratelimit import memory_limiter

    for breaker in all_breakers().values():
        breaker.reset()
    memory_limiter.clear()
    with lib_cache._pending_lock:
        lib_cache._pending_invalidations.clear()


@pytest.fixture
def redis_server():
    data_dir = os.environ.get("TICKETWAR_TEST_DATA_DIR")
    if not data_dir:
        pytest.fail("run the tests through `python -m ticketwar.devservices test` (it owns the test Redis)")
    port = urlparse(os.environ["REDIS_URL"]).port
    control = RedisControl(Path(data_dir), port)
    reset_redis_state()
    yield control
    control.restore()
    reset_redis_state()
    # Connections in the pool point at the old (dead or stopped) server: drop them.
    from django_redis import get_redis_connection

    get_redis_connection("default").connection_pool.disconnect()


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_redis_state()
    yield
    reset_redis_state()
