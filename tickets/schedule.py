"""Beat schedule of the tickets app (merged into the Celery app in ticketwar/celery.py).

Every 30 s: a ticket e-mail whose message was lost, left while claims were waiting, or whose
try failed is sent within a sweep of becoming due.
"""

from __future__ import annotations

SCHEDULE = {
    "tickets-mail-sweep": {"task": "tickets.mail_sweep", "schedule": 30.0, "options": {"expires": 25.0}},
}
