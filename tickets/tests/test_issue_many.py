"""ticket_issue_many, the one issue path, against the real PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from events.models import Event
from tickets.exceptions import AlreadyHasTicket, TicketError
from tickets.models import REDEEM_ALPHABET, REDEEM_LENGTH, Ticket
from tickets.services import ticket_issue_many
from tools.testing import TicketCommittedMeanwhile, bulk_students, issue_ticket, race_values


def remaining(event) -> int:
    return Event.objects.get(pk=event.pk).remaining


def codes(outcomes: dict) -> dict:
    return {user_id: (o.code if isinstance(o, TicketError) else "ticket") for user_id, o in outcomes.items()}


@pytest.mark.django_db
def test_fewer_seats_than_students_earlier_students_win(make_user, make_event):
    event = make_event(capacity=3)
    users = [make_user() for _ in range(5)]
    outcomes = ticket_issue_many(event_id=event.id, user_ids=[u.id for u in users])

    assert list(outcomes) == [u.id for u in users]
    assert [codes(outcomes)[u.id] for u in users] == ["ticket"] * 3 + ["sold_out"] * 2
    assert remaining(event) == 0
    stored = list(Ticket.objects.filter(event=event).order_by("issued_at"))
    # In the database, in seat order, exactly as returned.
    assert [t.user_id for t in stored] == [u.id for u in users[:3]]
    for ticket in stored:
        returned = outcomes[ticket.user_id]
        assert (returned.id, returned.redeem_code, returned.status) == (ticket.id, ticket.redeem_code, "active")
        assert len(ticket.redeem_code) == REDEEM_LENGTH and set(ticket.redeem_code) <= set(REDEEM_ALPHABET)
    assert len({t.redeem_code for t in stored}) == 3


@pytest.mark.django_db
def test_each_student_gets_the_refusal_ticket_issue_would_give(make_user, make_event, student, staff):
    event = make_event(capacity=10)
    holder = make_user()
    held = issue_ticket(event_id=event.id, user_id=holder.id)
    unverified = make_user(verified=False)
    inactive = make_user()
    type(inactive).objects.filter(pk=inactive.pk).update(is_active=False)
    unknown = max(type(student).objects.values_list("id", flat=True)) + 1000
    ids = [holder.id, unverified.id, student.id, inactive.id, staff.id, unknown, student.id]

    outcomes = ticket_issue_many(event_id=event.id, user_ids=ids)

    assert codes(outcomes) == {
        holder.id: "already_has_ticket",
        unverified.id: "not_eligible",
        student.id: "ticket",
        inactive.id: "not_eligible",
        staff.id: "not_eligible",
        unknown: "not_eligible",
    }
    assert remaining(event) == 8  # the holder's seat and the student's (once, though named twice)
    assert Ticket.objects.filter(event=event, user=holder).get() == held
    assert Ticket.objects.filter(event=event, user=student).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"claim_opens_at": timedelta(hours=1)}, "not_open"),
        ({"claim_closes_at": timedelta(seconds=-1)}, "claim_closed"),
        ({"remaining": 0}, "sold_out"),
        ({"status": "cancelled"}, "event_unavailable"),
        ({"status": "draft"}, "event_unavailable"),
    ],
)
def test_a_closed_event_refuses_every_eligible_student(change, expected, make_user, make_event):
    event = make_event(capacity=5)
    values = {k: timezone.now() + v if isinstance(v, timedelta) else v for k, v in change.items()}
    Event.objects.filter(pk=event.pk).update(**values)
    student, unverified = make_user(), make_user(verified=False)

    outcomes = ticket_issue_many(event_id=event.id, user_ids=[student.id, unverified.id])

    # The student is checked before the event (the policy's order).
    assert codes(outcomes) == {student.id: expected, unverified.id: "not_eligible"}
    assert not Ticket.objects.filter(event=event).exists()
    assert remaining(event) == values.get("remaining", 5)
    if expected == "not_open":
        assert outcomes[student.id].as_dict()["opens_in"] > 3000


@pytest.mark.django_db
def test_unknown_event_and_empty_list(student, django_assert_num_queries):
    assert codes(ticket_issue_many(event_id=10**9, user_ids=[student.id])) == {student.id: "event_unavailable"}
    with django_assert_num_queries(0):
        assert ticket_issue_many(event_id=10**9, user_ids=[]) == {}


@pytest.mark.django_db
def test_four_queries_whatever_the_number_of_students(make_event, django_assert_num_queries):
    event = make_event(capacity=30)
    students = bulk_students(22)
    few, many = students[:2], students[2:]
    with django_assert_num_queries(4):
        ticket_issue_many(event_id=event.id, user_ids=[u.id for u in few])
    with django_assert_num_queries(4):
        outcomes = ticket_issue_many(event_id=event.id, user_ids=[u.id for u in many])
    assert all(isinstance(o, Ticket) for o in outcomes.values())
    assert remaining(event) == 8


@pytest.mark.django_db
def test_one_seat_change_and_one_mail_per_batch_after_commit(make_user, make_event, django_capture_on_commit_callbacks):
    event = make_event(capacity=5)
    # Made before the capture: saving a user registers its cache invalidation at commit.
    crowd, late = [make_user().id for _ in range(8)], make_user().id
    with django_capture_on_commit_callbacks() as callbacks:
        ticket_issue_many(event_id=event.id, user_ids=crowd)
    # The seat owner's after-effects (events.seats) once, and one ticket e-mail message for the
    # whole batch, both after commit.
    assert sorted(c.__module__ for c in callbacks) == ["events.seats", "tickets.delivery"]
    with django_capture_on_commit_callbacks() as callbacks:
        ticket_issue_many(event_id=event.id, user_ids=[late])  # sold out: nothing changed
    assert callbacks == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_ticket_committed_between_check_and_insert_rolls_everything_back(make_user, make_event):
    event = make_event(capacity=10)
    first, late, last = make_user(), make_user(), make_user()
    other = TicketCommittedMeanwhile(event_id=event.id, user_id=late.id)
    other.start()

    def issue():
        with transaction.atomic():
            return ticket_issue_many(event_id=event.id, user_ids=[first.id, late.id, last.id])

    kind, error = other.commit_during(issue)
    assert kind == "error" and isinstance(error, IntegrityError), error
    assert "one_active_per_student_event" in str(error)
    # Nothing of the batch stayed: no seat taken, no ticket for the others.
    assert remaining(event) == 10
    assert list(Ticket.objects.filter(event=event).values_list("user_id", flat=True)) == [late.id]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_batches_and_single_claims_racing_never_oversell(make_event):
    event = make_event(capacity=50)
    students = bulk_students(90)
    ids = [s.id for s in students]
    jobs = []
    # Twelve batch issuers over overlapping slices, and one single issuer per tenth student.
    for start in range(0, 90, 10):
        jobs.append(lambda chunk=ids[start : start + 15]: ticket_issue_many(event_id=event.id, user_ids=chunk))
        jobs.append(lambda chunk=ids[::-1][start : start + 8]: ticket_issue_many(event_id=event.id, user_ids=chunk))
    for student_id in ids[::10]:

        def single(student_id=student_id):
            try:
                return {student_id: issue_ticket(event_id=event.id, user_id=student_id)}
            except TicketError as refusal:
                return {student_id: refusal}

        jobs.append(single)

    results = list(itertools.chain.from_iterable(value.items() for value in race_values(jobs)))
    issued = [(user_id, o) for user_id, o in results if isinstance(o, Ticket)]
    refusals = {o.code for _, o in results if not isinstance(o, Ticket)}
    assert refusals <= {"sold_out", AlreadyHasTicket.code}, refusals
    active = Ticket.objects.filter(event=event, status=Ticket.Status.ACTIVE)
    assert len(issued) == active.count() == 50
    assert active.values("user").distinct().count() == 50
    assert {(user_id, o.id) for user_id, o in issued} == set(active.values_list("user_id", "id"))
    assert remaining(event) == 0
