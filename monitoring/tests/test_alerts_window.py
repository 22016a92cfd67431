"""The remaining-tickets alert watches events whose claim window is open, not those to come,
each against its own size."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from monitoring.alerts import evaluate_alerts
from monitoring.models import Alert


def test_a_small_event_does_not_fire_before_its_window_opens(alert_rules, make_event):
    now = timezone.now()
    event = make_event(capacity=3, opens_in=3600)  # 3 seats, below the threshold of 50, from the start
    assert evaluate_alerts(now=now) == []
    assert not Alert.objects.filter(key=f"remaining_tickets:{event.slug}").exists()
    # Open, with all its seats: still not running out. Once they are gone, it is.
    opened = event.claim_opens_at + timedelta(seconds=1)
    assert evaluate_alerts(now=opened) == []
    event.remaining = 0
    event.save(update_fields=["remaining"])
    transitions = evaluate_alerts(now=opened + timedelta(seconds=30))
    alert = Alert.objects.get(key=f"remaining_tickets:{event.slug}")
    assert transitions == [(alert.id, "firing")] and alert.value == 0


def test_remaining_tickets_fires_relative_to_the_events_size(alert_rules, make_event):
    """Few seats left is measured against the event's size: the rule's 50 seats, or 10 % of the
    seats when that is lower. A 3-seat event with its seats still there never cries wolf."""
    now = timezone.now()
    small = make_event(capacity=3)  # open now, every seat left
    mid = make_event(capacity=100, remaining=12)
    big = make_event(capacity=500, remaining=60)

    def key(event):
        return f"remaining_tickets:{event.slug}"

    def set_remaining(event, n):
        event.remaining = n
        event.save(update_fields=["remaining"])

    assert evaluate_alerts(now=now) == []
    set_remaining(small, 1)  # one of three left: a third of the seats, not running out
    set_remaining(mid, 10)  # ten of a hundred: at the line, not below it
    assert evaluate_alerts(now=now + timedelta(seconds=30)) == []

    set_remaining(small, 0)
    set_remaining(mid, 9)
    set_remaining(big, 49)
    transitions = evaluate_alerts(now=now + timedelta(seconds=60))
    fired = {alert.key: alert for alert in Alert.objects.filter(state="firing")}
    assert sorted(fired) == sorted(key(e) for e in (small, mid, big))
    assert sorted(transitions) == sorted((alert.id, "firing") for alert in fired.values())
    # Each alert says the line it crossed: the event's own.
    assert (fired[key(small)].threshold, fired[key(mid)].threshold, fired[key(big)].threshold) == (0.3, 10, 50)
