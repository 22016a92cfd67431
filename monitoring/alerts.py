"""Alert rules evaluated every 30 s: a state machine per rule key, notified on transitions.

For each key the condition is either crossed or clear:
- crossed, nothing firing          -> a new Alert in state ``firing``; notify "firing" once;
- crossed, firing                  -> remember the value; forget any clear streak;
- clear, firing                    -> start (or continue) a clear streak; once it has lasted the
                                      rule's cooldown, the alert becomes ``resolved``; notify once;
- clear, nothing firing            -> nothing.
The cooldown is hysteresis: a value hovering around the threshold keeps one alert firing
instead of sending a message per evaluation. A partial unique constraint (one firing alert per
key) makes overlapping evaluations unable to fire twice; notifications go out after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from . import activity, notify, selectors
from .metrics import ALERT_TRANSITIONS
from .models import Alert, AlertRule

logger = logging.getLogger("ticketwar.alerts")

# Serialises evaluations across processes (a duplicated beat tick waits or skips).
_ADVISORY_LOCK_ID = 0x7417A1E7


# The seeded rules (migrations 0003 and 0005 hold their own copy): metric, comparison, threshold,
# cooldown, share of the event's seats (remaining tickets: 50 seats is 10 % of the 500-seat lecture).
DEFAULT_RULES = [
    ("error_rate", "gt", 10.0, 60, None),
    ("response_time", "gt", 3000.0, 60, None),
    ("remaining_tickets", "lt", 50.0, 0, 10.0),
    ("concurrent_users", "gt", 1000.0, 120, None),
]


def alert_rules_ensure_defaults() -> None:
    """Create any of the four rules that is missing, with its default threshold."""
    for metric, comparison, threshold, cooldown, capacity_percent in DEFAULT_RULES:
        AlertRule.objects.get_or_create(
            metric=metric,
            defaults={
                "comparison": comparison,
                "threshold": threshold,
                "cooldown_seconds": cooldown,
                "capacity_percent": capacity_percent,
            },
        )


@dataclass(frozen=True)
class Reading:
    key: str
    value: float | None  # None: not enough data to judge (counts as clear)
    threshold: float | None = None  # this key's own threshold (remaining tickets); None: the rule's


def readings(rule: AlertRule, *, now: datetime) -> list[Reading]:
    """The current value(s) a rule looks at, one per key."""
    if rule.metric in (AlertRule.Metric.ERROR_RATE, AlertRule.Metric.RESPONSE_TIME):
        window = selectors.request_window(now=now)
        if window["requests"] < rule.min_requests:
            return [Reading(rule.metric, None)]
        value = window["error_rate"] if rule.metric == AlertRule.Metric.ERROR_RATE else window["p95_ms"]
        return [Reading(rule.metric, value)]
    if rule.metric == AlertRule.Metric.CONCURRENT_USERS:
        return [Reading(rule.metric, float(activity.count(now.timestamp())[0]))]
    # remaining_tickets: one key per event whose claim window is open now, held to a threshold
    # relative to its size (AlertRule.threshold_for). An event yet to open has all its seats, and
    # a 3-seat one has fewer than 50 from the start: neither is running out.
    seats = selectors.seats_per_event(now=now)
    keys = [
        Reading(f"{rule.metric}:{slug}", float(s["remaining"]), rule.threshold_for(capacity=s["capacity"]))
        for slug, s in seats.items()
        if s["claim_open"]
    ]
    # Events that left the list (closed, cancelled) clear their firing alerts.
    firing = Alert.objects.filter(rule=rule, state=Alert.State.FIRING).values_list("key", flat=True)
    known = {reading.key for reading in keys}
    keys += [Reading(key, None) for key in firing if key not in known]
    return keys


def evaluate_alerts(*, now: datetime | None = None) -> list[tuple[int, str]]:
    """Evaluate every enabled rule once; returns the (alert id, transition) pairs it made.

    Notifications are sent after the transaction commits (monitoring.notify).
    """
    now = now or timezone.now()
    transitions: list[tuple[int, str]] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_ADVISORY_LOCK_ID])
            if not cursor.fetchone()[0]:
                logger.info("alert evaluation already running elsewhere; skipped")
                return []
        rules = list(AlertRule.objects.filter(enabled=True))
        for rule in AlertRule.objects.filter(enabled=False):
            # A disabled rule must not leave alerts firing forever.
            transitions += [_resolve(alert, now) for alert in Alert.objects.filter(rule=rule, state="firing")]
        for rule in rules:
            for reading in readings(rule, now=now):
                step = _step(rule, reading, now)
                if step:
                    transitions.append(step)
        for alert_id, transition in transitions:
            transaction.on_commit(lambda a=alert_id, t=transition: _notify(a, t))
    return transitions


def _step(rule: AlertRule, reading: Reading, now: datetime) -> tuple[int, str] | None:
    threshold = rule.threshold if reading.threshold is None else reading.threshold
    crossed = reading.value is not None and rule.crossed(reading.value, threshold)
    alert = Alert.objects.select_for_update().filter(key=reading.key, state=Alert.State.FIRING).first()
    if alert is None:
        if not crossed:
            return None
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    rule=rule, key=reading.key, value=reading.value, last_value=reading.value,
                    threshold=threshold, started_at=now,
                )  # fmt: skip
        except IntegrityError:  # another evaluation fired it first: it will notify, not us
            return None
        ALERT_TRANSITIONS.labels(metric=rule.metric, state="firing").inc()
        logger.warning("alert firing: %s = %s (threshold %s)", reading.key, reading.value, threshold)
        return alert.id, "firing"
    if crossed:
        alert.last_value = reading.value
        alert.clear_since = None
        alert.save(update_fields=["last_value", "clear_since"])
        return None
    if reading.value is not None:
        alert.last_value = reading.value
    if alert.clear_since is None:
        alert.clear_since = now
    if (now - alert.clear_since).total_seconds() >= rule.cooldown_seconds:
        return _resolve(alert, now)
    alert.save(update_fields=["last_value", "clear_since"])
    return None


def _resolve(alert: Alert, now: datetime) -> tuple[int, str]:
    alert.state = Alert.State.RESOLVED
    alert.resolved_at = now
    alert.clear_since = alert.clear_since or now
    alert.save(update_fields=["state", "resolved_at", "last_value", "clear_since"])
    ALERT_TRANSITIONS.labels(metric=alert.rule.metric, state="resolved").inc()
    logger.warning("alert resolved: %s", alert.key)
    return alert.id, "resolved"


def _notify(alert_id: int, transition: str) -> None:
    notify.notify_alert(alert_id=alert_id, transition=transition)
