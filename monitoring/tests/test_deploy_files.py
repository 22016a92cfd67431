"""deploy/prometheus and deploy/grafana: valid files that use metrics /metrics really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

from conftest import ROOT

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
    assert "> 0.10" in text and "> 3" in text and "< 50" in text and "> 1000" in text


def test_grafana_dashboard_is_valid_and_uses_exported_metrics(client, event):
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "ticketwar.json").read_text())
    assert dashboard["uid"] and dashboard["panels"]
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
