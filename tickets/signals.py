"""Signals of the tickets app.

``seats_changed`` is sent after commit whenever seats are taken or freed (a ticket issued,
given back, a waiting-list offer held or released), with ``event_id``; every seat change sends
it once. Receivers (cache refresh, waiting list) are connected in their app's ``AppConfig.ready``.
"""

from __future__ import annotations

from django.dispatch import Signal

seats_changed = Signal()  # kwargs: event_id
