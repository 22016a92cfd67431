"""Sending the ticket e-mail: scheduled where seats become tickets, after commit, once per ticket,
and a dead mail server costs a failed try (retried later), never an error."""

from __future__ import annotations

import email
import time
from datetime import timedelta
from email import policy

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone, translation

from claims.tasks import mail_sweep, mail_ticket
from common.breaker import get_breaker
from events.models import Event
from queueing.models import QueueEntry
from tickets import delivery
from tickets.delivery import MAIL_FIRST_RETRY, SWEEP_GRACE, Outcome, mails_due, ticket_mail_send
from tickets.models import Ticket, TicketMail
from tickets.services import ticket_issue_many, ticket_return
from tools.testing import SmtpServer, door_open_times, free_port, issue_ticket, run_race
from waitlist.models import WaitlistEntry
from waitlist.services import waitlist_claim, waitlist_fill, waitlist_join


@pytest.fixture
def published(monkeypatch):
    """What would be handed to the broker: ``[(ticket ids, language)]``, one per message."""
    messages = []
    monkeypatch.setattr(delivery, "_publish", lambda ids, language: messages.append((sorted(ids), language)))
    return messages


def _ids(*tickets) -> list[str]:
    return sorted(str(t.id) for t in tickets)


@pytest.mark.django_db
def test_every_way_to_a_ticket_schedules_its_mail_once_after_commit(
    make_event, make_user, published, django_capture_on_commit_callbacks
):
    event = make_event(capacity=6, **door_open_times())
    one, many, waiting, late = make_user(), [make_user() for _ in range(3)], make_user(), make_user()

    # A claim decided alone, in the student's language when issued in their request.
    with django_capture_on_commit_callbacks(execute=True), translation.override("en"):
        single = issue_ticket(event_id=event.id, user_id=one.id)
    assert published == [(_ids(single), "en")]

    # A batch of the queue worker: one message for the whole batch, default language.
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        batch = ticket_issue_many(event_id=event.id, user_ids=[u.id for u in many])
    assert published == [(_ids(*batch.values()), "id")]

    # A waiting-list seat claimed on its offer page.
    holder = many[0]
    waitlist_join(students=[(event.id, waiting.id, None)])
    Event.objects.filter(pk=event.id).update(remaining=0)  # sold out: the list is open
    ticket_return(ticket_id=batch[holder.id].id, user_id=holder.id)
    assert waitlist_fill(event_id=event.id) == 1
    offer = WaitlistEntry.objects.get(user=waiting, status=WaitlistEntry.Status.OFFERED)
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        held = waitlist_claim(public_id=offer.public_id, user_id=waiting.id)
    assert published == [(_ids(held), "id")]

    # Nothing for a rolled-back issue, nor for a refusal.
    other = make_event(capacity=5, **door_open_times())
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            issue_ticket(event_id=other.id, user_id=late.id)
            raise RuntimeError("rolled back")
        ticket_issue_many(event_id=event.id, user_ids=[one.id])  # already holds one: refused
    assert published == []
    assert not Ticket.objects.filter(user=late).exists()


@pytest.mark.django_db
def test_the_task_sends_one_mail_however_often_it_runs(make_ticket):
    ticket = make_ticket()
    assert mail_ticket([str(ticket.id)], "") == {"sent": 1, "failed": 0, "skipped": 0}
    # Delivered twice by the broker (acks_late), or run again by hand: the row says it is sent.
    assert mail_ticket([str(ticket.id)], "") == {"sent": 0, "failed": 0, "skipped": 1}
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [ticket.user.email]
    row = TicketMail.objects.get(ticket=ticket)
    assert row.sent_at is not None and row.attempts == 1
    assert ticket.id not in mails_due(now=timezone.now() + timedelta(hours=1))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_racing_runs_send_exactly_one_mail(make_ticket):
    """The task and its duplicate and the sweep at the same moment, on their own connections."""
    ticket = make_ticket()
    outcomes = [value for kind, value in run_race([lambda: ticket_mail_send(ticket_id=ticket.id)] * 8)]
    assert sorted(outcomes) == [Outcome.SENT] + [Outcome.SKIPPED] * 7, outcomes
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_dead_mail_server_costs_a_failed_try_and_a_later_one_delivers(make_ticket, guarded_smtp):
    ticket = make_ticket()
    guarded_smtp.EMAIL_PORT = free_port()  # connections refused: a real SMTP failure
    started = time.monotonic()
    assert ticket_mail_send(ticket_id=ticket.id) == Outcome.FAILED  # no exception
    assert time.monotonic() - started < 2
    row = TicketMail.objects.get(ticket=ticket)
    assert row.sent_at is None and row.attempts == 1
    assert timezone.now() + MAIL_FIRST_RETRY - timedelta(seconds=10) < row.next_try_at
    # Not tried again before its delay, by the task or the sweep...
    assert ticket_mail_send(ticket_id=ticket.id) == Outcome.SKIPPED
    assert ticket.id not in mails_due()
    # ...and after it, it goes out once the server is back.
    later = timezone.now() + MAIL_FIRST_RETRY + timedelta(seconds=1)
    assert mails_due(now=later) == [ticket.id]
    get_breaker("smtp").reset()
    with SmtpServer() as server:
        guarded_smtp.EMAIL_PORT = server.port
        assert ticket_mail_send(ticket_id=ticket.id, now=later) == Outcome.SENT
    (received,) = server.received
    text = email.message_from_bytes(received, policy=policy.default).get_body(("plain",)).get_content()
    assert ticket.redeem_code[:4] in text
    row.refresh_from_db()
    assert row.sent_at is not None and row.attempts == 2


@pytest.mark.django_db
def test_no_mail_for_a_ticket_given_back_used_or_of_an_event_started(make_ticket, make_event, staff):
    returned, used, started = make_ticket(), make_ticket(), make_ticket()
    ticket_return(ticket_id=returned.id, user_id=returned.user_id)
    Ticket.objects.filter(pk=used.pk).update(admitted_at=timezone.now(), admitted_by=staff)
    now = timezone.now()
    Event.objects.filter(pk=started.event_id).update(
        claim_opens_at=now - timedelta(hours=2),
        claim_closes_at=now - timedelta(hours=1),
        starts_at=now - timedelta(minutes=1),
    )
    Ticket.objects.update(issued_at=timezone.now() - SWEEP_GRACE * 2)
    assert mails_due() == []
    for ticket in (returned, used, started):
        assert ticket_mail_send(ticket_id=ticket.id) == Outcome.SKIPPED
    assert mail.outbox == []


@pytest.mark.django_db
def test_mail_waits_while_claims_wait_and_the_sweep_sends_it_after(make_ticket, make_user, make_event):
    """One worker may serve claims and mail: a slow mail server must not hold it while students wait."""
    ticket = make_ticket()
    claim = QueueEntry.objects.create(user=make_user(), event=make_event(), status=QueueEntry.Status.PENDING)
    assert mail_ticket([str(ticket.id)], "") == {"sent": 0, "failed": 0, "skipped": 0}
    assert not TicketMail.objects.filter(ticket=ticket).exists()
    Ticket.objects.filter(pk=ticket.pk).update(issued_at=timezone.now() - SWEEP_GRACE * 2)
    assert mail_sweep() == {"sent": 0, "failed": 0, "skipped": 0}  # the claim still waits
    QueueEntry.objects.filter(pk=claim.pk).update(status=QueueEntry.Status.FAILED, reason="sold_out")
    assert mail_sweep() == {"sent": 1, "failed": 0, "skipped": 0}
    assert len(mail.outbox) == 1
