"""Times as organisers read them in narrow admin columns: ``1 Des 14:05 WIB``."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.formats import date_format


def long_local(value: datetime) -> str:
    """``Kamis, 3 Desember 2026, 09:58 WIB``: for mails, where there is room."""
    local = timezone.localtime(value)
    return f"{date_format(local, 'l, j F Y, H:i')} {local.tzname()}"


def short_local(value: datetime | None) -> str:
    """Day, month and time in the site's zone, with the zone's name (WIB); "—" for none.

    The year is left out when it is this year: an event list fits a 1366-pixel screen.
    """
    if value is None:
        return "—"
    local = timezone.localtime(value)
    pattern = "j M, H:i" if local.year == timezone.localtime().year else "j M Y, H:i"
    return f"{date_format(local, pattern)} {local.tzname()}"
