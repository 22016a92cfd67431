"""Students for Locust, the one load generator: a benchmark writes a plan, ``Shape`` runs it.

The plan (JSON at ``LOADTEST_PLAN``) names its ``kind``, its ``users`` and their ``spawn_rate``;
the run ends once every user is done or after ``limit`` seconds. What Locust's statistics do not
keep goes to ``LOADTEST_OUT`` (JSON): every request ``[sent at, name, ms, status]`` (0: no
answer), what each student was told, and the ``marks`` (moments, with the server's CPU seconds:
the processes ``server`` names, read from /proc).

- ``opening``: the day of the ticket war. A student logs in with the form, opens the event page and
  re-reads the event every 5 s (``static/js/event.js``), claims 0.2-1.5 s after the opening,
  watches the entry (``ws_fraction`` of them by websocket as ``static/js/queue.js``, the others
  polling every 1-2 s) and opens the ticket; those left without a seat keep the event page open.
- ``war``: logged-in students re-read the event every ``poll`` s, claim at their ``claim_at``
  (again 2-4 s after a 5xx or no answer), poll the entry until decided, and once ``final_file``
  exists (the drill has healed every fault) ask what they hold (``/api/me/tickets/``).
- ``stream``: each user a keep-alive connection sending the next of ``requests`` (method, path,
  session) for ``seconds``, or each request once.
- ``spike``: each student claims once within ``spread`` s of one moment: on a new connection, or
  (``kept_alive``) on one used once before; with ``idle``, holding that many more, used once and
  left idle (a phone's browser keeps several to the host), until everyone has been answered.
- ``sockets``: each student watches its queue entry by websocket, open until everyone has heard.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import random
import time
from collections import Counter
from datetime import datetime
from urllib.parse import urlparse

import gevent
import websocket  # websocket-client; cooperative under Locust's gevent monkey patching
from gevent.event import Event
from locust import FastHttpUser, LoadTestShape, events, task
from locust.contrib.fasthttp import FastHttpSession
from locust.exception import StopUser

from tools.stack import usage

PLAN = json.loads(open(os.environ["LOADTEST_PLAN"]).read()) if os.environ.get("LOADTEST_PLAN") else {}  # noqa: SIM115
DECIDED = {"completed", "failed"}
CLAIM = "POST /api/events/[slug]/claim/"
SAMPLES: list[list] = []
STUDENTS: list[dict] = []
MARKS: dict = {}
COUNTS: Counter = Counter()


def mark(name: str) -> None:
    """The moment ``name`` (epoch) and the server's CPU seconds so far."""
    rss, cpu = usage(PLAN.get("server", []))
    MARKS[name] = {"at": time.time(), "server_cpu_s": cpu, "server_rss_mb": rss}


class Together:
    """Every user of the plan arrives (``arrive``), then all go on at once; the moment is marked."""

    def __init__(self, name: str) -> None:
        self.name, self.count, self.event = name, 0, Event()

    def arrive(self, timeout: float | None = None) -> None:
        self.count += 1
        if self.count == PLAN["users"]:
            mark(self.name)
            self.event.set()
        self.event.wait(timeout)


ALL_WARM, ALL_DONE = Together("go"), Together("done")


@events.request.add_listener
def _record(request_type, name, response_time, start_time=None, response=None, **_kwargs):
    status = getattr(response, "status_code", 0) or 0
    SAMPLES.append([round(start_time or time.time(), 3), name, round(response_time, 2), status])


@events.quitting.add_listener
def _write(**_kwargs) -> None:
    if os.environ.get("LOADTEST_OUT"):
        results = {"samples": SAMPLES, "students": STUDENTS, "marks": MARKS, "counts": dict(COUNTS)}
        with open(os.environ["LOADTEST_OUT"], "w") as out:
            json.dump(results, out)


class Shape(LoadTestShape):
    """The plan's users at its spawn rate, until each is done (``ALL_DONE``) or ``limit`` s."""

    def tick(self):
        if ALL_DONE.event.is_set() or self.get_run_time() > PLAN.get("limit", 600):
            return None
        return PLAN["users"], PLAN["spawn_rate"], [KINDS[PLAN["kind"]]]


def headers(session: dict | None, method: str = "GET", csrf: str = "") -> dict:
    """A logged-in student's API request: ``session`` (its ``sessionid`` and CSRF secret), or
    none (the cookies the login form left, and their ``csrf``)."""
    sent = {"Accept": "application/json"}
    if session:
        sent["Cookie"] = f"sessionid={session['session']}; csrftoken={session['csrf']}"
    if method == "POST":
        sent.update({"X-CSRFToken": session["csrf"] if session else csrf, "Content-Type": "application/json"})
    return sent


def healed() -> bool:
    return os.path.exists(PLAN.get("final_file") or "")


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Student(FastHttpUser):
    abstract = True
    network_timeout, connection_timeout = 60.0, 30.0
    sessions = iter(PLAN.get("sessions", []))

    def on_start(self) -> None:
        self.session = next(self.sessions, None)
        self.told = {"user_id": (self.session or {}).get("user_id"), "clicks": [], "queue_id": None, "decision": None}
        STUDENTS.append(self.told)

    def call(self, method: str, path: str, name: str, **options) -> tuple[int, dict | list]:
        """One request (its answer judged by the caller, never by Locust): status and JSON body."""
        with self.client.request(method, path, name=name, catch_response=True, **options) as response:
            response.success()
            try:
                return response.status_code, response.json() if response.content else {}
            except (ValueError, TypeError):
                return response.status_code, {}

    def api(self, method: str, path: str, name: str) -> tuple[int, dict | list]:
        sent = headers(self.session, method, self.cookie("csrftoken"))
        return self.call(method, path, name, headers=sent, data="{}" if method == "POST" else None)

    def cookie(self, name: str) -> str:
        return next((c.value for c in self.client.cookiejar if c.name == name), "")

    def wait_time(self) -> float:
        return 1.0

    def watch(self, queue_id: str, until: float) -> dict | None:
        """Poll the entry every 1-2 s until decided (or ``until``, or healed); a 429 waits as told."""
        while time.time() < until and not healed():
            status, entry = self.api("GET", f"/api/queue/{queue_id}/", "GET /api/queue/[id]/")
            if status == 200 and entry.get("status") in DECIDED:
                return entry
            gevent.sleep(float(entry.get("retry_after", 0)) if status == 429 else random.uniform(1.0, 2.0))
        return None

    def websocket(self, url: str, origin: str, timeout: float = 30):
        """The queue entry's websocket (handshake timed as a request named ``WS /ws/queue/[id]/``)."""
        sent, started, error = time.time(), time.perf_counter(), None
        cookie = f"sessionid={self.session['session'] if self.session else self.cookie('sessionid')}"
        try:
            return websocket.create_connection(url, timeout=timeout, cookie=cookie, origin=origin)
        except Exception as exc:  # every handshake failure is counted
            error = exc
            return None
        finally:
            self.environment.events.request.fire(
                request_type="WS",
                name="WS /ws/queue/[id]/",
                response_time=(time.perf_counter() - started) * 1000,
                response_length=0,
                exception=error,
                context={},
                start_time=sent,
                response=type("R", (), {"status_code": 0 if error else 101})(),
            )


class Opening(Student):
    """A student on the day: log in, count down, claim, watch, open the ticket."""

    credentials = None

    def on_start(self) -> None:
        super().on_start()
        if Opening.credentials is None:
            with open(PLAN["credentials"], newline="") as handle:
                Opening.credentials = iter([(row["nim"], row["password"]) for row in csv.DictReader(handle)])
        self.nim, self.password = next(Opening.credentials)
        self.event, self.done = {}, False
        self.slug = PLAN["event"]
        status, _ = self.call("GET", f"/accounts/login/?next=/events/{self.slug}/", "GET /accounts/login/")
        form = {
            "username": self.nim,
            "password": self.password,
            "next": f"/events/{self.slug}/",
            "csrfmiddlewaretoken": self.cookie("csrftoken"),
        }
        status, _ = self.call(
            "POST",
            "/accounts/login/",
            "POST /accounts/login/",
            data=form,
            allow_redirects=False,
            headers={"Referer": f"{self.host}/accounts/login/"},
        )
        if status != 302:
            raise StopUser  # not logged in: the failed answer is counted, the student goes home
        COUNTS["logged_in"] += 1
        self.call("GET", f"/events/{self.slug}/", "GET /events/[slug]/")
        self.poll()

    def wait_time(self) -> float:
        return 5.0

    def poll(self) -> None:
        status, event = self.api("GET", f"/api/events/{self.slug}/", "GET /api/events/[slug]/")
        if status == 200:
            self.event = event
            MARKS.setdefault("opens_at", parse_time(event["claim_opens_at"]))

    @task
    def journey(self) -> None:
        if self.told["decision"] == "completed":
            return  # the ticket page does not poll
        if self.done or not self.event or parse_time(self.event["claim_opens_at"]) - time.time() > 5:
            self.poll()  # the countdown, or the event page of those left without a seat
            return
        gevent.sleep(max(0.0, parse_time(self.event["claim_opens_at"]) - time.time()) + random.uniform(0.2, 1.5))
        self.done, sent = True, time.time()
        status, answer = self.api("POST", f"/api/events/{self.slug}/claim/", CLAIM)
        self.told["clicks"].append([sent, status])
        if status not in (200, 202):
            return
        self.call("GET", f"/queue/{answer['queue_id']}/", "GET /queue/[id]/")
        entry = self.watch_socket(answer["queue_id"]) if random.random() < PLAN["ws_fraction"] else None
        entry = entry or self.watch(answer["queue_id"], sent + 180)
        if entry:
            self.told.update(queue_id=answer["queue_id"], decision=entry["status"], decided_at=time.time())
            if entry["status"] == "completed" and entry.get("ticket"):
                self.call("GET", entry["ticket"]["url"], "GET /tickets/[id]/")
                self.api("GET", "/api/me/tickets/", "GET /api/me/tickets/")

    def watch_socket(self, queue_id: str) -> dict | None:
        """Wait for the decision by websocket (re-read after 5 s of silence, as queue.js does)."""
        page = urlparse(self.host)
        origin = os.environ.get("WEBSOCKET_ORIGIN") or f"ws://{page.netloc}"
        socket = self.websocket(f"{origin}/ws/queue/{queue_id}/", f"{page.scheme}://{page.netloc}")
        if socket is None:
            COUNTS["ws_fallbacks"] += 1
            return None
        try:
            socket.settimeout(5)
            for _ in range(36):  # three minutes
                try:
                    message = json.loads(socket.recv())
                except websocket.WebSocketTimeoutException:
                    _status, message = self.api("GET", f"/api/queue/{queue_id}/", "GET /api/queue/[id]/")
                else:
                    COUNTS["ws_pushes"] += 1
                if message.get("status") in DECIDED:
                    return message
        except (websocket.WebSocketException, OSError, ValueError):
            COUNTS["ws_fallbacks"] += 1
        finally:
            socket.close()
        return None


class War(Student):
    """A logged-in student through the faults: claim, again after a 5xx, watch, ask what I hold."""

    @task
    def journey(self) -> None:
        slug, claim_at = PLAN["event"], self.session["claim_at"]
        next_poll = time.time() + random.uniform(0, PLAN["poll"])
        while not healed():
            if claim_at is not None and time.time() >= claim_at:
                sent = time.time()
                status, answer = self.api("POST", f"/api/events/{slug}/claim/", CLAIM)
                self.told["clicks"].append([sent, status])
                claim_at = None
                if status in (200, 202):
                    self.told["queue_id"] = answer["queue_id"]
                    entry = self.watch(answer["queue_id"], float("inf"))
                    self.told["decision"] = entry and entry["status"]
                elif (status >= 500 or status == 0 or status == 429) and len(self.told["clicks"]) < 10:
                    claim_at = time.time() + (
                        float(answer.get("retry_after", 0)) if status == 429 else random.uniform(2, 4)
                    )
            if time.time() >= next_poll:
                self.api("GET", f"/api/events/{slug}/", "GET /api/events/[slug]/")
                next_poll = time.time() + PLAN["poll"]
            gevent.sleep(max(0.05, min(next_poll, claim_at or next_poll, time.time() + 0.5) - time.time()))
        for _ in range(15):  # what the student is told at the end (PostgreSQL may still be back only now)
            status, tickets = self.api("GET", "/api/me/tickets/", "GET /api/me/tickets/")
            if status == 200:
                self.told["holds"] = any(t["event"] == slug and t["status"] == "active" for t in tickets)
                break
            gevent.sleep(2)
        ALL_DONE.arrive()
        raise StopUser


class Stream(Student):
    """One keep-alive connection, the next request of the shared list each time."""

    requests = None

    def on_start(self) -> None:
        if Stream.requests is None:
            built = [(m, p, headers(s, m)) for m, p, s in PLAN["requests"]]
            Stream.requests = itertools.cycle(built) if PLAN.get("seconds") else iter(built)
        ALL_WARM.arrive()

    @task
    def send(self) -> None:
        stop_at = MARKS["go"]["at"] + (PLAN["seconds"] or 3600)
        for method, path, sent in Stream.requests:
            if time.time() >= stop_at:
                break
            self.client.request(
                method, path, name=f"{method} {PLAN['name']}", headers=sent, data="{}" if method == "POST" else None
            )
        ALL_DONE.arrive()
        raise StopUser


class Spike(Student):
    """One claim each, all within ``spread`` s, on a new or a warm connection, with idle ones held."""

    def on_start(self) -> None:
        super().on_start()
        # Each connection used once (the student's first contact); without idle ones and not kept
        # alive, the first contact's connection is closed and the claim opens a new one.
        more = [FastHttpSession(self.host, self.environment.events.request, None) for _ in range(PLAN["idle"] or 1)]
        self.held = ([self.client] if PLAN["kept_alive"] else []) + more[: PLAN["idle"]]
        for session in self.held or more:
            response = session.get("/api/ping/", name="GET /api/ping/ (warm-up)", headers=headers(self.session))
            COUNTS[f"warm-up {response.status_code}"] += 1
        if not self.held:
            more[0].client.clientpool.close()
        ALL_WARM.arrive()

    @task
    def claim(self) -> None:
        gevent.sleep(max(0.0, MARKS["go"]["at"] + 0.5 + random.uniform(0, PLAN["spread"]) - time.time()))
        sent = time.time()
        status, _ = self.api("POST", PLAN["path"], CLAIM)
        self.told["clicks"].append([sent, status, time.time()])
        ALL_DONE.arrive()  # every connection stays open until everyone is answered
        for session in self.held:
            session.client.clientpool.close()
        raise StopUser


class Sockets(Student):
    """A websocket on the student's queue entry, open until every student has heard a decision."""

    @task
    def listen(self) -> None:
        queue_id = self.session["queue_id"]
        socket = self.websocket(f"{PLAN['ws_origin']}/ws/queue/{queue_id}/", PLAN["origin"])
        messages, status = 0, None
        while socket is not None and status not in DECIDED:
            try:
                socket.settimeout(max(1.0, PLAN["limit"]))
                message = json.loads(socket.recv())
            except (websocket.WebSocketException, OSError, ValueError):
                break
            messages += 1
            status = message.get("status") if message.get("queue_id") == queue_id else status
        self.told.update(queue_id=queue_id, decision=status, messages=messages)
        ALL_DONE.arrive()
        if socket is not None:
            socket.close()
        raise StopUser


KINDS = {"opening": Opening, "war": War, "stream": Stream, "spike": Spike, "sockets": Sockets}
