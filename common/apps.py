from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LibConfig(AppConfig):
    """Shared helpers (no models, no receivers)."""

    name = "common"
    label = "common"
    verbose_name = _("Shared helpers")
