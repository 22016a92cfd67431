from __future__ import annotations

from django.apps import AppConfig


class WaitlistConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "queueing.waitlist"
    label = "waitlist"  # the tables, migrations and admin URLs keep their names
    verbose_name = "Waiting list and confirmations"

    def ready(self) -> None:
        from tickets.services import on_seats_changed

        from .services import waitlist_after_seats_changed

        on_seats_changed(waitlist_after_seats_changed)
