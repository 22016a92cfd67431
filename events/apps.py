from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = _("Events")

    def ready(self) -> None:
        # Receivers are connected once every app is loaded (Django's AppConfig.ready).
        from tickets.signals import seats_changed

        from .cache import invalidate_on_event_changed, refresh_on_seats_changed
        from .signals import event_changed

        # Connected before the waiting list's receiver (INSTALLED_APPS order): the cached seat
        # count is fresh before a freed seat is offered.
        event_changed.connect(invalidate_on_event_changed, dispatch_uid="events.cache.invalidate")
        seats_changed.connect(refresh_on_seats_changed, dispatch_uid="events.cache.refresh_remaining")
