"""Each rule fires exactly once when crossed and resolves when cleared, on both channels."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring import activity
from monitoring.alerts import evaluate_alerts
from monitoring.models import Alert, RequestStat
from monitoring.notify import REPLAY_TOLERANCE_SECONDS, deliver_webhook, verify_webhook
from monitoring.recorder import LATENCY_BUCKETS_MS, bucket_index

SECRET = "test-webhook-secret"


@pytest.fixture
def channels(settings, http_receiver, mailoutbox):
    settings.ALERT_WEBHOOK_URL = http_receiver.url + "/hooks/alerts"
    settings.ALERT_WEBHOOK_SECRET = SECRET
    settings.ALERT_EMAILS = ["ops@example.org"]
    settings.ALERT_WEBHOOK_RETRY_DELAY = 1
    return http_receiver, mailoutbox


def traffic(now, *, requests: int, errors: int = 0, latency_ms: float = 40.0) -> None:
    """Store one minute of request log as the middleware's flush would."""
    buckets = [0] * len(LATENCY_BUCKETS_MS)
    buckets[bucket_index(latency_ms)] = requests
    RequestStat.objects.create(
        minute=now.replace(second=0, microsecond=0), endpoint="events:api-list", method="GET", count=requests,
        errors=errors, total_ms=latency_ms * requests, max_ms=latency_ms, buckets=buckets,
    )  # fmt: skip


def evaluate(capture, now):
    with capture(execute=True):
        return evaluate_alerts(now=now)


def assert_signed(received):
    timestamp = received.headers["x-ticketwar-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    message = timestamp.encode() + b"." + received.body
    expected = "sha256=" + hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    assert received.headers["x-ticketwar-signature"] == expected
    assert received.headers["content-type"] == "application/json"
    assert verify_webhook(
        body=received.body, timestamp=timestamp, signature=received.headers["x-ticketwar-signature"], secret=SECRET
    )


def run_cycle(capture, channels, *, key, cross, clear, start):
    """Cross, evaluate twice (one firing), clear, evaluate (one resolved), evaluate again (nothing)."""
    receiver, outbox = channels
    cross(start)
    assert evaluate(capture, start) == [(Alert.objects.get(key=key).id, "firing")]
    assert evaluate(capture, start + timedelta(seconds=30)) == []  # still crossed: no second message
    hooks = receiver.wait_for(1)
    assert len(hooks) == 1 and len(outbox) == 1
    assert_signed(hooks[0])
    fired = hooks[0].json()
    assert fired["event"] == "firing" and fired["rule"] == key and fired["state"] == "firing"
    assert "FIRING" in outbox[0].subject and key in outbox[0].subject
    assert outbox[0].to == ["ops@example.org"]

    cleared_at = start + timedelta(minutes=10)
    clear(cleared_at)
    rule = Alert.objects.get(key=key).rule
    transitions = evaluate(capture, cleared_at)
    if rule.cooldown_seconds:
        assert transitions == []  # clear, but not for long enough yet (anti-flapping)
        transitions = evaluate(capture, cleared_at + timedelta(seconds=rule.cooldown_seconds))
    assert transitions == [(Alert.objects.get(key=key).id, "resolved")]
    assert evaluate(capture, cleared_at + timedelta(seconds=rule.cooldown_seconds + 30)) == []
    hooks = receiver.wait_for(2)
    assert len(hooks) == 2 and len(outbox) == 2
    assert_signed(hooks[1])
    assert hooks[1].json()["event"] == "resolved" and hooks[1].json()["resolved_at"]
    assert "RESOLVED" in outbox[1].subject
    alert = Alert.objects.get(key=key)
    assert alert.state == "resolved" and alert.resolved_at is not None
    return alert


@pytest.mark.parametrize(
    ("key", "crossing", "clearing"),
    [
        ("error_rate", {"requests": 100, "errors": 25}, {"requests": 200, "errors": 0}),
        ("response_time", {"requests": 50, "latency_ms": 4500}, {"requests": 50, "latency_ms": 80}),
    ],
    ids=["error-rate", "response-time"],
)
def test_traffic_rule_fires_once_and_resolves(
    alert_rules, channels, django_capture_on_commit_callbacks, key, crossing, clearing
):
    """The error-rate and response-time rules, crossed and cleared by a minute of request log."""
    alert = run_cycle(
        django_capture_on_commit_callbacks, channels, key=key, start=timezone.now(),
        cross=lambda now: traffic(now, **crossing), clear=lambda now: traffic(now, **clearing),
    )  # fmt: skip
    if key == "error_rate":
        assert alert.value == 25.0 and alert.threshold == 10.0
    else:
        assert alert.value > 3000


def test_remaining_tickets_fires_per_event(alert_rules, channels, make_event, django_capture_on_commit_callbacks):
    event = make_event(capacity=500)
    make_event(capacity=500)  # plenty left: never alerts

    def set_remaining(n):
        event.remaining = n
        event.save(update_fields=["remaining"])

    alert = run_cycle(
        django_capture_on_commit_callbacks, channels, key=f"remaining_tickets:{event.slug}", start=timezone.now(),
        cross=lambda now: set_remaining(49), clear=lambda now: set_remaining(120),
    )  # fmt: skip
    assert alert.value == 49
    assert Alert.objects.count() == 1


def test_concurrent_users_fires_with_edited_threshold(alert_rules, channels, django_capture_on_commit_callbacks):
    rule = alert_rules["concurrent_users"]
    rule.threshold = 3  # edited in the admin
    rule.save()

    def users(count):
        def apply(now):
            activity.forget_all()
            for user_id in range(count):
                activity.touch(10_000 + user_id)

        return apply

    alert = run_cycle(
        django_capture_on_commit_callbacks, channels, key="concurrent_users", start=timezone.now(),
        cross=users(4), clear=users(2),
    )  # fmt: skip
    assert alert.value == 4 and alert.threshold == 3


def test_flapping_value_keeps_one_alert(alert_rules, channels, django_capture_on_commit_callbacks):
    receiver, outbox = channels
    start = timezone.now()
    traffic(start, requests=100, errors=50)
    evaluate(django_capture_on_commit_callbacks, start)
    RequestStat.objects.all().delete()
    traffic(start, requests=100, errors=0)
    evaluate(django_capture_on_commit_callbacks, start + timedelta(seconds=30))  # clear, cooldown running
    RequestStat.objects.all().delete()
    traffic(start, requests=100, errors=50)
    evaluate(django_capture_on_commit_callbacks, start + timedelta(seconds=60))  # crossed again
    assert Alert.objects.filter(key="error_rate").count() == 1
    assert Alert.objects.get(key="error_rate").state == "firing"
    assert len(receiver.wait_for(1)) == 1 and len(outbox) == 1


def test_too_few_requests_do_not_alert(alert_rules, channels, django_capture_on_commit_callbacks):
    traffic(timezone.now(), requests=3, errors=3)
    assert evaluate(django_capture_on_commit_callbacks, timezone.now()) == []


def test_disabled_rule_resolves_its_alert(alert_rules, channels, django_capture_on_commit_callbacks):
    now = timezone.now()
    traffic(now, requests=100, errors=50)
    evaluate(django_capture_on_commit_callbacks, now)
    alert_rules["error_rate"].enabled = False
    alert_rules["error_rate"].save()
    transitions = evaluate(django_capture_on_commit_callbacks, now + timedelta(seconds=30))
    assert transitions == [(Alert.objects.get(key="error_rate").id, "resolved")]


def test_dead_webhook_never_breaks_evaluation(alert_rules, settings, mailoutbox, django_capture_on_commit_callbacks):
    from monitoring.notify import WebhookFailed, deliver_webhook

    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/nothing-listens-here"
    settings.ALERT_WEBHOOK_SECRET = SECRET
    settings.ALERT_EMAILS = ["ops@example.org"]
    traffic(timezone.now(), requests=100, errors=50)
    transitions = evaluate(django_capture_on_commit_callbacks, timezone.now())
    assert len(transitions) == 1
    assert len(mailoutbox) == 1  # the other channel still works
    with pytest.raises(WebhookFailed):
        deliver_webhook({"message": "x"})


def test_webhook_retries_with_backoff_until_accepted(settings, http_receiver):
    from monitoring.tasks import deliver_alert_webhook

    settings.ALERT_WEBHOOK_URL = http_receiver.url + "/hook"
    settings.ALERT_WEBHOOK_SECRET = SECRET
    http_receiver.fail_next = 2
    payload = {"event": "firing", "rule": "error_rate", "message": "m"}
    # Eager apply runs Celery's real retry path inline (countdown ignored).
    deliver_alert_webhook.apply(args=[payload])
    received = http_receiver.wait_for(1)
    assert len(received) == 1
    assert json.loads(received[0].body) == payload
    assert_signed(received[0])


def test_webhook_breaker_opens_after_failures(settings):
    from common.breaker import OPEN, get_breaker
    from monitoring.notify import WebhookFailed, deliver_webhook

    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/closed"
    breaker = get_breaker("webhook")
    for _ in range(breaker.failure_threshold):
        with pytest.raises(WebhookFailed):
            deliver_webhook({"message": "x"})
    assert breaker.state == OPEN
    with pytest.raises(WebhookFailed, match="circuit breaker open"):
        deliver_webhook({"message": "x"})


def test_a_receiver_refuses_a_replayed_or_retimed_webhook(channels, alert_rules):
    """The loopback receiver gets a signed alert; replaying it after the tolerance window, or
    with a fresh timestamp pasted in, fails the check a receiver makes (verify_webhook)."""
    receiver, _outbox = channels
    deliver_webhook({"event": "alert", "rule": "error_rate", "state": "firing"})
    (hook,) = receiver.wait_for(1)
    assert_signed(hook)
    timestamp, signature = hook.headers["x-ticketwar-timestamp"], hook.headers["x-ticketwar-signature"]
    sent = int(timestamp)
    ok = {"body": hook.body, "signature": signature, "secret": SECRET}
    assert verify_webhook(timestamp=timestamp, now=sent + REPLAY_TOLERANCE_SECONDS, **ok)
    # Replayed six minutes later: too old.
    assert not verify_webhook(timestamp=timestamp, now=sent + REPLAY_TOLERANCE_SECONDS + 60, **ok)
    # The attacker puts a current timestamp on it: the signature no longer matches.
    later = sent + REPLAY_TOLERANCE_SECONDS + 60
    assert not verify_webhook(timestamp=str(later), now=later, **ok)
    # The body changed, or the old body-only signature: refused.
    assert not verify_webhook(body=hook.body + b" ", timestamp=timestamp, signature=signature, secret=SECRET)
    body_only = "sha256=" + hmac.new(SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
    assert not verify_webhook(body=hook.body, timestamp=timestamp, signature=body_only, secret=SECRET)
    assert not verify_webhook(body=hook.body, timestamp="-1", signature=signature, secret=SECRET)
