"""Beat schedule of monitoring (merged into the Celery app in ticketwar/celery.py).

``expires``: a tick that waited longer than its period behind a busy worker is useless; the
next one does the same work.
"""

from __future__ import annotations

SCHEDULE = {
    "monitoring-evaluate-alerts": {
        "task": "monitoring.tasks.evaluate_alerts",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "monitoring-sample-metrics": {
        "task": "monitoring.tasks.sample_metrics",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "monitoring-prune": {
        "task": "monitoring.tasks.prune",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
}
