"""Revocation on several real web processes: in force on every one within a second, with Redis up,
dead or hung, and still in force when Redis comes back.

Four web processes as the Procfile starts them (granian, one worker each): three read the
revocation feed in the background as in production, the fourth does not (a process in doubt: it
must ask PostgreSQL on every request). A student logs in through the login page; a copy of the
session cookie is kept (stolen); then the session is ended through the logout page, or the
account is changed by another process (the test's own: a password change, a deactivation, a
group taken away), and every process must refuse the old cookie for every request sent a second
after the change returned. The delays measured are printed (``-s``).
"""

from __future__ import annotations

import subprocess
import time

import pytest
import requests

from accounts import revocation
from tools import stack
from tools.testing import free_port, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "s3cret-pass!"  # conftest's make_user
BOUND = revocation.IN_SYNC_SECONDS


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker):
    """The base URLs of the four processes (the last one never reads the feed)."""
    from django.db import connection

    processes, urls = [], []
    try:
        for watching in (True, True, True, False):
            port = free_port()
            env = subprocess_env(connection.settings_dict)
            process = stack.start(
                "web", env, output=subprocess.DEVNULL, PORT=str(port), WEB_CONCURRENCY="1", LOG_LEVEL="WARNING",
                REVOCATION_WATCH_IN_BACKGROUND="true" if watching else "false",
                MONITORING_FLUSH_IN_BACKGROUND="true",
                # The cookie is asked for every few ms, refused ones counted as anonymous: no 429 here.
                RATELIMIT_API_ANON="100000/m", RATELIMIT_API_USER="100000/m",
            )  # fmt: skip
            processes.append(process)
            stack.wait_for_port(port, process, timeout=60)
            urls.append(f"http://127.0.0.1:{port}")
        yield urls
    finally:
        stack.stop(*processes)


def log_in(base: str, username: str) -> requests.Session:
    browser = requests.Session()
    browser.get(f"{base}/accounts/login/", timeout=20).raise_for_status()
    response = browser.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=20,
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:300]
    return browser


def answer(base: str, cookie: str, path: str) -> int:
    return requests.get(f"{base}{path}", cookies={"sessionid": cookie}, timeout=20, allow_redirects=False).status_code


def assert_refused_everywhere_within_the_bound(urls, cookie: str, path: str, since: float, ok: int) -> list[float]:
    """Ask every process with ``cookie`` until each refuses; every request sent ``BOUND`` seconds
    after ``since`` must be refused, and none accepted after a refusal. Returns the delays."""
    delays: list[float | None] = [None] * len(urls)
    while None in delays or time.monotonic() < since + BOUND + 0.3:
        for index, base in enumerate(urls):
            sent = time.monotonic()
            status = answer(base, cookie, path)
            late = sent >= since + BOUND
            assert status in {ok, 401, 403, 302}, status
            if status == ok:
                assert delays[index] is None, f"process {index} accepted the cookie again after refusing it"
                assert not late, f"process {index} accepted the cookie {sent - since:.2f} s after the change"
            elif delays[index] is None:
                delays[index] = round(sent - since, 3)
        time.sleep(0.01)
    return delays


class Students:
    """One logged-in student per kind of revocation, each read by every process already."""

    def __init__(self, urls, make_user) -> None:
        from accounts.roles import DOOR_STAFF

        self.urls = urls
        self.users = {kind: make_user() for kind in ("logout", "password", "deactivation")}
        self.users["group"] = make_user(roles=(DOOR_STAFF,))
        self.paths = {kind: "/api/me/tickets/" for kind in self.users} | {"group": "/scan/"}
        self.browsers = {kind: log_in(urls[0], user.username) for kind, user in self.users.items()}
        self.cookies = {kind: browser.cookies["sessionid"] for kind, browser in self.browsers.items()}
        for kind, cookie in self.cookies.items():
            assert {answer(base, cookie, self.paths[kind]) for base in urls} == {200}, kind
        time.sleep(2 * revocation.POLL_SECONDS)

    def revoke_each(self) -> dict[str, list[float]]:
        """End or change each student's login in turn; the delays until every process refused."""
        delays = {}
        for kind, user in self.users.items():
            if kind == "logout":
                browser = self.browsers[kind]
                response = browser.post(
                    f"{self.urls[0]}/accounts/logout/",
                    headers={"X-CSRFToken": browser.cookies["csrftoken"], "Referer": f"{self.urls[0]}/"},
                    timeout=20,
                    allow_redirects=False,
                )
                assert response.status_code == 302
            elif kind == "password":
                user.set_password("a-brand-new-pass!")
                user.save()
            elif kind == "deactivation":
                user.is_active = False
                user.save()
            else:
                user.groups.clear()
            since = time.monotonic()
            delays[kind] = assert_refused_everywhere_within_the_bound(
                self.urls, self.cookies[kind], self.paths[kind], since, ok=200
            )
        print(f"\nrevocation delays per process (s, the last one in doubt): {delays}")
        return delays

    def assert_all_refused(self) -> None:
        for kind, cookie in self.cookies.items():
            assert {answer(base, cookie, self.paths[kind]) for base in self.urls} <= {401, 403, 302}, kind


def test_every_kind_of_revocation_is_in_force_on_every_process_within_a_second(web, make_user):
    Students(web, make_user).revoke_each()


@pytest.mark.parametrize("outage", ["killed", "hung"])
def test_revocations_made_while_redis_is_away_stay_in_force_when_it_returns(web, make_user, redis_server, outage):
    students = Students(web, make_user)  # logged in and read while Redis was up
    if outage == "killed":
        redis_server.kill()
    else:
        redis_server.hang()
    students.revoke_each()
    redis_server.restore()
    # Until well after every process's Redis breaker has let a probe through and closed again
    # (REDIS_BREAKER_RESET_SECONDS): a resumed Redis still holds what it held before.
    until = time.monotonic() + 8
    while time.monotonic() < until:
        students.assert_all_refused()
        time.sleep(0.2)
    # And a student logged in now is served on every process (nothing stays refused).
    fresh = log_in(web[1], make_user().username).cookies["sessionid"]
    assert {answer(base, fresh, "/api/me/tickets/") for base in web} == {200}
