"""Errors on the API are JSON with a human sentence, whatever produced them."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/no-such-endpoint/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]


@pytest.mark.django_db
def test_wrong_method_on_the_api_is_a_json_405_with_allow(client):
    response = client.delete("/api/events/")
    assert response.status_code == 405
    assert response.json()["error"]
    assert "GET" in response["Allow"]


@pytest.mark.django_db
def test_missing_csrf_token_on_the_api_is_a_json_403(student, event):
    client = Client(enforce_csrf_checks=True)
    client.force_login(student)
    response = client.post(f"/api/events/{event.slug}/claim/")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "csrf_failed"
    assert "CSRF" in body["error"]


@pytest.mark.django_db
def test_missing_csrf_token_on_a_page_keeps_the_html_answer(student):
    client = Client(enforce_csrf_checks=True)
    client.force_login(student)
    response = client.post("/accounts/logout/")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_pages_keep_html_404s(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
