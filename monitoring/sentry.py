"""Sentry: errors from Django, Celery and logging, sent only when SENTRY_DSN is set.

Called from ticketwar/settings.py. Sending goes through the "sentry" circuit breaker: while
Sentry is unreachable the events are dropped at once (they are still on stdout and in the
error log) instead of piling up behind timeouts.
"""

from __future__ import annotations

import logging
from typing import Any

import sentry_sdk
from sentry_sdk.transport import HttpTransport

from common.breaker import get_breaker

logger = logging.getLogger("ticketwar.monitoring")


class BreakerTransport(HttpTransport):
    """Sentry's HTTP transport with the "sentry" circuit breaker around each request."""

    def capture_envelope(self, envelope) -> None:
        if not get_breaker("sentry").allow():
            self.on_dropped_event("circuit_open")
            for item in envelope.items:
                self.record_lost_event("network_error", item=item)
            return
        super().capture_envelope(envelope)

    def _request(self, method, endpoint_type, body, headers):
        breaker = get_breaker("sentry")
        try:
            response = super()._request(method, endpoint_type, body, headers)
        except Exception:
            breaker.record_failure()
            raise
        if response.status >= 500:
            breaker.record_failure()
        else:
            breaker.record_success()
        return response


def init_sentry(dsn: str, *, environment: str, release: str = "", traces_sample_rate: float = 0.0) -> bool:
    """Start the Sentry SDK if ``dsn`` is set; returns whether it was started.

    Without a DSN nothing is initialised and nothing is ever sent.
    """
    if not dsn:
        return False
    # Loaded only with a DSN: without one the settings import nothing of Sentry's integrations.
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    options: dict[str, Any] = {
        "dsn": dsn,
        "environment": environment,
        "transport": BreakerTransport,
        "integrations": [
            DjangoIntegration(),
            CeleryIntegration(),
            # Breadcrumbs from INFO, an event for every ERROR record (with its stack trace).
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        "traces_sample_rate": traces_sample_rate,
        "shutdown_timeout": 2,
    }
    if release:
        options["release"] = release
    sentry_sdk.init(**options)
    return True
