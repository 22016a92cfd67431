from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WaitlistConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "waitlist"
    label = "waitlist"  # the tables, migrations and admin URLs keep their names
    verbose_name = _("Waiting list")

    def ready(self) -> None:
        # The seats belong to events, an app below this one: it learns here who offers the seats
        # it frees (events/seats.py runs it after the commit of every change that frees seats).
        from events.seats import freed_seats_go_to

        from .services import waitlist_offer_freed

        freed_seats_go_to(waitlist_offer_freed)
