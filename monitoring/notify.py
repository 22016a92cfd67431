"""Alert channels: e-mail (Django mail to ALERT_EMAILS) and a signed JSON webhook.

Each channel is optional (off until configured) and can never break the caller: failures are
logged and counted. The webhook is tried once at once; when it fails it is retried by a Celery
task with exponential backoff. Both go through circuit breakers ("smtp", "webhook") so a dead
endpoint costs nothing while it stays dead.

Webhook body: JSON ``{event, rule, state, value, threshold, started_at, resolved_at, message}``;
headers ``X-Ticketwar-Timestamp: <unix seconds>`` and ``X-Ticketwar-Signature: sha256=<hex
HMAC-SHA256 of "<timestamp>.<raw body>" with ALERT_WEBHOOK_SECRET>``. The timestamp is signed so a
receiver can refuse a captured request replayed later (``verify_webhook``, docs/MONITORING.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request

from celery import current_app
from django.conf import settings
from django.core.mail import send_mail

from common.breaker import get_breaker

from .metrics import ALERT_NOTIFICATIONS
from .models import Alert
from .selectors import alert_as_dict

# The retry task (monitoring.tasks.deliver_alert_webhook), named here so this module needs no import
# of the tasks module, which imports this one.
DELIVER_WEBHOOK_TASK = "monitoring.tasks.deliver_alert_webhook"

logger = logging.getLogger("ticketwar.alerts")

SIGNATURE_HEADER = "X-Ticketwar-Signature"
TIMESTAMP_HEADER = "X-Ticketwar-Timestamp"
# How old a signed request a receiver should still accept (seconds): clock skew plus delivery.
REPLAY_TOLERANCE_SECONDS = 300


class WebhookFailed(Exception):
    """The webhook endpoint did not accept the alert (network error or non-2xx)."""


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The signature header's value: HMAC-SHA256 over ``b"<timestamp>." + body``."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_webhook(
    *,
    body: bytes,
    timestamp: str,
    signature: str,
    secret: str,
    tolerance: int = REPLAY_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is within ``tolerance``.

    A captured request replayed later fails the time check, and changing its timestamp breaks
    the signature. (A receiver that must refuse even a replay within the window also remembers
    the signatures it has seen for ``tolerance`` seconds.)
    """
    # ASCII only: "²".isdigit() is true and int() raises on it; "١٧٠٠" is read as 1700 by int(),
    # a second spelling of a signed time; compare_digest raises on a non-ASCII str.
    if not (timestamp.isascii() and timestamp.isdigit() and signature.isascii()):
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(body, secret, int(timestamp)), signature)


def alert_payload(alert: Alert, transition: str) -> dict:
    data = alert_as_dict(alert)
    verb = "FIRING" if transition == "firing" else "RESOLVED"
    value = alert.value if transition == "firing" else alert.last_value
    data["event"] = transition
    data["message"] = f"[ticketwar] {verb}: {alert.key} = {value:g} (threshold {alert.threshold:g})"
    return data


def notify_alert(*, alert_id: int, transition: str) -> None:
    """Send one alert transition on every configured channel. Never raises."""
    alert = Alert.objects.select_related("rule").filter(pk=alert_id).first()
    if alert is None:
        return
    payload = alert_payload(alert, transition)
    _send_email(payload)
    if settings.ALERT_WEBHOOK_URL:
        try:
            deliver_webhook(payload)
        except WebhookFailed as exc:
            logger.warning("alert webhook failed, retrying later: %s", exc)
            try:
                # Sent by name, as the beat does: the tasks module imports this one.
                current_app.signature(DELIVER_WEBHOOK_TASK).apply_async(
                    args=[payload], countdown=settings.ALERT_WEBHOOK_RETRY_DELAY
                )
            except Exception:  # broker down too: the alert stays visible in the admin and the API
                logger.exception("alert webhook retry could not be queued")
    else:
        ALERT_NOTIFICATIONS.labels(channel="webhook", outcome="skipped").inc()


def _send_email(payload: dict) -> None:
    recipients = settings.ALERT_EMAILS
    if not recipients:
        ALERT_NOTIFICATIONS.labels(channel="email", outcome="skipped").inc()
        return
    body = "\n".join(f"{key}: {value}" for key, value in payload.items())

    # The mail backend itself goes through the "smtp" breaker and answers 0 when it fails.
    sent = send_mail(payload["message"], body, None, recipients)
    outcome = "sent" if sent else "failed"
    ALERT_NOTIFICATIONS.labels(channel="email", outcome=outcome).inc()
    if not sent:
        logger.error("alert e-mail not sent to %s: %s", ", ".join(recipients), payload["message"])


def deliver_webhook(payload: dict) -> None:
    """POST the payload once (short timeout, through the "webhook" breaker); raises WebhookFailed."""
    breaker = get_breaker("webhook")
    if not breaker.allow():
        ALERT_NOTIFICATIONS.labels(channel="webhook", outcome="failed").inc()
        raise WebhookFailed("circuit breaker open")
    body = json.dumps(payload, sort_keys=True).encode()
    # Signed at each attempt: a retry minutes later carries its own, current timestamp.
    timestamp = int(time.time())
    request = urllib.request.Request(  # noqa: S310 - an operator-configured http(s) URL
        settings.ALERT_WEBHOOK_URL,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "ticketwar-alerts",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(body, settings.ALERT_WEBHOOK_SECRET, timestamp),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.ALERT_WEBHOOK_TIMEOUT) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        breaker.record_failure()
        ALERT_NOTIFICATIONS.labels(channel="webhook", outcome="failed").inc()
        raise WebhookFailed(f"{type(exc).__name__}: {exc}") from exc
    if not 200 <= status < 300:
        breaker.record_failure()
        ALERT_NOTIFICATIONS.labels(channel="webhook", outcome="failed").inc()
        raise WebhookFailed(f"HTTP {status}")
    breaker.record_success()
    ALERT_NOTIFICATIONS.labels(channel="webhook", outcome="sent").inc()
