"""Beat schedule of the claim queue (merged into the Celery app in ticketwar/celery.py).

The 2-second tick is the heartbeat, not the pace: claims wake a worker themselves and a drain
runs batch after batch. ``expires`` drops ticks that a busy worker could not start in time, so
they never pile up.
"""

from __future__ import annotations

SCHEDULE = {
    "queueing-tick": {"task": "queueing.process_queue", "schedule": 2.0, "options": {"expires": 2.0}},
    "queueing-reap-leases": {"task": "queueing.reap_leases", "schedule": 10.0, "options": {"expires": 10.0}},
    "queueing-cleanup": {"task": "queueing.cleanup", "schedule": 300.0, "options": {"expires": 300.0}},
}
