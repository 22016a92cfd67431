"""Admin pages of the monitoring app: thresholds editable, history read-only."""

from __future__ import annotations

import pytest
from django.utils import timezone

from monitoring.models import Alert, AlertRule, ErrorLog


@pytest.mark.parametrize("model", ["alertrule", "alert", "errorlog", "metricsample", "workerheartbeat"])
def test_changelists_render(admin_client, alert_rules, model):
    Alert.objects.create(rule=alert_rules["error_rate"], key="error_rate", value=20, last_value=20, threshold=10,
                         started_at=timezone.now())  # fmt: skip
    ErrorLog.objects.create(logged_at=timezone.now(), logger="x", level="ERROR", message="boom")
    assert admin_client.get(f"/admin/monitoring/{model}/").status_code == 200


def test_threshold_is_editable_in_the_admin(admin_client, alert_rules):
    rule = alert_rules["concurrent_users"]
    response = admin_client.post(
        f"/admin/monitoring/alertrule/{rule.pk}/change/",
        {"comparison": "gt", "threshold": "750", "enabled": "on", "cooldown_seconds": "90", "min_requests": "20"},
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.threshold == 750 and rule.cooldown_seconds == 90


def test_history_cannot_be_added_or_edited(admin_client, alert_rules):
    assert admin_client.get("/admin/monitoring/alert/add/").status_code == 403
    assert admin_client.get("/admin/monitoring/alertrule/add/").status_code == 403
    assert AlertRule.objects.count() == 4
