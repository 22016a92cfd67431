"""/metrics: only operators' sessions and Prometheus' bearer token; a scrape storm is one computation."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

TOKEN = "t0k3n-" + "x" * 40


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def test_anonymous_gets_401_with_a_bearer_challenge_and_no_metrics(client, event, metrics_token):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer ")
    assert response.json()["code"] == "unauthenticated"
    assert b"ticketwar_" not in response.content and b"django_http" not in response.content


def test_a_logged_in_student_gets_403(client, student, metrics_token):
    client.force_login(student)
    response = client.get("/metrics")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_staff_session_reads_the_metrics(client, staff, event):
    client.force_login(staff)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert f'ticketwar_event_remaining_tickets{{event="{event.slug}"}}' in response.content.decode()


def test_the_configured_bearer_token_reads_the_metrics(client, event, metrics_token):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert "ticketwar_queue_depth" in response.content.decode()
    # The scheme is case-insensitive (RFC 7235).
    assert client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ", f"Basic {TOKEN}"])
def test_a_wrong_token_or_scheme_is_refused(client, metrics_token, header):
    response = client.get("/metrics", headers={"Authorization": header})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer ")


def test_a_wrong_token_is_refused_even_with_a_staff_session(client, staff, metrics_token):
    client.force_login(staff)
    response = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_no_token_configured_accepts_no_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 401


def test_business_gauges_are_computed_once_per_cache_window(client, event, metrics_token, settings):
    settings.METRICS_CACHE_SECONDS = 60
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with CaptureQueriesContext(connection) as first:
        assert client.get("/metrics", headers=auth).status_code == 200
    assert len(first) >= 4  # remaining, claims, queue, alerts
    with CaptureQueriesContext(connection) as storm:
        for _ in range(20):
            text = client.get("/metrics", headers=auth).content.decode()
    assert len(storm) == 0
    assert f'ticketwar_event_remaining_tickets{{event="{event.slug}"}} {float(event.remaining)}' in text
    # Once the window has passed, the next scrape computes current values again.
    settings.METRICS_CACHE_SECONDS = 0
    with CaptureQueriesContext(connection) as later:
        assert client.get("/metrics", headers=auth).status_code == 200
    assert len(later) >= 4
