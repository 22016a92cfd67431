"""Concurrency proofs against the real PostgreSQL: threads, each with its own connection."""

from __future__ import annotations

import itertools

import pytest

from accounts.roles import DOOR_STAFF
from events.models import Event
from tickets.checkin import CheckIn, ticket_check_in
from tickets.exceptions import AlreadyHasTicket, SoldOut, TicketAlreadyUsed
from tickets.models import Ticket
from tickets.services import ticket_return
from tools.testing import issue_ticket, race_values, run_race

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_eighty_students_racing_for_fifty_seats_never_oversell(make_user, make_event):
    event = make_event(capacity=50)
    students = [make_user() for _ in range(80)]
    # Two threads per student at once, each trying twice: 160 threads, 320 attempts.
    jobs = []
    for student in students:
        for _thread in range(2):

            def attempts(student_id=student.id):
                results = []
                for _ in range(2):
                    try:
                        results.append(issue_ticket(event_id=event.id, user_id=student_id))
                    except Exception as exc:
                        results.append(exc)
                return results

            jobs.append(attempts)

    results = list(itertools.chain.from_iterable(race_values(jobs)))
    issued = [r for r in results if isinstance(r, Ticket)]
    refused = [r for r in results if not isinstance(r, Ticket)]
    assert len(issued) == 50
    assert {type(r) for r in refused} <= {SoldOut, AlreadyHasTicket}, {type(r) for r in refused}
    active = Ticket.objects.filter(event=event, status=Ticket.Status.ACTIVE)
    assert active.count() == 50
    assert active.values("user").distinct().count() == 50
    assert {t.user_id for t in issued} == set(active.values_list("user_id", flat=True))
    event.refresh_from_db()
    assert event.remaining == 0


def test_one_student_racing_twenty_threads_gets_exactly_one_ticket(student, make_event):
    event = make_event(capacity=10)
    outcomes = run_race([lambda: issue_ticket(event_id=event.id, user_id=student.id)] * 20)

    won = [value for kind, value in outcomes if kind == "ok"]
    lost = [value for kind, value in outcomes if kind == "error"]
    assert len(won) == 1
    assert all(isinstance(exc, AlreadyHasTicket) for exc in lost), lost
    assert Ticket.objects.filter(event=event, user=student).count() == 1
    event.refresh_from_db()
    assert event.remaining == 9


def test_scanners_racing_on_one_ticket_admit_it_exactly_once(make_ticket, make_user):
    ticket = make_ticket()
    scanners = [make_user(roles=(DOOR_STAFF,)) for _ in range(6)]
    jobs = [
        (lambda staff=staff, code=code: ticket_check_in(code=code, staff_user=staff, event_slug=ticket.event.slug))
        for staff, code in zip(scanners, [ticket.redeem_code, f"{ticket.redeem_code.lower()}"] * 3, strict=True)
    ]
    check_ins = race_values(jobs)
    results = [value.result for value in check_ins]
    assert results.count(CheckIn.ADMITTED) == 1
    assert results.count(CheckIn.ALREADY_ADMITTED) == 5
    ticket.refresh_from_db()
    winner = next(value for value in check_ins if value.result == CheckIn.ADMITTED)
    assert ticket.admitted_by_id == winner.ticket.admitted_by_id
    # Every loser is told the winner's time and name.
    for value in check_ins:
        assert value.admitted_at == ticket.admitted_at
        assert value.ticket.admitted_by_id == ticket.admitted_by_id


@pytest.mark.parametrize("round_", range(6))
def test_return_and_check_in_of_one_ticket_racing_exactly_one_wins(round_, make_ticket, staff):
    ticket = make_ticket()
    event_id = ticket.event_id

    def give_back():
        return ticket_return(ticket_id=ticket.id, user_id=ticket.user_id)

    def check_in():
        return ticket_check_in(code=ticket.redeem_code, staff_user=staff, event_slug=ticket.event.slug)

    # Alternate which thread starts first; the barrier releases them together anyway.
    if round_ % 2:
        returned, checked = run_race([give_back, check_in])
    else:
        checked, returned = run_race([check_in, give_back])
    assert checked[0] == "ok", checked

    ticket.refresh_from_db()
    remaining = Event.objects.get(pk=event_id).remaining
    if returned[0] == "ok":
        assert checked[1].result == CheckIn.INVALID
        assert ticket.status == Ticket.Status.RETURNED and ticket.admitted_at is None
        assert remaining == 500
    else:
        assert isinstance(returned[1], TicketAlreadyUsed)
        assert checked[1].result == CheckIn.ADMITTED
        assert ticket.status == Ticket.Status.ACTIVE and ticket.admitted_at is not None
        assert remaining == 499
