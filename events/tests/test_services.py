from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from events import services
from events.exceptions import CapacityBelowIssued, InvalidClaimWindow, SlugTaken
from events.models import Event
from events.signals import event_changed
from tickets.models import Ticket
from tools.testing import issue_ticket


def window(**overrides):
    now = timezone.now()
    values = {
        "claim_opens_at": now,
        "claim_closes_at": now + timedelta(days=1),
        "starts_at": now + timedelta(days=2),
    }
    values.update(overrides)
    return values


def create(**overrides):
    values = {"slug": "ev", "title": "T", "speaker": "S", "venue": "V", "capacity": 10, **window()}
    values.update(overrides)
    return services.event_create(**values)


@pytest.mark.django_db
def test_create_sets_remaining_to_capacity_and_notifies_after_commit(django_capture_on_commit_callbacks):
    seen: list[int] = []

    def receiver(sender, *, event_id, **kwargs):
        seen.append(event_id)

    event_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            event = create(capacity=7)
        assert event.remaining == 7
        assert event.status == Event.Status.DRAFT
        assert seen == [event.pk]
        with django_capture_on_commit_callbacks(execute=True):
            services.event_publish(event_id=event.pk)
            services.event_update(event_id=event.pk, title="New")
            services.event_cancel(event_id=event.pk)
        assert seen == [event.pk] * 4
    finally:
        event_changed.disconnect(receiver)


@pytest.mark.django_db
def test_create_refuses_bad_window_and_taken_slug():
    now = timezone.now()
    with pytest.raises(InvalidClaimWindow):
        create(**window(claim_opens_at=now, claim_closes_at=now))
    with pytest.raises(InvalidClaimWindow):
        create(**window(claim_closes_at=now + timedelta(days=3)))
    create(slug="taken")
    with pytest.raises(SlugTaken):
        create(slug="taken")


@pytest.mark.django_db
def test_capacity_change_moves_remaining_by_the_delta(make_event, student, other_student):
    event = make_event(capacity=10)
    issue_ticket(event_id=event.pk, user_id=student.pk)
    issue_ticket(event_id=event.pk, user_id=other_student.pk)
    event = services.event_update(event_id=event.pk, capacity=15)
    assert (event.capacity, event.remaining) == (15, 13)
    event = services.event_update(event_id=event.pk, capacity=2)
    assert (event.capacity, event.remaining) == (2, 0)
    with pytest.raises(CapacityBelowIssued) as info:
        services.event_update(event_id=event.pk, capacity=1)
    assert "2" in info.value.message
    event.refresh_from_db()
    assert (event.capacity, event.remaining) == (2, 0)


@pytest.mark.django_db
def test_update_refuses_window_out_of_order_and_unknown_fields(event):
    with pytest.raises(InvalidClaimWindow):
        services.event_update(event_id=event.pk, claim_closes_at=event.starts_at + timedelta(hours=1))
    with pytest.raises(services.EventError):
        services.event_update(event_id=event.pk, remaining=0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_capacity_cut_racing_ticket_issue_never_loses_a_seat(make_user, make_event):
    """20 students claim while an organiser cuts the capacity from 20 to 10, repeatedly.

    Whatever the interleaving: tickets == capacity - remaining, remaining >= 0, and the cut
    either happened with at most 10 tickets or was refused with more than 10 issued.
    """
    students = [make_user() for _ in range(20)]
    for round_number in range(5):
        event = make_event(capacity=20)
        barrier = threading.Barrier(21)
        outcome: dict[str, object] = {}

        def claim(user_id: int, event_id: int = event.pk, barrier=barrier) -> None:
            try:
                barrier.wait()
                try:
                    issue_ticket(event_id=event_id, user_id=user_id)
                except Exception as exc:  # SoldOut once the cut lands
                    assert type(exc).__name__ == "SoldOut", exc
            finally:
                connection.close()

        def cut(event_id: int = event.pk, barrier=barrier, outcome=outcome) -> None:
            try:
                barrier.wait()
                try:
                    services.event_update(event_id=event_id, capacity=10)
                    outcome["cut"] = True
                except CapacityBelowIssued:
                    outcome["cut"] = False
            finally:
                connection.close()

        threads = [threading.Thread(target=claim, args=(s.pk,)) for s in students]
        threads.insert(round_number * 4, threading.Thread(target=cut))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        event.refresh_from_db()
        tickets = Ticket.objects.filter(event=event, status="active").count()
        assert event.remaining >= 0
        assert tickets == event.capacity - event.remaining
        if outcome["cut"]:
            assert event.capacity == 10
            assert tickets <= 10
        else:
            assert event.capacity == 20
            assert tickets > 10


@pytest.mark.django_db
def test_event_changed_callbacks_skip_rolled_back_writes(django_capture_on_commit_callbacks, event):
    from django.db import transaction

    seen: list[int] = []

    def receiver(sender, *, event_id, **kwargs):
        seen.append(event_id)

    event_changed.connect(receiver)
    try:
        with (
            django_capture_on_commit_callbacks(execute=True),
            pytest.raises(CapacityBelowIssued),
            transaction.atomic(),
        ):
            services.event_publish(event_id=event.pk)
            raise CapacityBelowIssued()
        assert seen == []
    finally:
        event_changed.disconnect(receiver)
