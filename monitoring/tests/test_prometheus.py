"""/metrics: histograms after real requests, in one process and aggregated over several."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tools import stack
from tools.testing import free_port, subprocess_env

TOKEN = "prometheus-scrape-token-0123456789abcdef"


def sample(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found, f"{name} {labels} not in /metrics"
    return total


def test_metrics_show_latency_and_db_histograms_after_requests(client, event, student, staff, settings):
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # single-process mode here
    settings.METRICS_CACHE_SECONDS = 0  # business gauges recomputed at each scrape
    client.force_login(staff)
    before = client.get("/metrics").content.decode()
    client.force_login(student)
    for _ in range(3):
        assert client.get("/api/events/").status_code == 200
    client.force_login(staff)
    text = client.get("/metrics").content.decode()
    count = 'django_http_requests_latency_seconds_by_view_method_count{method="GET",view="events:api-list"}'
    assert re.search(re.escape(count) + r" [0-9.]+", text)
    grew = sample(text, "django_http_requests_latency_seconds_by_view_method_count", view="events:api-list")
    had = (
        sample(before, "django_http_requests_latency_seconds_by_view_method_count", view="events:api-list")
        if "events:api-list" in before
        else 0
    )
    assert grew - had == 3
    # The alert threshold (3 s) is a bucket boundary, so p95 > 3 s is exact in PromQL.
    assert 'le="3.0",method="GET",view="events:api-list"' in text
    assert sample(text, "ticketwar_db_queries_per_request_count", view="events:api-list") >= 3
    assert "ticketwar_db_seconds_per_request_bucket" in text
    assert sample(text, "ticketwar_event_remaining_tickets", event=event.slug) == event.remaining
    assert sample(text, "ticketwar_event_capacity_seats", event=event.slug) == event.capacity
    assert sample(text, "ticketwar_event_claim_window_open", event=event.slug) == 1
    assert sample(text, "ticketwar_active_users") == 1
    assert "ticketwar_queue_depth 0.0" in text
    assert "django_http_responses_total_by_status_view_method_total" in text


@pytest.fixture
def metrics_dir(tmp_path, monkeypatch):
    """PROMETHEUS_MULTIPROC_DIR for the subprocesses (set before the worker fixture reads the env)."""
    path = tmp_path / "prometheus"
    path.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(path))
    return path


@pytest.mark.slow
def test_metrics_aggregate_web_workers_and_celery_worker(transactional_db, metrics_dir, celery_worker_process):
    """The Procfile's web (granian, 2 workers) and a Celery worker write to one multiprocess dir."""
    from django.db import connection

    from monitoring import activity
    from monitoring.alerts import alert_rules_ensure_defaults
    from monitoring.models import Alert, AlertRule
    from monitoring.tasks import evaluate_alerts

    alert_rules_ensure_defaults()
    AlertRule.objects.filter(metric="concurrent_users").update(threshold=0)

    port = free_port()
    # As in production: the request log and the active students are sent in the background.
    env = subprocess_env(
        connection.settings_dict, PORT=str(port), WEB_CONCURRENCY="2", MONITORING_FLUSH_IN_BACKGROUND="true",
        METRICS_TOKEN=TOKEN,
    )  # fmt: skip
    web = stack.start("web", env, output=subprocess.DEVNULL)
    try:
        stack.wait_for_port(port, web, timeout=40)
        requests = 40
        for _ in range(requests):  # a new connection each time: both workers get some
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
                    assert response.status == 200
            except urllib.error.HTTPError as exc:  # 503 while no worker has reported yet
                assert exc.code == 503

        celery_worker_process(concurrency=1)
        activity.touch(4242)  # one active student: the edited rule (threshold 0) fires in the worker
        evaluate_alerts.delay()
        deadline = time.monotonic() + 60
        while not Alert.objects.filter(key="concurrent_users").exists() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert Alert.objects.filter(key="concurrent_users").exists(), "the worker did not evaluate the rules"

        deadline = time.monotonic() + 10
        while True:
            scrape = urllib.request.Request(
                f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            with urllib.request.urlopen(scrape, timeout=10) as response:  # noqa: S310 - http://127.0.0.1 above
                text = response.read().decode()
            if time.monotonic() > deadline or (
                "healthz" in text
                and sample(text, "django_http_requests_latency_seconds_by_view_method_count", view="healthz")
                >= requests
            ):
                break
            time.sleep(0.3)
    finally:
        stack.stop(web)

    assert sample(text, "django_http_requests_latency_seconds_by_view_method_count", view="healthz") == requests
    assert sample(text, "ticketwar_alert_transitions_total", metric="concurrent_users", state="firing") == 1
    assert sample(text, "ticketwar_active_users") == 1
    pids = {int(m.group(1)) for m in (re.search(r"_(\d+)\.db$", p.name) for p in Path(metrics_dir).iterdir()) if m}
    assert len(pids) >= 3, f"expected files from two web workers and a Celery child, got {pids}"
