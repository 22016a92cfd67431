"""Constant-load client for the drills: logged-in students on the event page who claim once.

    python -m loadtests.drills.loadclient --base-url URL --plan plan.json --out results.json

One gevent process (lighter than Locust; the drill hands it ready sessions). Each student, like
``static/js/event.js`` and ``queue.js`` with websockets blocked, re-reads the event every 5 s,
claims at its ``claim_at`` (a 5xx or no answer clicked again after 2-4 s), then polls its entry
every 1-2 s until decided. Plan: ``{slug, start_at, seconds, students: [{user_id, session, csrf,
claim_at}]}``; output: every request as ``[epoch, kind, ms, status]`` (0: no answer) and each
student's clicks and decision.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

import gevent  # noqa: E402

EVENT_POLL_SECONDS = 5.0
QUEUE_POLL_SECONDS = (1.0, 2.0)
CLAIM_RETRY_SECONDS = (2.0, 4.0)
MAX_CLAIM_CLICKS = 20
DECIDED = {"completed", "failed"}


class Student:
    def __init__(self, host: str, port: int, slug: str, spec: dict, samples: list, end: float) -> None:
        self.host, self.port, self.slug = host, port, slug
        self.spec = spec
        self.samples = samples
        self.end = end
        self.conn: http.client.HTTPConnection | None = None
        self.cookie = f"sessionid={spec['session']}; csrftoken={spec['csrf']}"
        self.clicks: list[list] = []
        self.queue_id: str | None = None
        self.decision: dict | None = None

    def request(self, kind: str, method: str, path: str) -> tuple[int, dict | None]:
        headers = {"Cookie": self.cookie, "Accept": "application/json"}
        body = None
        if method == "POST":
            headers.update({"X-CSRFToken": self.spec["csrf"], "Content-Type": "application/json"})
            body = "{}"
        started = time.time()
        status, payload = 0, None
        # A kept-alive connection the server (or a proxy in front) has just closed as idle is
        # retried once on a new one, as browsers do; a refused or
        # failed fresh connection is an error.
        for reused in (self.conn is not None, False):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
                status = response.status
                if raw[:1] in (b"{", b"["):
                    try:
                        payload = json.loads(raw)
                    except ValueError:
                        payload = None
                break
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if not reused:
                    break
        self.samples.append([started, kind, (time.time() - started) * 1000, status])
        return status, payload

    def run(self, start_at: float) -> None:
        gevent.sleep(max(0.0, start_at - time.time()) + random.uniform(0, EVENT_POLL_SECONDS))
        self.request("event_page", "GET", f"/events/{self.slug}/")
        claim_at = self.spec.get("claim_at")
        claim_time = start_at + claim_at if claim_at is not None else None
        next_poll = time.time()
        claiming = claim_time is not None
        while time.time() < self.end:
            now = time.time()
            if claiming and now >= claim_time:
                status, payload = self.request("claim", "POST", f"/api/events/{self.slug}/claim/")
                self.clicks.append([now, status])
                if status in (200, 202) and payload and payload.get("queue_id"):
                    self.queue_id = str(payload["queue_id"])
                    claiming = False
                    self.watch()
                    next_poll = time.time() + EVENT_POLL_SECONDS
                elif (status >= 500 or status == 0) and len(self.clicks) < MAX_CLAIM_CLICKS:
                    claim_time = time.time() + random.uniform(*CLAIM_RETRY_SECONDS)
                else:
                    claiming = False
                continue
            if now >= next_poll:
                self.request("event_api", "GET", f"/api/events/{self.slug}/")
                next_poll = time.time() + EVENT_POLL_SECONDS
            wake = min(next_poll, claim_time if claiming else next_poll, self.end)
            gevent.sleep(max(0.01, wake - time.time()))

    def watch(self) -> None:
        while time.time() < self.end:
            gevent.sleep(random.uniform(*QUEUE_POLL_SECONDS))
            status, payload = self.request("queue_status", "GET", f"/api/queue/{self.queue_id}/")
            if status == 200 and payload and payload.get("status") in DECIDED:
                self.decision = {"at": time.time(), "status": payload["status"], "reason": payload.get("reason")}
                if payload["status"] == "completed":
                    self.request("my_tickets", "GET", "/api/me/tickets/")
                return

    def result(self) -> dict:
        return {
            "user_id": self.spec["user_id"],
            "clicks": self.clicks,
            "queue_id": self.queue_id,
            "decision": self.decision,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    plan = json.loads(open(args.plan).read())  # noqa: SIM115
    url = urlparse(args.base_url)
    samples: list[list] = []
    start_at = plan["start_at"]
    end = start_at + plan["seconds"]
    students = [Student(url.hostname, url.port, plan["slug"], spec, samples, end) for spec in plan["students"]]
    gevent.joinall([gevent.spawn(student.run, start_at) for student in students], timeout=plan["seconds"] + 120)
    with open(args.out, "w") as handle:
        json.dump({"samples": samples, "students": [s.result() for s in students]}, handle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
