"""The Celery app. Exactly one beat sends (a PostgreSQL lock, ticketwar/beat.py); workers may be many."""

from __future__ import annotations

import os
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning

from accounts.schedule import SCHEDULE as _ACCOUNTS_SCHEDULE
from common import broker as _broker
from monitoring.schedule import SCHEDULE as _MONITORING_SCHEDULE
from queueing.schedule import SCHEDULE as _QUEUE_SCHEDULE
from tickets.schedule import SCHEDULE as _TICKETS_SCHEDULE
from waitlist.schedule import SCHEDULE as _WAITLIST_SCHEDULE

_broker.install()  # before any broker connection: see common/broker.py
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketwar.settings")

# `make run` in a container or VM often runs as root: Celery's "superuser privileges" warning
# is then noise among the development logs. Only there; production runs the worker as its own
# user (deploy/) and keeps the warning, and C_FORCE_ROOT is never set.
if os.environ.get("TICKETWAR_ENV", "development") == "development":
    warnings.filterwarnings("ignore", category=SecurityWarning)

app = Celery("ticketwar")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# A second beat (a rolling update, a forgotten shell) idles instead of sending every task twice.
app.conf.beat_scheduler = "ticketwar.beat:LockedScheduler"
# Periodic tasks are declared next to the code they run, in each app's schedule.py (a plain
# ``SCHEDULE`` dict, no Django), and merged here, the one place the beat schedule is built.
app.conf.beat_schedule = {
    **_QUEUE_SCHEDULE,
    **_WAITLIST_SCHEDULE,
    **_MONITORING_SCHEDULE,
    **_TICKETS_SCHEDULE,
    **_ACCOUNTS_SCHEDULE,
}

from monitoring import heartbeat as _heartbeat  # noqa: E402,F401 - connects the heartbeat signals
