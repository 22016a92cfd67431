"""A student's standing for one event, in one query: what the claim policy is fed.

``standing_of`` reads the active ticket they hold, their claim still in the queue and their row
on the event's waiting list (with the students waiting ahead of it) in one statement, and returns
them as a ``tickets.policy.Standing``. Here because this is the lowest app that sees all three
tables (tickets < queue < waiting list). Read by the claim (``claims.services.claim_submit``,
when its one statement put nothing in or the window is not open), the event page, and joining
the waiting list (``waitlist.services.waitlist_set_joined``).
"""

from __future__ import annotations

from django.db import connection

from events.models import Event
from queueing.models import QueueEntry
from tickets.models import Ticket
from tickets.policy import Standing

from .models import WaitlistEntry

_TICKET = Ticket._meta.concrete_fields
_ENTRY = QueueEntry._meta.concrete_fields
_PLACE = WaitlistEntry._meta.concrete_fields


def _columns(alias: str, fields) -> str:
    return ", ".join(f"{alias}.{field.column}" for field in fields)


# Each join finds at most one row: one active ticket (tickets_ticket_one_active_per_student_event),
# one live claim (ticket_queue_one_live_per_student_event), one list row (waitlist_one_per_student_event).
STANDING_SQL = f"""
SELECT {_columns("t", _TICKET)}, {_columns("q", _ENTRY)}, {_columns("w", _PLACE)},
    (SELECT count(*) FROM waitlist_waitlistentry AS a
     WHERE a.event_id = w.event_id AND a.status = 'waiting' AND a.id < w.id)
FROM (SELECT 1) AS one
LEFT JOIN tickets_ticket AS t
    ON t.event_id = %(event_id)s AND t.user_id = %(user_id)s AND t.status = 'active'
LEFT JOIN ticket_queue AS q
    ON q.event_id = %(event_id)s AND q.user_id = %(user_id)s AND q.status IN ('pending', 'processing')
LEFT JOIN waitlist_waitlistentry AS w
    ON w.event_id = %(event_id)s AND w.user_id = %(user_id)s
"""  # noqa: S608 - constant fragments, values are parameters


def _row(model, fields, values: tuple, event: Event):
    if values[0] is None:  # the primary key: no such row
        return None
    instance = model.from_db(connection.alias, [f.attname for f in fields], values)
    instance.event = event  # the same row the caller holds: no second read for it
    return instance


def standing_of(*, user, event: Event) -> Standing:
    """Where ``user`` stands with ``event`` (one query; none for a visitor not logged in)."""
    if user is None or not user.is_authenticated:
        return Standing(user)
    with connection.cursor() as cursor:
        cursor.execute(STANDING_SQL, {"event_id": event.pk, "user_id": user.pk})
        row = cursor.fetchone()
    ticket_end = len(_TICKET)
    entry_end = ticket_end + len(_ENTRY)
    place_end = entry_end + len(_PLACE)
    place = _row(WaitlistEntry, _PLACE, row[entry_end:place_end], event)
    if place is not None:
        place.waiting_ahead = row[place_end]
    return Standing(
        user,
        ticket=_row(Ticket, _TICKET, row[:ticket_end], event),
        entry=_row(QueueEntry, _ENTRY, row[ticket_end:entry_end], event),
        waitlist=place,
    )
