"""Locking preconditions stated in docstrings are asserted: a seat moved outside the
transaction that locks its holder could be used twice."""

from __future__ import annotations

import pytest
from django.utils import timezone

from events.models import Event
from events.seats import seats_release
from tickets.models import Ticket
from tickets.services import ticket_issue_held


@pytest.mark.django_db(transaction=True)
def test_held_seats_are_not_moved_outside_a_transaction(make_event, make_user):
    event = make_event(capacity=2)
    with pytest.raises(AssertionError):
        ticket_issue_held(event_id=event.id, user_id=make_user().id)
    with pytest.raises(AssertionError):
        seats_release(event.id, now=timezone.now())
    assert not Ticket.objects.exists()
    assert Event.objects.get(pk=event.id).remaining == 2
