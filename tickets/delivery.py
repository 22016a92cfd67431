"""Sending the ticket e-mail: after the issuing commit, from the default queue, once per ticket.

- ``ticket_mail_schedule`` runs where ticket rows are inserted (``tickets.rows``, the one place
  a seat becomes a ticket): it registers one task message per issuing call for *after commit*.
  A rolled-back issue sends nothing, and the issuing transaction never waits for the broker,
  let alone for SMTP. The message goes to the ``default`` queue (``tickets.*`` is not routed to
  ``claims``), through the "broker" circuit breaker, and expires: the sweep is the safety net.
- ``ticket_mail_send`` sends one ticket's mail, exactly once in all but one case. It must first
  *claim* the ticket's ``TicketMail`` row with one statement (``_CLAIM_SQL``: an upsert whose
  update applies only while ``sent_at IS NULL AND next_try_at <= now``, and which moves
  ``next_try_at`` a lease ahead). Two runs of the same task (at-least-once delivery:
  ``acks_late``), or the task and the sweep, race on that row: PostgreSQL serialises the
  upserts on it and exactly one gets it back. The mail goes through ``common.mail``'s guarded
  backend (the "smtp" breaker: a dead or hung server costs a bounded time, then nothing), and
  then ``sent_at`` is written. The one duplicate left: a worker killed after the SMTP server
  took the mail and before ``sent_at`` was written sends it again after the lease.
- ``ticket_mail_sweep`` (beat, ``tickets/schedule.py``) sends what is due: mails never tried
  (their message lost with the broker, or left while claims were waiting) and failed ones
  past their delay, until the event starts.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from celery import current_app
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone, translation

from common.breaker import OPEN, get_breaker

from .mail import ticket_mail_message
from .models import Ticket, TicketMail

logger = logging.getLogger("ticketwar.tickets")

# Named, not imported: the task (claims.tasks) imports this module.
MAIL_TICKET_TASK = "tickets.mail_ticket"
# A message not started within this long is dropped by the worker; the sweep sends its mails.
MAIL_MESSAGE_EXPIRES_SECONDS = 120
# How long a claimed mail belongs to the run that claimed it: far above a send's worst case
# (a few SMTP round trips of EMAIL_TIMEOUT each), so a slow run is never doubled.
MAIL_LEASE = timedelta(minutes=5)
# After a failed try: 1, 2, 4 … minutes, at most 30.
MAIL_FIRST_RETRY = timedelta(minutes=1)
MAIL_MAX_RETRY = timedelta(minutes=30)
# The sweep leaves a fresh ticket to its own task message this long.
SWEEP_GRACE = timedelta(seconds=30)
# One sweep sends at most this many mails, for at most this long (it runs every 30 s).
SWEEP_LIMIT = 100
SWEEP_BUDGET_SECONDS = 20.0


class Outcome:
    SENT = "sent"
    FAILED = "failed"  # tried; the sweep tries again after the delay
    SKIPPED = "skipped"  # nothing to send (sent, being sent, given back, started, no address)


def ticket_mail_schedule(*, ticket_ids: Iterable[uuid.UUID], language: str | None = None) -> None:
    """Send the e-mails of these newly inserted tickets once the current transaction commits.

    Call inside the issuing transaction. ``language``: the students' (a claim decided by the
    worker carries its request's, ``QueueEntry.language``), else the active one (a student's
    request: a waiting-list seat claimed on its page).
    """
    ids = [str(ticket_id) for ticket_id in ticket_ids]
    if ids:
        language = language or translation.get_language() or ""
        transaction.on_commit(lambda: _publish(ids, language))


def _publish(ticket_ids: list[str], language: str) -> None:
    """Hand the mails to a worker. Never raises, never waits long: a lost message costs a sweep."""
    breaker = get_breaker("broker")
    if not breaker.allow():
        return
    try:
        current_app.signature(MAIL_TICKET_TASK).apply_async(
            args=[ticket_ids], kwargs={"language": language}, retry=False, expires=MAIL_MESSAGE_EXPIRES_SECONDS
        )
    except Exception:  # broker away: the sweep sends these mails
        breaker.record_failure()
        logger.warning("ticket e-mails not queued for %s; the sweep will send them", ticket_ids, exc_info=True)
    else:
        breaker.record_success()


_CLAIM_SQL = """
INSERT INTO tickets_ticketmail AS m (ticket_id, language, attempts, next_try_at, sent_at)
VALUES (%(ticket_id)s, %(language)s, 1, %(lease_until)s, NULL)
ON CONFLICT (ticket_id) DO UPDATE SET attempts = m.attempts + 1, next_try_at = EXCLUDED.next_try_at
WHERE m.sent_at IS NULL AND m.next_try_at <= %(now)s
RETURNING m.attempts, m.language
"""


def _claim(ticket_id: uuid.UUID, language: str, now: datetime) -> tuple[int, str] | None:
    """``(attempts, language)`` if this run may send the ticket's mail now, else None."""
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL, {"ticket_id": ticket_id, "language": language, "now": now, "lease_until": now + MAIL_LEASE}
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed try."""
    return min(MAIL_FIRST_RETRY * 2 ** max(0, attempts - 1), MAIL_MAX_RETRY)


def ticket_mail_send(*, ticket_id: uuid.UUID, language: str | None = None, now: datetime | None = None) -> str:
    """Send the ticket's e-mail unless it was sent, is being sent, or is no longer of use.

    Returns an ``Outcome``. Of use while the ticket is active and unused, its event has not
    started and its holder has an address. Runs in autocommit (each statement its own
    transaction); the network I/O happens with no lock held.
    """
    now = now or timezone.now()
    ticket = Ticket.objects.select_related("event", "user").filter(pk=ticket_id).first()
    if (
        ticket is None
        or ticket.status != Ticket.Status.ACTIVE
        or ticket.admitted_at is not None
        or ticket.event.starts_at <= now
        or not ticket.user.email
    ):
        return Outcome.SKIPPED
    claimed = _claim(ticket.id, language or "", now)
    if claimed is None:
        return Outcome.SKIPPED
    attempts, stored_language = claimed
    sent = ticket_mail_message(ticket, language=stored_language or language).send()
    if sent:
        TicketMail.objects.filter(pk=ticket.id).update(sent_at=timezone.now())
        return Outcome.SENT
    TicketMail.objects.filter(pk=ticket.id).update(next_try_at=timezone.now() + retry_delay(attempts))
    logger.warning("ticket e-mail of %s not sent (try %s)", ticket.id, attempts)
    return Outcome.FAILED


def ticket_mails_send(
    *, ticket_ids: Iterable[uuid.UUID], language: str | None = None, may_go_on: Callable[[], bool] = lambda: True
) -> dict[str, int]:
    """``ticket_mail_send`` for each ticket while ``may_go_on()`` (asked before each) and the
    "smtp" breaker is not open; the rest is left to the sweep. Returns the count per outcome."""
    counts = {Outcome.SENT: 0, Outcome.FAILED: 0, Outcome.SKIPPED: 0}
    breaker = get_breaker("smtp")
    started = time.monotonic()
    for ticket_id in ticket_ids:
        if breaker.state == OPEN or not may_go_on() or time.monotonic() - started > SWEEP_BUDGET_SECONDS:
            break
        try:
            outcome = ticket_mail_send(ticket_id=uuid.UUID(str(ticket_id)), language=language)
        except Exception:  # a bug in one mail must not stop the others; the lease brings it back
            logger.exception("ticket e-mail of %s failed", ticket_id)
            outcome = Outcome.FAILED
        counts[outcome] += 1
    return counts


def mails_due(*, now: datetime | None = None, limit: int = SWEEP_LIMIT) -> list[uuid.UUID]:
    """Tickets whose e-mail is due: never tried (and older than ``SWEEP_GRACE``) or failed and
    past its delay; active, unused, of an event not started, holder with an address. Oldest first."""
    now = now or timezone.now()
    due = (
        Ticket.objects.filter(
            status=Ticket.Status.ACTIVE,
            admitted_at__isnull=True,
            event__starts_at__gt=now,
            issued_at__lte=now - SWEEP_GRACE,
        )
        .exclude(user__email="")
        .filter(Q(mail__isnull=True) | Q(mail__sent_at__isnull=True, mail__next_try_at__lte=now))
        .order_by("issued_at")
        .values_list("id", flat=True)
    )
    return list(due[:limit])


def ticket_mail_sweep(*, may_go_on: Callable[[], bool] = lambda: True) -> dict[str, int]:
    """Send the e-mails that are due (``mails_due``), as ``ticket_mails_send`` does."""
    return ticket_mails_send(ticket_ids=mails_due(), may_go_on=may_go_on)
