"""Fixtures of the tickets tests, reusable by other apps' tests (import or ``pytest_plugins``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from django.db import connection, transaction


def run_race(jobs: Iterable[Callable[[], Any]], *, timeout: float = 60) -> list[tuple[str, Any]]:
    """Run every job in its own thread, released together by a barrier.

    Each thread uses its own database connection (Django's connections are per thread) and
    closes it at the end. Returns ``("ok", value)`` or ``("error", exception)`` per job, in
    the order given.
    """
    jobs = list(jobs)
    barrier = threading.Barrier(len(jobs))
    outcomes: list[tuple[str, Any] | None] = [None] * len(jobs)

    def runner(index: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=timeout)
            outcomes[index] = ("ok", job())
        except Exception as exc:
            outcomes[index] = ("error", exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, job), daemon=True) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
    assert all(outcome is not None for outcome in outcomes)
    return outcomes  # type: ignore[return-value]


def wait_for_lock_wait(sql_fragment: str, timeout: float = 20) -> None:
    """Until another connection waits for a lock while running a statement containing ``sql_fragment``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE %s",
                [f"%{sql_fragment}%"],
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.05)
    raise AssertionError(f"no connection waited on a lock running {sql_fragment!r} within {timeout} s")


class TicketCommittedMeanwhile:
    """Another connection inserts a ticket for ``user_id`` and keeps its transaction open.

    ``ticket_issue_held`` (a waiting-list seat) inserts without touching the event row, so it
    can slip in between ``ticket_issue_many``'s check and its INSERT: that INSERT then waits
    for this transaction on the unique index, and fails on the constraint once it commits.
    """

    def __init__(self, *, event_id: int, user_id: int) -> None:
        self._inserted, self._commit = threading.Event(), threading.Event()
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(event_id, user_id), daemon=True)

    def _run(self, event_id: int, user_id: int) -> None:
        from tickets.services import ticket_issue_held

        try:
            with transaction.atomic():
                ticket_issue_held(event_id=event_id, user_id=user_id)
                self._inserted.set()
                self._commit.wait(30)
        except BaseException as exc:
            self.errors.append(exc)
            self._inserted.set()
        finally:
            connection.close()

    def start(self) -> None:
        self._thread.start()
        assert self._inserted.wait(30) and not self.errors, self.errors

    def commit(self) -> None:
        self._commit.set()
        self._thread.join(30)
        assert not self._thread.is_alive() and not self.errors, self.errors


@pytest.fixture
def event(door_event):
    """In the tickets tests the event is on now: its claim window and its door are open."""
    return door_event


@pytest.fixture
def make_ticket(make_event, make_user):
    """``make_ticket(user=None, event=None)``: a ticket issued the real way (``ticket_issue``);
    without ``event``, of a new event whose door is open now."""
    from tickets.services import ticket_issue
    from ticketwar.testing import door_open_times

    def make(*, user=None, event=None):
        user = user or make_user()
        event = event or make_event(**door_open_times())
        return ticket_issue(event_id=event.id, user_id=user.id)

    return make


@pytest.fixture
def ticket(make_ticket, student, event):
    return make_ticket(user=student, event=event)
