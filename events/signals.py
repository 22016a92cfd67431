"""Signals of the events app.

``event_changed`` is sent after commit of every event write (create, update, capacity included,
publish, cancel) with ``event_id``. Receivers are connected in each app's ``AppConfig.ready``.
(Seat changes are not signalled: ``events.seats`` runs what follows them itself, in order.)
"""

from __future__ import annotations

from django.dispatch import Signal

event_changed = Signal()  # kwargs: event_id
