"""Fixtures of the tickets tests, reusable by other apps' tests (import or ``pytest_plugins``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from django.db import connection


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


@pytest.fixture
def make_ticket(make_event, make_user):
    """``make_ticket(user=None, event=None)``: a ticket issued the real way (``ticket_issue``)."""
    from tickets.services import ticket_issue

    def make(*, user=None, event=None):
        user = user or make_user()
        event = event or make_event()
        return ticket_issue(event_id=event.id, user_id=user.id)

    return make


@pytest.fixture
def ticket(make_ticket, student, event):
    return make_ticket(user=student, event=event)
