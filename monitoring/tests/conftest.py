"""Fixtures of the monitoring tests: loopback HTTP receivers and the seeded alert rules."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import time
from dataclasses import dataclass, field

import pytest


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    fail_next: int = 0  # answer this many requests with 500 before accepting

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.requests)


@pytest.fixture
def http_receiver():
    """A real HTTP server on 127.0.0.1 recording every POST; stops at teardown (or after 120 s)."""
    state: dict = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            encoding = self.headers.get("Content-Encoding")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "br":  # Sentry's SDK prefers brotli when the module is installed
                import brotli

                body = brotli.decompress(body)
            receiver: Receiver = state["receiver"]
            if receiver.fail_next > 0:
                receiver.fail_next -= 1
                self.send_response(500)
                self.end_headers()
                return
            receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    watchdog = threading.Timer(120, server.shutdown)
    watchdog.daemon = True
    watchdog.start()
    yield state["receiver"]
    watchdog.cancel()
    server.shutdown()
    server.server_close()


@pytest.fixture
def alert_rules(db):
    from monitoring.alerts import alert_rules_ensure_defaults
    from monitoring.models import AlertRule

    alert_rules_ensure_defaults()
    return {rule.metric: rule for rule in AlertRule.objects.all()}


@pytest.fixture(autouse=True)
def _fresh_monitoring_state():
    from common.breaker import all_breakers
    from monitoring import activity, collectors, recorder

    with recorder._lock:
        recorder._stats.clear()
        recorder._errors.clear()
    with activity._lock:
        activity._last_touch.clear()
    for breaker in all_breakers().values():
        breaker.reset()
    collectors.forget_cached()
    yield
