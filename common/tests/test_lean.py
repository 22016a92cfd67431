"""Page-only middleware stays off the JSON API; pages keep what they need."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_json_api_gets_no_message_storage_and_no_frame_header(client, student):
    client.force_login(student)
    response = client.get("/api/ping/")
    assert response.status_code == 200
    assert not hasattr(response.wsgi_request, "_messages")
    assert "X-Frame-Options" not in response
    assert response["X-Content-Type-Options"] == "nosniff"  # the security headers stay


@pytest.mark.django_db
def test_pages_keep_messages_and_the_frame_header(client, student):
    client.force_login(student)
    response = client.get("/tickets/")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert hasattr(response.wsgi_request, "_messages")


@pytest.mark.django_db
def test_api_errors_still_follow_the_students_language(client, student):
    client.force_login(student)
    english = client.get("/api/events/no-such-event/", headers={"Accept-Language": "en"}).json()
    indonesian = client.get("/api/events/no-such-event/", headers={"Accept-Language": "id"}).json()
    assert english["error"] != indonesian["error"]
