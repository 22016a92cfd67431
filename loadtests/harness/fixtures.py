"""Students, their logged-in sessions and events, made in the database (Django set up on the stack)."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

PASSWORD = "bench-pass-1"  # noqa: S105 - the bulk students' password (the cluster drill logs one in)


def make_students(count: int, tag: str) -> list:
    """Verified students created in bulk, NIM ``<tag><i:05d>`` (one password hash for all)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    user_model, password = get_user_model(), make_password(PASSWORD)
    return user_model.objects.bulk_create(
        user_model.verified_student(f"{tag}{i:05d}", password_hash=password) for i in range(count)
    )


def make_sessions(users: list) -> list[dict]:
    """A logged-in session per student, as the login form would leave it (what ``login()`` stores,
    without paying PBKDF2 for each), plus a CSRF secret: ``{user_id, session, csrf}``."""
    from tools.testing import logged_in_session

    return [{"user_id": u.pk, "session": logged_in_session(u), "csrf": secrets.token_hex(16)} for u in users]


def staff_cookie() -> str:
    """A logged-in staff session (staff are outside the general API budget)."""
    from django.contrib.auth import get_user_model

    user, _created = get_user_model().objects.get_or_create(
        username="loadtest-staff", defaults={"is_staff": True, "full_name": "Load test"}
    )
    return f"sessionid={make_sessions([user])[0]['session']}"


def make_event(slug: str, capacity: int, **fields):
    """A published event, open for claims since a minute ago (``fields`` override)."""
    from tools.testing import open_event

    return open_event(slug=slug, capacity=capacity, title="Benchmark", **fields)


@dataclass
class Student:
    """A logged-in student (a session made by ``make_sessions`` or a test client) talking to ``base_url``."""

    base_url: str
    session: str
    csrf: str = field(default_factory=lambda: secrets.token_hex(16))
    # Where websockets are served (ws://host:port), when not by base_url's own process: the ws
    # process of a stack split as the Procfile splits it (settings.WEBSOCKET_ORIGIN).
    ws_origin: str = ""

    @classmethod
    def login(cls, base_url: str, user) -> Student:
        from django.test import Client

        client = Client()
        client.force_login(user)
        return cls(base_url, client.cookies["sessionid"].value)

    @property
    def cookie(self) -> str:
        return f"sessionid={self.session}; csrftoken={self.csrf}"

    def request(self, method: str, path: str, *, timeout: float = 10) -> tuple[int, dict]:
        headers = {"Cookie": self.cookie, "Accept": "application/json"}
        data = None
        if method != "GET":
            headers.update({"X-CSRFToken": self.csrf, "Content-Type": "application/json"})
            data = b"{}"
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, json.loads(body or b"{}")
            except ValueError:
                return exc.code, {"body": body[:300].decode(errors="replace")}
        except OSError as exc:  # refused, reset, timed out: no answer (status 0, as the load client counts it)
            return 0, {"error": f"{type(exc).__name__}: {exc}"}

    def claim(self, slug: str, *, timeout: float = 10) -> tuple[int, dict]:
        return self.request("POST", f"/api/events/{slug}/claim/", timeout=timeout)

    def websocket(self, queue_id: str, *, timeout: float = 20):
        import websocket  # websocket-client

        url = (self.ws_origin or self.base_url.replace("http://", "ws://")) + f"/ws/queue/{queue_id}/"
        return websocket.create_connection(url, timeout=timeout, cookie=self.cookie, origin=self.base_url)


def read_until(ws, predicate, *, timeout: float) -> dict:
    """Websocket messages until one satisfies ``predicate`` (returned); AssertionError at timeout."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            message = json.loads(ws.recv())
        except Exception as exc:  # websocket timeout: report what was seen
            raise AssertionError(f"no matching websocket message; saw {seen}") from exc
        seen.append(message)
        if predicate(message):
            return message
    raise AssertionError(f"no matching websocket message within {timeout} s; saw {seen}")
