from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WaitlistConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "waitlist"
    label = "waitlist"  # the tables, migrations and admin URLs keep their names
    verbose_name = _("Waiting list and confirmations")

    def ready(self) -> None:
        # Receivers are connected once every app is loaded (Django's AppConfig.ready).
        from tickets.signals import seats_changed

        from .services import waitlist_on_seats_changed

        seats_changed.connect(waitlist_on_seats_changed, dispatch_uid="waitlist.on_seats_changed")
