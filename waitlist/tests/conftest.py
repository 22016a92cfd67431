"""Fixtures of the waiting-list tests."""

from __future__ import annotations

import pytest

from tools.testing import bulk_students


@pytest.fixture
def sold_out(make_event):
    """``sold_out(capacity, waiting)``: an event whose seats are all issued, and ``waiting``
    students on its list (in order). Returns ``(event, holders, waiting_users)``."""
    from tools.testing import issue_ticket
    from waitlist.services import waitlist_join

    def make(capacity: int = 2, waiting: int = 3, **fields):
        event = make_event(capacity=capacity, **fields)
        holders = bulk_students(capacity)
        for user in holders:
            issue_ticket(event_id=event.id, user_id=user.id)
        users = bulk_students(waiting)
        waitlist_join(students=[(event.id, u.id, None) for u in users])
        event.refresh_from_db()
        assert event.remaining == 0
        return event, holders, users

    return make


@pytest.fixture
def offered(sold_out):
    """A sold-out event of one seat whose holder gave it back: the first of two waiting students
    is offered it. Returns ``(event, waiting_users, offer)``."""
    from tickets.models import Ticket
    from tickets.services import ticket_return
    from waitlist.models import WaitlistEntry
    from waitlist.services import waitlist_fill

    event, holders, users = sold_out(capacity=1, waiting=2)
    ticket_return(ticket_id=Ticket.objects.get(user=holders[0]).id, user_id=holders[0].id)
    waitlist_fill(event_id=event.id)
    return event, users, WaitlistEntry.objects.get(user=users[0])
