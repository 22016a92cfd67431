"""Unhandled exceptions: JSON log with stack trace, Sentry (real HTTP receiver), ErrorLog row."""

from __future__ import annotations

import json

import pytest
import sentry_sdk
from django.test import Client

from monitoring import recorder
from monitoring.models import ErrorLog
from monitoring.sentry import init_sentry


@pytest.fixture
def sentry(http_receiver):
    assert init_sentry(f"http://publickey@127.0.0.1:{http_receiver.url.rsplit(':', 1)[1]}/42", environment="test")
    yield http_receiver
    sentry_sdk.get_client().close(timeout=2)
    sentry_sdk.init()  # no DSN: nothing is sent by later tests


def sentry_events(receiver, *, expect: int = 1) -> list[dict]:
    """Error events out of the envelopes the receiver got (one JSON header line, then items)."""
    sentry_sdk.flush(timeout=5)
    events = []
    received = receiver.wait_for(expect, timeout=10)
    for request in received:
        assert request.path == "/api/42/envelope/"
        assert "sentry_key=publickey" in request.headers.get("x-sentry-auth", "")
        lines = request.body.split(b"\n")
        for index, line in enumerate(lines[1:], start=1):
            try:
                header = json.loads(line)
            except ValueError:
                continue
            if isinstance(header, dict) and header.get("type") == "event":
                events.append(json.loads(lines[index + 1]))
    return events


def frames_of(event: dict) -> list[str]:
    values = event["exception"]["values"]
    return [frame["function"] for value in values for frame in value["stacktrace"]["frames"]]


@pytest.mark.urls("monitoring.tests.crash_urls")
def test_page_crash_reaches_sentry_with_stack_trace_and_the_error_log(db, sentry):
    response = Client(raise_request_exception=False).get("/crash/")
    assert response.status_code == 500
    events = sentry_events(sentry)
    assert events, "no event reached the Sentry receiver"
    event = events[0]
    assert event["exception"]["values"][-1]["type"] == "ZeroDivisionError"
    assert "explode_in_page" in frames_of(event)
    assert event["environment"] == "test"
    recorder.flush()
    row = ErrorLog.objects.get(exception_type="builtins.ZeroDivisionError")
    assert "explode_in_page" in row.traceback and "Traceback" in row.traceback
    assert row.path == "/crash/"


@pytest.mark.urls("monitoring.tests.crash_urls")
def test_api_crash_answers_json_and_reaches_sentry(db, sentry, caplog):
    response = Client(raise_request_exception=False).get("/api/crash/")
    assert response.status_code == 500
    assert "error" in response.json()
    events = sentry_events(sentry)
    assert any(
        e.get("exception")
        and e["exception"]["values"][-1]["type"] == "RuntimeError"
        and "explode_in_api" in frames_of(e)
        for e in events
    )
    # The structured stdout log carries the stack trace too.
    from common.logging import JsonFormatter

    record = next(r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError)
    line = json.loads(JsonFormatter().format(record))
    assert "explode_in_api" in line["exc_info"] and line["path"] == "/api/crash/"
    recorder.flush()
    assert ErrorLog.objects.filter(exception_type="builtins.RuntimeError", path="/api/crash/").exists()


@pytest.mark.urls("monitoring.tests.crash_urls")
def test_open_sentry_breaker_drops_events_at_once(db, sentry):
    from common.breaker import get_breaker

    breaker = get_breaker("sentry")
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    Client(raise_request_exception=False).get("/crash/")
    sentry_sdk.flush(timeout=2)
    assert sentry.wait_for(1, timeout=1.5) == []
    breaker.reset()


def test_without_dsn_nothing_is_initialised():
    assert init_sentry("", environment="test") is False


def test_error_log_is_pruned(db, settings):
    from datetime import timedelta

    from django.utils import timezone

    from monitoring.services import monitoring_prune

    settings.ERROR_LOG_MAX_ROWS = 2
    now = timezone.now()
    for minutes in (60 * 24 * 8, 3, 2, 1):
        ErrorLog.objects.create(logged_at=now - timedelta(minutes=minutes), logger="t", level="ERROR", message="m")
    deleted = monitoring_prune(now=now)
    assert deleted["errors"] == 2
    assert ErrorLog.objects.count() == 2
