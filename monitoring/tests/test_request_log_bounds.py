"""The request log cannot be grown by a client, nor by a database that stays away."""

from __future__ import annotations

import random
import string
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from monitoring import recorder
from monitoring.models import RequestStat
from ticketwar.tests.test_database_outage import database_away  # noqa: F401 - the fixture

HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}


@pytest.mark.django_db
def test_invented_methods_are_one_row_and_one_series_named_other(client):
    rng = random.Random(5)
    invented = {"X" + "".join(rng.choices(string.ascii_uppercase, k=8)) for _ in range(30)}
    for method in invented:
        client.generic(method, "/api/ping/")
    client.get("/api/ping/")
    recorder.flush()
    rows = dict(RequestStat.objects.filter(endpoint="ping").values_list("method", "count"))
    assert rows == {"OTHER": len(invented), "GET": 1}
    labels = {
        sample.labels["method"]
        for metric in REGISTRY.collect()
        if metric.name.startswith("django_http_")
        for sample in metric.samples
        if "method" in sample.labels
    }
    assert labels and labels <= HTTP_METHODS | {"OTHER"}, labels - HTTP_METHODS


def test_waiting_rows_stay_bounded_while_the_database_is_away(database_away, monkeypatch):  # noqa: F811
    monkeypatch.setattr(recorder, "MAX_PENDING_STATS", 500)
    dropped_before = REGISTRY.get_sample_value("ticketwar_request_log_dropped_total") or 0
    database_away()
    start = timezone.now().replace(second=0, microsecond=0)
    for minute in range(300):  # five hours of a process answering three endpoints
        monkeypatch.setattr(recorder.timezone, "now", lambda minute=minute: start + timedelta(minutes=minute))
        for endpoint in ("ping", "events:api-detail", "claims:api-claim"):
            recorder.record_request(endpoint=endpoint, method="GET", status=200, duration_ms=3, db_queries=0, db_ms=0)
        recorder.flush()  # fails: the database is away
        assert len(recorder._stats) <= 500
    kept = sorted({key[0] for key in recorder._stats})
    assert kept[-1] == start + timedelta(minutes=299)  # the newest minutes are the ones kept
    assert REGISTRY.get_sample_value("ticketwar_request_log_dropped_total") == dropped_before + 900 - 500
