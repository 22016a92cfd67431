"""The remaining-tickets alert watches events whose claim window is open, not those to come."""

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
    # Once the window is open, few seats left is worth an alert.
    opened = event.claim_opens_at + timedelta(seconds=1)
    transitions = evaluate_alerts(now=opened)
    alert = Alert.objects.get(key=f"remaining_tickets:{event.slug}")
    assert transitions == [(alert.id, "firing")] and alert.value == 3
