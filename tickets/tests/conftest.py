"""Fixtures of the tickets tests (their racing helpers are in tools/testing.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def event(door_event):
    """In the tickets tests the event is on now: its claim window and its door are open."""
    return door_event


@pytest.fixture
def make_ticket(make_event, make_user):
    """``make_ticket(user=None, event=None)``: a ticket issued the real way (``ticket_issue``);
    without ``event``, of a new event whose door is open now."""
    from tools.testing import door_open_times, issue_ticket

    def make(*, user=None, event=None):
        user = user or make_user()
        event = event or make_event(**door_open_times())
        return issue_ticket(event_id=event.id, user_id=user.id)

    return make


@pytest.fixture
def ticket(make_ticket, student, event):
    return make_ticket(user=student, event=event)
