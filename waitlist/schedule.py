"""Beat schedule of the waiting list (merged into the Celery app in ticketwar/celery.py).

Every 15 s: an offer's 15-minute window is honoured to within a few seconds, and a freed seat
the after-commit hook missed (worker restart) is offered within one sweep.
"""

from __future__ import annotations

SCHEDULE = {
    "waitlist-tick": {"task": "waitlist.tick", "schedule": 15.0, "options": {"expires": 15.0}},
}
