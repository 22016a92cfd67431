"""Beat schedule of the tickets app (merged into the Celery app in ticketwar/celery.py).

Every 30 s: a ticket e-mail whose message was lost, left while claims were waiting, or whose
try failed is sent within a sweep of becoming due (the task is in ``claims.tasks``). Every 15 s:
the tickets not confirmed by a confirmation request's deadline are given back.
"""

from __future__ import annotations

SCHEDULE = {
    "tickets-mail-sweep": {"task": "tickets.mail_sweep", "schedule": 30.0, "options": {"expires": 25.0}},
    "tickets-release-unconfirmed": {
        "task": "tickets.release_unconfirmed",
        "schedule": 15.0,
        "options": {"expires": 15.0},
    },
}
