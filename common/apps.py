from __future__ import annotations

from django.apps import AppConfig


class LibConfig(AppConfig):
    """Shared helpers (no models, no receivers)."""

    name = "common"
    label = "common"
    verbose_name = "Shared helpers"
