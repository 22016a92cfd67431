"""Signals of the events app.

``event_changed`` is sent after commit of every event write (create, update, capacity included,
publish, cancel) with ``event_id``. Seat changes by ticket issuing are announced by
``tickets.signals.seats_changed``. Receivers are connected in each app's ``AppConfig.ready``.
"""

from __future__ import annotations

from django.dispatch import Signal

event_changed = Signal()  # kwargs: event_id
