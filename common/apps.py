from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LibConfig(AppConfig):
    """Shared helpers; ``ready`` connects the user-cache signals."""

    name = "common"
    label = "common"
    verbose_name = _("Shared helpers")

    def ready(self) -> None:
        # Receivers are connected once every app is loaded (Django's AppConfig.ready).
        from . import auth

        auth.connect_signals()
