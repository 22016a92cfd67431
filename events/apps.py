from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = _("Events")

    def ready(self) -> None:
        # Receivers are connected once every app is loaded (Django's AppConfig.ready).
        from .cache import invalidate_on_event_changed
        from .signals import event_changed

        event_changed.connect(invalidate_on_event_changed, dispatch_uid="events.cache.invalidate")
