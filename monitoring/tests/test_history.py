"""Request log aggregation, percentiles, the per-minute sample, pruning and the beat entries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring import recorder, selectors
from monitoring.models import MetricSample, RequestStat
from monitoring.services import metric_sample_take, monitoring_prune
from tools.testing import race_values


def test_percentile_interpolates_inside_the_bucket():
    buckets = [0] * len(recorder.LATENCY_BUCKETS_MS)
    buckets[0] = 90  # <= 25 ms
    buckets[8] = 10  # 3000 < x <= 5000 ms
    assert selectors.percentile_from_buckets(buckets, 0.5) == pytest.approx(25 * 50 / 90, abs=0.1)
    assert selectors.percentile_from_buckets(buckets, 0.95) == pytest.approx(3000 + 2000 * 0.5, abs=0.1)
    assert selectors.percentile_from_buckets([0] * len(buckets), 0.95) is None


def test_flushes_add_up_in_one_row_per_minute_and_endpoint(db):
    for status, ms in ((200, 10), (500, 400), (404, 30)):
        recorder.record_request(endpoint="events:api-list", method="GET", status=status, duration_ms=ms,
                                db_queries=2, db_ms=1.5)  # fmt: skip
    recorder.flush()
    recorder.record_request(endpoint="events:api-list", method="GET", status=200, duration_ms=4000,
                            db_queries=1, db_ms=0.5)  # fmt: skip
    recorder.flush()
    row = RequestStat.objects.get(endpoint="events:api-list")
    assert (row.count, row.errors, row.client_errors, row.db_queries) == (4, 1, 1, 7)
    assert row.max_ms == 4000 and row.total_ms == 4440
    assert sum(row.buckets) == 4 and row.buckets[recorder.bucket_index(4000)] == 1
    window = selectors.request_window()
    assert window["requests"] == 4 and window["error_rate"] == 25.0


@pytest.mark.slow
def test_concurrent_flushes_from_many_processes_lose_nothing(transactional_db):
    """Threads with their own connections upsert the same minute at once; every count lands."""
    minute = timezone.now().replace(second=0, microsecond=0)
    stats = {(minute, "x:view", "GET"): recorder._Stat(count=5, total_ms=50, buckets=[5] + [0] * 10)}
    race_values([lambda: recorder._write_stats(dict(stats))] * 8)
    row = RequestStat.objects.get(endpoint="x:view")
    assert row.count == 40 and row.buckets[0] == 40


def test_middleware_counts_queries_per_request(client, student, event):
    client.force_login(student)
    client.get("/api/events/")
    recorder.flush()
    row = RequestStat.objects.get(endpoint="events:api-list")
    assert row.count == 1 and row.db_queries >= 1


def test_sample_is_taken_once_per_minute(db, make_event):
    event = make_event(capacity=80)
    now = timezone.now()
    first = metric_sample_take(now=now)
    again = metric_sample_take(now=now.replace(second=59))
    assert first.pk == again.pk and MetricSample.objects.count() == 1
    assert first.remaining == {event.slug: 80}
    assert first.taken_at == now.replace(second=0, microsecond=0)


def test_prune_deletes_what_is_past_the_retention_and_keeps_the_boundary(db, settings):
    settings.METRICS_RETENTION_DAYS = 3
    now = timezone.now().replace(microsecond=0)
    cutoff = now - timedelta(days=3)
    ages = {"past": cutoff - timedelta(seconds=1), "boundary": cutoff, "recent": now - timedelta(days=1)}
    for when in ages.values():
        MetricSample.objects.create(taken_at=when)
        RequestStat.objects.create(minute=when, endpoint="e", method="GET", buckets=[0] * 11)
    deleted = monitoring_prune(now=now)
    assert deleted["samples"] == 1 and deleted["requests"] == 1
    kept = {ages["boundary"], ages["recent"]}
    assert set(MetricSample.objects.values_list("taken_at", flat=True)) == kept
    assert set(RequestStat.objects.values_list("minute", flat=True)) == kept


def test_every_scheduled_task_exists_and_the_monitoring_tasks_are_scheduled():
    from ticketwar.celery import app  # monitoring/schedule.py is merged there, no task module needed

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert scheduled - set(app.tasks) == set(), "the beat would send a task no worker knows"
    assert {"monitoring.tasks.prune", "monitoring.tasks.evaluate_alerts"} <= scheduled
