"""A loopback receiver of the alert webhooks (signature checked), and waiting for what it receives."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from loadtests.harness.report import clock, table
from loadtests.harness.stack import say

WEBHOOK_SECRET = "drill-webhook-secret"  # noqa: S105 (a loopback receiver of the drill)


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
                message = self.headers.get("X-Ticketwar-Timestamp", "").encode() + b"." + body
                expected = "sha256=" + hmac.new(receiver.secret.encode(), message, hashlib.sha256).hexdigest()
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"unparsable": body[:200].decode(errors="replace")}
                valid = hmac.compare_digest(expected, self.headers.get("X-Ticketwar-Signature", ""))
                receiver.received.append({"at": time.time(), "valid_signature": valid, **payload})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def env(self) -> dict[str, str]:
        url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        return {"ALERT_WEBHOOK_URL": url, "ALERT_WEBHOOK_SECRET": self.secret}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, prefix: str, state: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for alert in self.received:
                if str(alert.get("rule", "")).startswith(prefix) and alert.get("event", alert.get("state")) == state:
                    return True
            time.sleep(0.5)
        return False

    def settle(self, event_id: int, timeout: float) -> float | None:
        """Cancel the drill's event and wait until every alert that fired has resolved.

        Cancelling takes the event off the remaining-tickets list, which resolves its alert at the
        next evaluation; the latency and error-rate alerts resolve once their 5-minute window is
        clear for the rule's cooldown. Returns when the event was cancelled (None: not waited).
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
            fired = {a.get("rule") for a in self.received if a.get("event") == "firing"}
            if fired and fired <= {a.get("rule") for a in self.received if a.get("event") == "resolved"}:
                break
            time.sleep(2)
        return cancelled


def alerts_table(received: list[dict], origin: float) -> list[str]:
    rows = [
        f"| `{a.get('rule', '?')}` | {a.get('event', a.get('state', '?'))} | {a.get('value')} | {a.get('threshold')} "
        f"| {clock(a['at'], origin)} | {'valid' if a['valid_signature'] else 'INVALID'} |"
        for a in received
    ]
    return table(
        "alert (webhook) | state | value | threshold | received at | signature", rows or ["| (none) | | | | | |"]
    )
