from __future__ import annotations

from django.apps import AppConfig


class LibConfig(AppConfig):
    """Shared helpers; ``ready`` connects the user-cache signals."""

    name = "ticketwar.lib"
    label = "twlib"
    verbose_name = "Shared helpers"

    def ready(self) -> None:
        # Receivers are connected once every app is loaded (Django's AppConfig.ready).
        from . import auth

        auth.connect_signals()
