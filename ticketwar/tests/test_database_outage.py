"""A database that is away answers a clear 503, also when a middleware meets it before the view.

Found by a database drill under load (today's ``python -m loadtests.faults``): with the user not
in the cache, the rate-limit middleware loads it from PostgreSQL before any view runs, so the
outage escaped ``JsonErrorMiddleware.process_exception`` and became a 500. Here the database
really is unreachable: this process's connection is pointed at a port nobody listens on.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from tools.testing import free_port


@pytest.fixture
def database_away(transactional_db):
    """Every new connection of this process fails, as when PostgreSQL is stopped."""
    closed_port = free_port()  # nothing listens there
    original = connection.settings_dict["PORT"]

    def go_away() -> None:
        connection.close()
        connection.settings_dict["PORT"] = closed_port

    yield go_away
    connection.close()
    connection.settings_dict["PORT"] = original


def _logged_in_client(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    cache.clear()  # the cached user is gone: the middleware must load it from the database
    return client


def test_api_answers_503_when_the_user_cannot_be_loaded(student, database_away):
    client = _logged_in_client(student)
    database_away()
    response = client.get("/api/events/")
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert response.json()["error"]
    assert response["Retry-After"] == "5"


def test_claim_answers_503_not_500(student, database_away):
    client = _logged_in_client(student)
    database_away()
    response = client.post("/api/events/anything/claim/", HTTP_X_CSRFTOKEN="x")
    assert response.status_code == 503, response.content[:300]
    assert response.json()["code"] == "unavailable"


def test_page_answers_the_503_page(student, database_away):
    client = _logged_in_client(student)
    database_away()
    response = client.get("/")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")


def test_other_crashes_outside_views_stay_500(db):
    from django.test import RequestFactory

    from common.errors import server_error

    try:
        raise ValueError("a bug, not an outage")
    except ValueError:
        api = server_error(RequestFactory().get("/api/events/"))
        page = server_error(RequestFactory().get("/events/"))
    assert api.status_code == 500 and api["Content-Type"].startswith("application/json")
    assert page.status_code == 500


def test_what_counts_as_an_outage():
    import psycopg
    from django.db import InterfaceError, OperationalError
    from psycopg_pool import PoolTimeout

    from common.errors import is_database_outage

    outages = [
        OperationalError("down"),
        InterfaceError("closed"),
        PoolTimeout("no connection in 10 s"),
        psycopg.OperationalError("refused"),
        psycopg.InterfaceError("the connection is closed"),
    ]
    for outage in outages:
        assert is_database_outage(outage), outage
    for bug in (ValueError("x"), psycopg.errors.UniqueViolation("dup"), None):
        assert not is_database_outage(bug), bug
