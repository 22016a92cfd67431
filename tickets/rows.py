"""Inserting ticket rows with unique redeem codes. Called only by ``tickets.services``, whose
issuing functions take the seat first and decide who may receive a ticket.

Every ticket row is inserted here, so this is where each one's e-mail is scheduled: sent after
the issuing transaction commits (``tickets.delivery``), never for a rolled-back issue."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from .codes import new_redeem_code
from .delivery import ticket_mail_schedule
from .exceptions import AlreadyHasTicket
from .models import Ticket

_INSERT_TICKETS_SQL = """
INSERT INTO tickets_ticket (id, event_id, user_id, redeem_code, status, issued_at, admitted_device, changed_at)
SELECT t.id, %(event_id)s, t.user_id, t.code, 'active', t.issued_at, '', t.issued_at
FROM unnest(%(ids)s::uuid[], %(user_ids)s::bigint[], %(codes)s::varchar[], %(issued)s::timestamptz[])
    AS t(id, user_id, code, issued_at)
-- A redeem code drawn twice is skipped (and redrawn); a second active ticket still raises.
ON CONFLICT (redeem_code) DO NOTHING
RETURNING user_id
"""


def insert_tickets(
    *, event_id: int, user_ids: list[int], languages: Mapping[int, str] | None = None
) -> dict[int, Ticket]:
    """Insert one active ticket per user in one statement, redrawing colliding redeem codes.

    Each ticket's e-mail goes out after commit in its student's language (``languages``, else the
    active one)."""
    start = timezone.now()
    # One microsecond apart in seat order, so ordering by issued_at keeps who came first.
    pending = {
        user_id: Ticket(
            id=uuid.uuid4(),
            event_id=event_id,
            user_id=user_id,
            status=Ticket.Status.ACTIVE,
            issued_at=start + timedelta(microseconds=index),
        )
        for index, user_id in enumerate(user_ids)
    }
    issued: dict[int, Ticket] = {}
    for _attempt in range(5):
        codes: set[str] = set()
        for ticket in pending.values():
            ticket.redeem_code = new_redeem_code()
            while ticket.redeem_code in codes:
                ticket.redeem_code = new_redeem_code()
            codes.add(ticket.redeem_code)
        tickets = list(pending.values())
        with connection.cursor() as cursor:
            cursor.execute(
                _INSERT_TICKETS_SQL,
                {
                    "event_id": event_id,
                    "ids": [t.id for t in tickets],
                    "user_ids": [t.user_id for t in tickets],
                    "codes": [t.redeem_code for t in tickets],
                    "issued": [t.issued_at for t in tickets],
                },
            )
            inserted = [row[0] for row in cursor.fetchall()]
        for user_id in inserted:
            ticket = pending.pop(user_id)
            ticket._state.adding = False
            ticket._state.db = connection.alias
            issued[user_id] = ticket
        if not pending:
            by_language: dict[str | None, list[uuid.UUID]] = {}
            for user_id, ticket in issued.items():
                by_language.setdefault((languages or {}).get(user_id) or None, []).append(ticket.id)
            for language, ticket_ids in by_language.items():
                ticket_mail_schedule(ticket_ids=ticket_ids, language=language)
            return issued
    raise RuntimeError("could not draw unique redeem codes in 5 attempts")


def insert_ticket(*, event_id: int, user_id: int) -> Ticket:
    """``insert_tickets`` for one student, in a savepoint: a second active ticket of the event
    (``tickets_ticket_one_active_per_student_event``) is refused with ``AlreadyHasTicket``."""
    try:
        with transaction.atomic():
            return insert_tickets(event_id=event_id, user_ids=[user_id])[user_id]
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""
        if "one_active_per_student_event" in constraint:
            raise AlreadyHasTicket() from None
        raise
