"""Redis behind Sentinels that ask for a password: every role of the app (cache, broker, channel
layer, the hand-made clients) reaches the primary, because the sentinels themselves are asked with
the data connections' password, and over TLS when those are."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tools import devservices
from tools.testing import ROOT

pytestmark = pytest.mark.slow

PASSWORD = "Sentinel-Pass-77"

CHECK_EVERY_ROLE = """
import django
django.setup()
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from common.redis import role_client
from ticketwar.celery import app

cache.set("sentinel-check", 42, 30)
assert cache.get("sentinel-check") == 42, "the cache did not reach the primary"
assert role_client("broker").ping()
with app.connection_for_write() as connection:
    connection.ensure_connection(max_retries=1)
    connection.default_channel.client.ping()
layer = get_channel_layer()
async_to_sync(layer.send)("sentinel-check", {"type": "check"})
assert async_to_sync(layer.receive)("sentinel-check")["type"] == "check"
print("every role ok")
"""

PRINT_SENTINEL_KWARGS = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "cache": settings.CACHES["default"]["OPTIONS"]["SENTINEL_KWARGS"],
    "broker": settings.CELERY_BROKER_TRANSPORT_OPTIONS["sentinel_kwargs"],
    "channels": settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["sentinel_kwargs"],
}))
"""


def run(script: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "ticketwar.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.fixture
def protected_sentinels(tmp_path):
    group = devservices.SentinelGroup(tmp_path / "sentinel", password=PASSWORD)
    group.start()
    yield group
    group.stop()


def test_every_role_finds_the_primary_through_password_protected_sentinels(protected_sentinels):
    result = run(CHECK_EVERY_ROLE, **protected_sentinels.env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "every role ok" in result.stdout


def test_sentinels_are_spoken_to_with_the_data_connections_tls(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("placeholder: only read as a path here\n")
    env = {"REDIS_URL": f"rediss://:{PASSWORD}@redis.internal:6380/2", "REDIS_SENTINELS": "10.0.0.5:26379"}
    result = run(PRINT_SENTINEL_KWARGS, **env, REDIS_CA_FILE=str(ca))
    assert result.returncode == 0, result.stderr[-3000:]
    for role, kwargs in json.loads(result.stdout).items():
        assert kwargs["password"] == PASSWORD, role
        assert kwargs["ssl"] is True and kwargs["ssl_cert_reqs"] == "required", role
        assert kwargs["ssl_ca_certs"] == str(ca), role
    # Without a CA of its own the primary's certificate cannot be checked: no start.
    refused = run(PRINT_SENTINEL_KWARGS, **env, REDIS_CA_FILE="")
    assert refused.returncode != 0
    assert "set REDIS_CA_FILE" in refused.stderr
