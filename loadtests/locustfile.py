"""Students on the day of the ticket war, for Locust (``python -m loadtests.run`` drives it).

Each logs in with the form, polls the event page's API every 5 s, claims at the opening (plus a
human reaction time), watches its queue entry (``LOADTEST_WS_FRACTION`` by websocket as
``static/js/queue.js``, the others by polling) and opens its ticket; docs/BENCHMARKS.md, "Load
test", describes the journey. Refusals the contract defines (409, 410, 425, 429) are outcomes,
counted per status code in ``LOADTEST_RESULTS`` (JSON). Environment: ``LOADTEST_EVENT``,
``LOADTEST_CREDENTIALS`` (CSV of ``manage.py create_students --out``), ``LOADTEST_WS_FRACTION``,
``LOADTEST_RESULTS``.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import random
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import gevent
from locust import FastHttpUser, events, task
from locust.exception import StopUser

EVENT_SLUG = os.environ.get("LOADTEST_EVENT", "kuliah-umum")
CREDENTIALS = os.environ.get("LOADTEST_CREDENTIALS", "loadtests/students.csv")
WS_FRACTION = float(os.environ.get("LOADTEST_WS_FRACTION", "0.8"))
RESULTS_PATH = os.environ.get("LOADTEST_RESULTS", "")

# Think times (seconds). The event page polls every 5 s (static/js/event.js); the queue page
# is watched every 1-2 s; a human needs 0.2-1.5 s to react when the button lights up.
EVENT_POLL_SECONDS = 5.0
QUEUE_POLL_SECONDS = (1.0, 2.0)
REACTION_SECONDS = (0.2, 1.5)
# queue.js double-checks a silent websocket with one status read after this long.
WS_SILENCE_SECONDS = 5.0
# A decision slower than this is reported as a failure of the queue watch.
DECISION_TIMEOUT_SECONDS = 180.0

DECIDED = {"completed", "failed"}
# Contract answers of POST /api/events/<slug>/claim/ that are outcomes, not errors.
CLAIM_OUTCOMES = {200, 202, 409, 410, 425, 429}

# Request names, grouped by route so the statistics add up per endpoint.
N_LOGIN_PAGE = "GET /accounts/login/"
N_LOGIN = "POST /accounts/login/"
N_EVENT_PAGE = "GET /events/[slug]/"
N_EVENT_API = "GET /api/events/[slug]/"
N_CLAIM = "POST /api/events/[slug]/claim/"
N_QUEUE_PAGE = "GET /queue/[id]/"
N_QUEUE_API = "GET /api/queue/[id]/"
N_QUEUE_WS = "WS /ws/queue/[id]/"
N_TICKET_PAGE = "GET /tickets/[id]/"
N_MY_TICKETS = "GET /api/me/tickets/"


# --- credentials and shared results --------------------------------------------------------

_credentials_lock = threading.Lock()
_credentials: itertools.islice | None = None


def next_credentials() -> tuple[str, str] | None:
    """The next unused ``(nim, password)``; one account per simulated student."""
    global _credentials
    with _credentials_lock:
        if _credentials is None:
            with Path(CREDENTIALS).open(newline="", encoding="utf-8") as handle:
                rows = [(row["nim"], row["password"]) for row in csv.DictReader(handle)]
            _credentials = iter(rows)
        return next(_credentials, None)


class Results:
    """What Locust's own statistics do not keep: outcomes per code and per-class timings."""

    def __init__(self) -> None:
        self.claim_codes: Counter[str] = Counter()
        self.queue_outcomes: Counter[str] = Counter()
        self.codes: dict[str, Counter[str]] = defaultdict(Counter)
        self.decision_ms: list[float] = []
        self.samples: list[tuple[float, str, float, bool]] = []
        self.opens_at: float | None = None
        self.users_logged_in = 0
        self.ws_pushes = 0
        self.ws_fallbacks = 0

    def as_dict(self) -> dict:
        return {
            "claim_codes": dict(self.claim_codes),
            "queue_outcomes": dict(self.queue_outcomes),
            "codes": {name: dict(counter) for name, counter in self.codes.items()},
            "decision_ms": self.decision_ms,
            "opens_at": self.opens_at,
            "users_logged_in": self.users_logged_in,
            "ws_pushes": self.ws_pushes,
            "ws_fallbacks": self.ws_fallbacks,
            "samples": self.samples,
        }


RESULTS = Results()


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception=None, **kwargs):
    # Raw samples let loadtests.run compute percentiles per class (reads, claims) and per phase.
    RESULTS.samples.append((round(time.time(), 3), name, round(response_time, 2), exception is None))


def _write_results(**_kwargs) -> None:
    if RESULTS_PATH:
        Path(RESULTS_PATH).write_text(json.dumps(RESULTS.as_dict()))


events.test_stop.add_listener(_write_results)
events.quitting.add_listener(_write_results)


# --- the student ---------------------------------------------------------------------------


def _parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Student(FastHttpUser):
    """One student with one account, from login to ticket (or to "sold out")."""

    network_timeout = 60.0
    connection_timeout = 30.0

    def wait_time(self) -> float:
        return EVENT_POLL_SECONDS

    def on_start(self) -> None:
        credentials = next_credentials()
        if credentials is None:
            raise StopUser("no unused student account left in the credentials file")
        self.nim, self.password = credentials
        self.event: dict = {}
        self.queue_id: str | None = None
        self.ticket: dict | None = None
        self.finished = False
        self.login()
        self.open_event_page()

    # --- helpers -----------------------------------------------------------------------

    def cookie(self, name: str) -> str:
        for cookie in self.client.cookiejar:
            if cookie.name == name:
                return cookie.value
        return ""

    def count(self, name: str, status: int) -> None:
        RESULTS.codes[name][str(status)] += 1

    def get_json(self, path: str, name: str, *, expected: tuple[int, ...] = (200,)) -> tuple[int, dict | list | None]:
        with self.client.get(path, name=name, catch_response=True, headers={"Accept": "application/json"}) as resp:
            self.count(name, resp.status_code)
            if resp.status_code in expected or resp.status_code == 429:
                resp.success()
            else:
                resp.failure(f"unexpected {resp.status_code}")
                return resp.status_code, None
            try:
                return resp.status_code, resp.json()
            except (ValueError, TypeError):
                resp.failure("answer is not JSON")
                return resp.status_code, None

    # --- journey steps -------------------------------------------------------------------

    def login(self) -> None:
        next_path = f"/events/{EVENT_SLUG}/"
        with self.client.get(f"/accounts/login/?next={next_path}", name=N_LOGIN_PAGE, catch_response=True) as resp:
            self.count(N_LOGIN_PAGE, resp.status_code)
            if resp.status_code != 200 or not self.cookie("csrftoken"):
                cookie = "set" if self.cookie("csrftoken") else "missing"
                resp.failure(f"login page: {resp.status_code}, csrftoken cookie {cookie}")
                raise StopUser()
        form = {
            "username": self.nim,
            "password": self.password,
            "csrfmiddlewaretoken": self.cookie("csrftoken"),
            "next": next_path,
        }
        referer = f"{self.host}/accounts/login/"
        with self.client.post(
            "/accounts/login/", data=form, name=N_LOGIN, headers={"Referer": referer},
            allow_redirects=False, catch_response=True,
        ) as resp:  # fmt: skip
            self.count(N_LOGIN, resp.status_code)
            if resp.status_code != 302 or not self.cookie("sessionid"):
                resp.failure(f"login refused ({resp.status_code}) for {self.nim}")
                raise StopUser()
        RESULTS.users_logged_in += 1

    def open_event_page(self) -> None:
        with self.client.get(f"/events/{EVENT_SLUG}/", name=N_EVENT_PAGE, catch_response=True) as resp:
            self.count(N_EVENT_PAGE, resp.status_code)
            if resp.status_code != 200:
                resp.failure(f"event page: {resp.status_code}")
        self.poll_event()

    def poll_event(self) -> None:
        status, data = self.get_json(f"/api/events/{EVENT_SLUG}/", N_EVENT_API)
        if status == 200 and isinstance(data, dict):
            self.event = data
            if RESULTS.opens_at is None and data.get("claim_opens_at"):
                RESULTS.opens_at = _parse_time(data["claim_opens_at"])

    @task
    def journey(self) -> None:
        if self.finished:
            # A student with a ticket looks at it (the ticket page does not poll); the others
            # keep the event page open, which polls, in case a seat is given back.
            if self.ticket is None:
                self.poll_event()
            return
        if not self.event:
            self.poll_event()
            return
        opens_at = _parse_time(self.event["claim_opens_at"])
        left = opens_at - time.time()
        if left > EVENT_POLL_SECONDS:
            self.poll_event()  # the countdown runs; wait_time() spaces the polls
            return
        # The last seconds of the countdown, then a human reaction time: the spike.
        gevent.sleep(max(0.0, left) + random.uniform(*REACTION_SECONDS))
        self.claim()
        self.finished = True

    def claim(self) -> None:
        for _attempt in range(5):
            headers = {
                "X-CSRFToken": self.cookie("csrftoken"),
                "Referer": f"{self.host}/events/{EVENT_SLUG}/",
                "Accept": "application/json",
                "Content-Type": "application/json",
            }
            started = time.time()
            with self.client.post(
                f"/api/events/{EVENT_SLUG}/claim/", data="{}", headers=headers, name=N_CLAIM, catch_response=True
            ) as resp:
                status = resp.status_code
                self.count(N_CLAIM, status)
                RESULTS.claim_codes[str(status)] += 1
                try:
                    data = resp.json() if resp.content else {}
                except (ValueError, TypeError):
                    data = {}
                if status in CLAIM_OUTCOMES:
                    resp.success()
                else:
                    resp.failure(f"claim answered {status}: {str(data)[:120]}")
                    return
            if status in (200, 202):
                self.watch_queue(data, started)
                return
            if status == 409:
                self.ticket = data.get("ticket")
                self.open_ticket()
                return
            if status == 410:
                self.poll_event()
                return
            # 425 (clock a hair early) or 429 (rate limit): wait as told, like the page does.
            wait = data.get("opens_in") if status == 425 else data.get("retry_after")
            gevent.sleep(min(60.0, float(wait or 1)) + random.uniform(*REACTION_SECONDS))

    def watch_queue(self, data: dict, claimed_at: float) -> None:
        self.queue_id = data.get("queue_id")
        if not self.queue_id:
            return
        status = data.get("status")
        with self.client.get(f"/queue/{self.queue_id}/", name=N_QUEUE_PAGE, catch_response=True) as resp:
            self.count(N_QUEUE_PAGE, resp.status_code)
            if resp.status_code != 200:
                resp.failure(f"queue page: {resp.status_code}")
        entry = None
        if random.random() < WS_FRACTION:
            entry = self.watch_websocket(claimed_at)
        if entry is None:
            entry = self.poll_queue(claimed_at, first_status=status)
        if entry is None:
            return
        RESULTS.decision_ms.append(round((time.time() - claimed_at) * 1000, 1))
        RESULTS.queue_outcomes[entry.get("status", "?") + ":" + (entry.get("reason") or "")] += 1
        if entry.get("status") == "completed":
            self.ticket = entry.get("ticket")
            self.open_ticket()

    def poll_queue(self, claimed_at: float, *, first_status: str | None = None) -> dict | None:
        while time.time() - claimed_at < DECISION_TIMEOUT_SECONDS:
            status, entry = self.get_json(f"/api/queue/{self.queue_id}/", N_QUEUE_API)
            if status == 200 and isinstance(entry, dict) and entry.get("status") in DECIDED:
                return entry
            gevent.sleep(random.uniform(*QUEUE_POLL_SECONDS))
        RESULTS.queue_outcomes["timeout"] += 1
        self.environment.events.request.fire(
            request_type="QUEUE", name="claim decided", response_time=DECISION_TIMEOUT_SECONDS * 1000,
            response_length=0, exception=TimeoutError(f"undecided after {DECISION_TIMEOUT_SECONDS:.0f} s"),
            context={},
        )  # fmt: skip
        return None

    def watch_websocket(self, claimed_at: float) -> dict | None:
        """Wait for the decision on ``/ws/queue/<id>/``; None means: fall back to polling."""
        import websocket  # websocket-client; gevent's monkey patching makes it cooperative

        url = urlparse(self.host)
        # Where the page would open it: WEBSOCKET_ORIGIN (the ws process), else the page's origin.
        ws_origin = os.environ.get("WEBSOCKET_ORIGIN") or f"{'wss' if url.scheme == 'https' else 'ws'}://{url.netloc}"
        ws_url = f"{ws_origin}/ws/queue/{self.queue_id}/"
        cookie = f"sessionid={self.cookie('sessionid')}; csrftoken={self.cookie('csrftoken')}"
        started = time.time()
        try:
            conn = websocket.create_connection(ws_url, timeout=30, cookie=cookie, origin=f"{url.scheme}://{url.netloc}")
        except Exception as exc:
            self._fire_ws((time.time() - started) * 1000, exc)
            RESULTS.ws_fallbacks += 1
            return None
        self._fire_ws((time.time() - started) * 1000, None)
        try:
            conn.settimeout(WS_SILENCE_SECONDS)
            while time.time() - claimed_at < DECISION_TIMEOUT_SECONDS:
                try:
                    message = json.loads(conn.recv())
                except websocket.WebSocketTimeoutException:
                    # Pushes are hints: after 5 s of silence the page (queue.js) re-reads the status.
                    status, entry = self.get_json(f"/api/queue/{self.queue_id}/", N_QUEUE_API)
                    if status == 200 and isinstance(entry, dict) and entry.get("status") in DECIDED:
                        return entry
                    continue
                RESULTS.ws_pushes += 1
                if message.get("status") in DECIDED:
                    if message.get("status") == "completed" and not message.get("ticket"):
                        return None
                    return message
        except (websocket.WebSocketException, OSError, ValueError) as exc:
            self._fire_ws(0, exc, name=f"{N_QUEUE_WS} dropped")
            RESULTS.ws_fallbacks += 1
            return None
        finally:
            conn.close()
        return None

    def _fire_ws(self, elapsed_ms: float, exception: BaseException | None, *, name: str = N_QUEUE_WS) -> None:
        self.environment.events.request.fire(
            request_type="WS", name=name, response_time=elapsed_ms, response_length=0,
            exception=exception, context={},
        )  # fmt: skip

    def open_ticket(self) -> None:
        url = (self.ticket or {}).get("url")
        if url:
            with self.client.get(url, name=N_TICKET_PAGE, catch_response=True) as resp:
                self.count(N_TICKET_PAGE, resp.status_code)
                if resp.status_code != 200:
                    resp.failure(f"ticket page: {resp.status_code}")
        self.get_json("/api/me/tickets/", N_MY_TICKETS)
