"""The ``?since=&until=`` time range of the exports and the history API."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from common.errors import DomainError

DEFAULT_RANGE = timedelta(hours=24)
MAX_RANGE = timedelta(days=31)


class BadTimeRange(DomainError):
    status = 400
    code = "bad_time_range"
    default_message = "The time range is not valid."


def _parse(name: str, raw: str) -> datetime:
    # A "+" in a query string arrives as a space: "2026-11-26T10:00:00 07:00".
    text = raw.strip().replace(" ", "+")
    try:  # parse_* return None on a bad shape and raise on impossible values (month 13)
        value = parse_datetime(text)
        if value is None:
            day = parse_date(text)
            if day is not None:
                value = datetime(day.year, day.month, day.day)  # noqa: DTZ001 - made aware below
    except ValueError:
        value = None
    if value is None:
        raise BadTimeRange(
            _("“%(name)s” must be an ISO 8601 date or datetime, e.g. 2026-11-26T10:00:00+07:00.") % {"name": name},
            field=name,
        )
    try:
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        # A window around it must fit between years 1 and 9999 (?until=0001-01-01 overflowed).
        value - MAX_RANGE, value + MAX_RANGE
    except OverflowError:
        raise BadTimeRange(_("“%(name)s” is out of range.") % {"name": name}, field=name) from None
    return value


def parse_range(params, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """(since, until) from the query string; defaults to the last 24 hours."""
    now = now or timezone.now()
    until = _parse("until", params["until"]) if params.get("until") else now
    since = _parse("since", params["since"]) if params.get("since") else until - DEFAULT_RANGE
    if since >= until:
        raise BadTimeRange(_("“since” must be earlier than “until”."))
    if until - since > MAX_RANGE:
        raise BadTimeRange(_("The time range may span at most 31 days."))
    return since, until
