from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        # The receivers that write the revocation feed (logins, logouts, changes of users).
        from . import revocation

        revocation.connect_signals()
