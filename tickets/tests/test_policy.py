"""The claim policy and its SQL twins, driven by one table of cases.

Each row sets up a student's standing (who they are, a ticket held, a claim still in the queue)
and the event's state in the real database, then asks the policy (fed by the one standing query,
``waitlist.standing.standing_of``) and every SQL twin of the rules it encodes: they must agree.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from events.models import Event
from queueing.deciding import SHUFFLE_GATE_SQL
from queueing.models import QueueEntry
from queueing.services import HOLDER_RECHECK, queue_enqueue
from tickets.exceptions import AlreadyHasTicket, TicketError
from tickets.models import Ticket
from tickets.policy import HELD_TICKET_SQL, claim_verdict, give_back_refusal, student_refusal
from tickets.selectors import ticket_as_dict
from tickets.services import ticket_return
from tools.testing import issue_ticket
from waitlist.standing import standing_of

pytestmark = pytest.mark.django_db

# (student, holds a ticket, has a claim in the queue, the event's state) -> the answer, first
# refusal first. "entry": their claim in the queue is the answer; "queue" / "prequeue": a new claim.
CASES = [
    ("visitor", False, False, "open", "not_eligible"),
    ("unverified", False, False, "open", "not_eligible"),
    ("inactive", False, False, "open", "not_eligible"),
    ("staff", False, False, "open", "not_eligible"),
    ("unverified", True, False, "open", "not_eligible"),  # 1 before 2
    ("student", True, False, "open", "already_has_ticket"),
    ("student", True, False, "sold_out", "already_has_ticket"),
    ("student", True, False, "cancelled", "already_has_ticket"),  # 2 before 3
    ("student", True, True, "open", "already_has_ticket"),  # 2 before 4
    ("student", False, True, "cancelled", "event_unavailable"),  # 3 before 4
    ("student", False, False, "draft", "event_unavailable"),
    ("student", False, True, "open", "entry"),
    ("student", False, True, "sold_out", "entry"),  # 4 before 5
    ("student", False, True, "closed", "entry"),
    ("student", False, True, "prequeue", "entry"),
    ("student", False, False, "not_open", "not_open"),
    ("student", False, False, "prequeue", "prequeue"),
    ("student", False, False, "sold_out", "sold_out"),
    ("student", False, False, "closed", "claim_closed"),
    ("student", False, False, "open", "queue"),
    ("student", False, False, "shuffled_frozen", "queue"),
]


def _ids(case) -> str:
    who, holds, queued, state, _answer = case
    return "-".join([who, *(["holder"] if holds else []), *(["queued"] if queued else []), state])


@pytest.fixture
def standing_case(make_event, make_user):
    """Build one row of ``CASES`` in the database: ``(user, event)`` as they then are."""

    def build(who: str, holds: bool, queued: bool, state: str):
        now = timezone.now()
        shuffled = state in ("prequeue", "shuffled_frozen")
        event = make_event(
            capacity=3,
            opens_in=3600 if state in ("not_open", "prequeue") else -60,
            **({"opening_mode": Event.OpeningMode.SHUFFLE_AT_OPEN} if shuffled else {}),
        )
        user = AnonymousUser() if who == "visitor" else make_user(staff=who == "staff")
        if holds:  # issued while the window was open, whatever it is now
            Event.objects.filter(pk=event.pk).update(claim_opens_at=now - timedelta(minutes=1))
            issue_ticket(event_id=event.id, user_id=user.id)
            Event.objects.filter(pk=event.pk).update(claim_opens_at=event.claim_opens_at)
        if queued:
            QueueEntry.objects.create(user=user, event=event, prequeue=state == "prequeue")
        if who in ("inactive", "unverified"):  # since the ticket, if any, was issued
            type(user).objects.filter(pk=user.pk).update(
                **({"is_active": False} if who == "inactive" else {"email_verified_at": None})
            )
            user.refresh_from_db()
        changes = {
            "sold_out": {"remaining": 0},
            "closed": {"claim_opens_at": now - timedelta(days=1), "claim_closes_at": now - timedelta(minutes=1)},
            "cancelled": {"status": Event.Status.CANCELLED},
            "draft": {"status": Event.Status.DRAFT},
            "shuffled_frozen": {"draw_frozen_at": now - timedelta(seconds=30)},
        }.get(state, {})
        Event.objects.filter(pk=event.pk).update(**changes)
        return user, Event.objects.get(pk=event.pk)

    return build


def _answer(verdict) -> str:
    if verdict.refusal is not None:
        return verdict.refusal.code
    if verdict.entry is not None:
        return "entry"
    return "prequeue" if verdict.prequeue else "queue"


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_the_policy_answers_from_the_standing_first_refusal_first(case, standing_case, django_assert_num_queries):
    who, holds, queued, state, expected = case
    user, event = standing_case(who, holds, queued, state)
    with django_assert_num_queries(0 if who == "visitor" else 1):
        standing = standing_of(user=user, event=event)
    verdict = claim_verdict(standing, event=event, now=timezone.now())
    assert _answer(verdict) == expected
    if expected == "already_has_ticket":  # the 409 carries the ticket held
        held = Ticket.objects.select_related("event").get(user_id=user.pk)
        assert verdict.refusal.as_dict()["ticket"] == ticket_as_dict(held)
    if expected == "entry":
        assert verdict.entry.pk == QueueEntry.objects.get(user_id=user.pk).pk
    # The lease's shuffle gate (SHUFFLE_GATE_SQL) holds back exactly the events whose pre-queue
    # the policy keeps open (step 5).
    with connection.cursor() as cursor:
        cursor.execute(SHUFFLE_GATE_SQL)
        gated = event.id in {row[0] for row in cursor.fetchall()}
    assert gated == event.prequeue_open == (state == "prequeue")


# The SQL twins of the rules, asked in the same database state as the policy. For the students
# rule 1 lets through, the twins of rule 2 (a ticket held) see what the policy sees.
ELIGIBLE = [c for c in CASES if c[0] == "student"]


def _recheck_refuses(user, event) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT ticket_queue_refuse_holder(%s, %s)", [event.id, user.id])
    except IntegrityError as exc:
        assert exc.__cause__.diag.constraint_name == HOLDER_RECHECK
        return True
    return False


@pytest.mark.parametrize("case", ELIGIBLE, ids=_ids)
def test_the_sql_twins_agree_with_the_policy(case, standing_case):
    user, event = standing_case(*case[:4])
    holds, queued = case[1], case[2]
    now = timezone.now()
    standing = standing_of(user=user, event=event)
    verdict = claim_verdict(standing, event=event, now=now)
    refused_as_holder = isinstance(student_refusal(standing), AlreadyHasTicket)
    # HELD_TICKET_SQL, in the claim's one statement.
    with connection.cursor() as cursor:
        cursor.execute(HELD_TICKET_SQL, {"event_id": event.id, "user_id": user.id})
        assert (cursor.fetchone() is not None) == refused_as_holder == holds
    # ticket_queue_refuse_holder, that statement's re-check.
    assert _recheck_refuses(user, event) == refused_as_holder
    # The claim's one statement itself holds rules 2 and 4: where the policy would queue it
    # inserts (into the pre-queue where the policy says so); where the standing answers, nothing.
    entry = queue_enqueue(user_id=user.id, event=event, prequeue=event.prequeue_open, now=now)
    assert (entry is not None) == (not holds and not queued)
    if verdict.queues:
        assert entry is not None and entry.prequeue == verdict.prequeue


# Giving a ticket back: (the ticket's state) -> the refusal, first first; None: it may go back.
GIVE_BACK = [
    ("active", None),
    ("returned", "ticket_returned"),
    ("admitted", "ticket_used"),
    ("started", "return_closed"),
    ("admitted_and_started", "ticket_used"),
]


@pytest.mark.parametrize(("state", "expected"), GIVE_BACK)
def test_give_back_the_page_and_the_service_say_the_same(state, expected, make_event, make_user, client):
    user = make_user()
    event = make_event(capacity=2)
    ticket = issue_ticket(event_id=event.id, user_id=user.id)
    now = timezone.now()
    if state == "returned":
        ticket_return(ticket_id=ticket.id, user_id=user.id)
    if state.startswith("admitted"):
        Ticket.objects.filter(pk=ticket.pk).update(admitted_at=now)
    if state.endswith("started"):
        Event.objects.filter(pk=event.pk).update(
            claim_opens_at=now - timedelta(days=2), claim_closes_at=now - timedelta(days=1), starts_at=now
        )
    ticket = Ticket.objects.select_related("event").get(pk=ticket.pk)
    refusal = give_back_refusal(ticket, now=timezone.now())
    assert (refusal.code if refusal else None) == expected
    client.force_login(user)
    page = client.get(f"/tickets/{ticket.id}/return/").content.decode()
    assert ('class="return-form"' in page) == (expected is None)
    if refusal is not None:  # the page says why, in the words the give-back itself answers with
        assert f'<p id="give-back-refusal">{refusal.message}</p>' in page
    try:
        ticket_return(ticket_id=ticket.id, user_id=user.id)
        answered = None
    except TicketError as exc:
        answered = exc.code
    assert answered == expected
    assert give_back_refusal(None, now=now).code == "ticket_not_found"
