"""GET /api/ping/: the do-nothing view the load tests compare the cached endpoints with."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def test_ping_answers_without_touching_the_database(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/ping/")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert len(queries) == 0


def test_ping_for_a_logged_in_student(client, student):
    client.force_login(student)
    response = client.get("/api/ping/")
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")


def test_ping_refuses_other_methods(client):
    response = client.post("/api/ping/")
    assert response.status_code == 405
