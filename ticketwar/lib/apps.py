from __future__ import annotations

from django.apps import AppConfig


class LibConfig(AppConfig):
    """Shared helpers; ``ready`` wires cache invalidation into the services' hooks."""

    name = "ticketwar.lib"
    label = "twlib"
    verbose_name = "Shared helpers"

    def ready(self) -> None:
        from events import cache as events_cache

        from . import auth

        auth.connect_signals()
        events_cache.connect()
