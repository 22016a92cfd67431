"""deploy/prometheus and deploy/grafana: valid files that use metrics /metrics really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tools.testing import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"


def promtool() -> str:
    path = shutil.which("promtool")
    # Not a skip: CI installs Debian's "prometheus" package; without it this check would be lost.
    assert path, "promtool is missing: apt-get install prometheus (Debian) to validate the alert rules"
    return path


def test_alert_rules_pass_promtool_check():
    result = subprocess.run([promtool(), "check", "rules", "alerts.yml"], cwd=PROMETHEUS, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 rules found" in result.stdout


def test_alert_rules_fire_in_promtool_unit_tests():
    result = subprocess.run([promtool(), "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_cover_the_four_in_app_rules():
    text = (PROMETHEUS / "alerts.yml").read_text()
    for rule in ("error_rate", "response_time", "remaining_tickets", "concurrent_users"):
        assert f"rule: {rule}" in text
    assert "> 0.10" in text and "> 3" in text and "> 1000" in text
    # Remaining tickets as in the app: below 50 seats or 10 % of the event's, in its open window.
    assert "clamp_max(0.10 * ticketwar_event_capacity_seats, 50)" in text
    assert "ticketwar_event_claim_window_open == 1" in text


def test_grafana_dashboard_is_valid_and_uses_exported_metrics(client, event, staff):
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "ticketwar.json").read_text())
    assert dashboard["uid"] and dashboard["panels"]
    client.force_login(staff)
    exported = client.get("/metrics").content.decode()
    names = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= set(re.findall(r"\b((?:ticketwar|django)_[a-z0-9_]+)", target["expr"]))
    assert names
    # Families exported only after their first use (cache, breakers) are declared by their modules.
    lazily_created = {"ticketwar_cache_requests_total", "ticketwar_breaker_state"}
    missing = {name for name in names - lazily_created if re.sub(r"_(bucket|total)$", "", name) not in exported}
    assert not missing, missing


def test_scrape_config_passes_promtool_and_sends_the_token_from_a_file(tmp_path):
    config = (PROMETHEUS / "prometheus.yml").read_text()
    assert "credentials_file: ticketwar_metrics_token" in config
    (tmp_path / "prometheus.yml").write_text(config)
    (tmp_path / "alerts.yml").write_text((PROMETHEUS / "alerts.yml").read_text())
    (tmp_path / "ticketwar_metrics_token").write_text("a-token\n")
    result = subprocess.run([promtool(), "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def _prometheus_scraping(tmp_path, base_url: str, token: str) -> dict:
    """Run the real Prometheus with deploy/prometheus/prometheus.yml aimed at ``base_url``;
    the scrape target's health once it has been scraped (``up`` or ``down`` with its error)."""
    import time
    import urllib.request

    import yaml

    from tools.testing import free_port

    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    job = config["scrape_configs"][0]
    job["scheme"] = "http"
    job["static_configs"] = [{"targets": [base_url.removeprefix("http://")]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "alerts.yml").write_text((PROMETHEUS / "alerts.yml").read_text())
    (tmp_path / "ticketwar_metrics_token").write_text(token + "\n")
    port = free_port()
    process = subprocess.Popen(
        [shutil.which("prometheus") or "prometheus", "--config.file=prometheus.yml",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2) as response:
                    targets = json.loads(response.read())["data"]["activeTargets"]
            except OSError:
                targets = []
            if targets and targets[0]["health"] != "unknown":
                return targets[0]
            time.sleep(0.3)
        raise AssertionError("Prometheus did not scrape within 60 s")
    finally:
        process.terminate()
        process.wait(timeout=20)


LIVE_METRICS_TOKEN = "live-scrape-token-0123456789abcdefghij"


@pytest.fixture
def token_server(monkeypatch, request):
    """The live ASGI server, started with METRICS_TOKEN set."""
    monkeypatch.setenv("METRICS_TOKEN", LIVE_METRICS_TOKEN)
    return request.getfixturevalue("live_asgi_server")


def test_prometheus_scrapes_metrics_with_the_token_and_is_refused_without_it(tmp_path, token_server):
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    target = _prometheus_scraping(tmp_path / "good", token_server, LIVE_METRICS_TOKEN)
    assert target["health"] == "up", target
    target = _prometheus_scraping(tmp_path / "bad", token_server, "not-the-token")
    assert target["health"] == "down" and "401" in target["lastError"], target
