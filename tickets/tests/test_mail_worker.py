"""The ticket e-mail with a real Celery worker and a real SMTP server (or none listening)."""

from __future__ import annotations

import email
import time
from datetime import timedelta
from email import policy

import pytest
from celery import current_app
from django.db import transaction
from django.utils import timezone

from claims.services import claim_submit
from claims.tasks import MAIL_SWEEP_TASK
from queueing.models import QueueEntry
from tickets.models import Ticket, TicketMail
from tools.testing import SmtpServer, bulk_students, door_open_times, free_port, issue_ticket, wait_until

pytestmark = pytest.mark.slow


def _mailing_to(port: int) -> dict[str, str]:
    """A worker's environment to send over SMTP to 127.0.0.1:port (through the guarded backend)."""
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "EMAIL_TIMEOUT": "2",
    }


def _worker_idle() -> bool:
    """Has the worker finished every task it has (none running, none waiting in its prefetch)?"""
    inspector = current_app.control.inspect(timeout=1)
    active, reserved = inspector.active(), inspector.reserved()
    if active is None or reserved is None:  # no answer: not known to be idle
        return False
    return not any([*active.values(), *reserved.values()])


def _read(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


def test_claims_decided_by_the_worker_mail_each_student_once_and_only_after_commit(celery_worker_process, make_event):
    event = make_event(capacity=10, **door_open_times())
    students, late = bulk_students(3), bulk_students(1)[0]
    with SmtpServer() as smtp:
        celery_worker_process(**_mailing_to(smtp.port))

        # Issued in a transaction that then rolls back: no mail, then or ever.
        with pytest.raises(RuntimeError), transaction.atomic():
            issue_ticket(event_id=event.id, user_id=late.id)
            time.sleep(1.5)  # a mail sent before the commit would be at the server by now
            assert smtp.received == []
            raise RuntimeError("rolled back")

        for user in students:
            claim_submit(user=user, event_slug=event.slug)
        wait_until(lambda: len(smtp.received) >= 3, timeout=60, message="three ticket mails")
        time.sleep(1)  # a duplicate would follow within a second
        mails = [_read(raw) for raw in smtp.received]

    assert sorted(m["To"] for m in mails) == sorted(u.email for u in students)
    for user in students:
        ticket = Ticket.objects.get(user=user, event=event)
        (mine,) = [m for m in mails if m["To"] == user.email]
        assert ticket.redeem_code[:4] in mine.get_body(("plain",)).get_content()
        assert any(part.get_content_type() == "image/png" for part in mine.walk())
        row = TicketMail.objects.get(ticket=ticket)
        assert row.sent_at is not None and row.attempts == 1
    assert not Ticket.objects.filter(user=late).exists()
    assert TicketMail.objects.count() == 3


def test_a_dead_mail_server_never_holds_up_a_claim_and_the_sweep_delivers_later(celery_worker_process, make_event):
    event = make_event(capacity=30, **door_open_times())
    students = bulk_students(20)
    port = free_port()  # nothing listens: every connection is refused, a real SMTP failure
    celery_worker_process(**_mailing_to(port))
    for user in students:
        claim_submit(user=user, event_slug=event.slug)
    wait_until(
        lambda: QueueEntry.objects.filter(event=event, status=QueueEntry.Status.COMPLETED).count() == 20,
        timeout=60,
        message="every claim decided",
    )
    assert Ticket.objects.filter(event=event, status=Ticket.Status.ACTIVE).count() == 20
    # The mail path did run, and failed, after the claims were decided.
    wait_until(lambda: TicketMail.objects.filter(attempts__gte=1).exists(), timeout=30, message="a mail tried")
    # Every failure written: a try still failing would push its mail's next try past the one set below.
    wait_until(_worker_idle, timeout=30, message="the mail tasks over")
    assert not TicketMail.objects.filter(sent_at__isnull=False).exists()

    # The server comes back; once their delays are over, the sweep delivers every mail once.
    now = timezone.now()
    Ticket.objects.filter(event=event).update(issued_at=now - timedelta(minutes=5))
    TicketMail.objects.update(next_try_at=now)
    with SmtpServer(port) as smtp:
        for _ in range(6):  # the worker's breaker lets a probe through 5 s after it opened
            current_app.send_task(MAIL_SWEEP_TASK)
            try:
                wait_until(lambda: len(smtp.received) >= 20, timeout=5)
                break
            except AssertionError:
                continue
        wait_until(lambda: len(smtp.received) >= 20, timeout=10, message="every mail delivered")
        time.sleep(1)
        received = [_read(raw)["To"] for raw in smtp.received]
    assert sorted(received) == sorted(u.email for u in students)
    assert TicketMail.objects.filter(sent_at__isnull=False).count() == 20
