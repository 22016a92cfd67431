"""Monitoring APIs, dashboard and exports: staff only, contract shapes, time ranges."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import Alert, ErrorLog, MetricSample, RequestStat

URLS = [
    "/api/monitoring/metrics/",
    "/api/monitoring/alerts/",
    "/api/monitoring/history/",
    "/api/monitoring/export/requests.csv",
    "/api/monitoring/export/errors.jsonl",
    "/api/monitoring/export/claims.csv",
    "/api/monitoring/export/claimstats.csv",
    "/api/monitoring/export/metrics.jsonl",
    "/api/monitoring/export/door.csv",
    "/api/monitoring/export/doorstats.jsonl",
]


@pytest.mark.parametrize("url", URLS)
def test_anonymous_gets_401_and_student_403(client, student, url):
    response = client.get(url)
    assert response.status_code == 401
    assert "error" in response.json()
    client.force_login(student)
    response = client.get(url)
    assert response.status_code == 403
    assert "error" in response.json()


@pytest.mark.parametrize("url", URLS)
def test_wrong_method_is_405(client, staff, url):
    client.force_login(staff)
    assert client.post(url).status_code == 405


def test_dashboard_redirects_anonymous_and_refuses_students(client, student):
    response = client.get("/admin/monitoring/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    client.force_login(student)
    assert client.get("/admin/monitoring/dashboard/").status_code == 403


def test_dashboard_renders_for_staff_and_is_linked_from_admin_index(client, staff):
    client.force_login(staff)
    page = client.get("/admin/monitoring/dashboard/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "vendor/chartjs/chart.umd.js" in html and "js/dashboard.js" in html
    assert "<script>" not in html.replace(" ", "")  # no inline scripts
    assert "cdn" not in html.lower()
    assert "/admin/monitoring/dashboard/" in client.get("/admin/").content.decode()


def test_metrics_shape_follows_the_contract(client, staff, make_event, student):
    from queueing.models import QueueEntry

    event = make_event(capacity=300)
    QueueEntry.objects.create(user=student, event=event, created_at=timezone.now() - timedelta(seconds=7))
    client.force_login(staff)
    data = client.get("/api/monitoring/metrics/").json()
    for key in ("remaining", "active_users", "claims_per_minute", "claim_success_rate", "p95_ms", "error_rate",
                "cache_hit_ratio", "queue_depth", "queue_delay_seconds", "health"):  # fmt: skip
        assert key in data, key
    assert data["remaining"][event.slug] == 300
    assert data["queue_depth"] == 1
    assert data["queue_delay_seconds"] >= 7
    assert data["claims_per_minute"] == 1
    assert set(data["health"]) >= {"database", "redis", "worker", "queue", "error_rate", "latency"}
    assert data["health"]["database"] == "green"
    assert data["health"]["queue"] == "yellow"  # oldest waiting claim older than 5 s


def test_active_users_counts_students_with_requests(client, make_user):
    from monitoring import activity

    for _ in range(3):
        user = make_user()
        client.force_login(user)
        client.get("/api/events/")
        client.get("/api/events/")  # a second request within 30 s is not a second write
    assert activity.count() == (3, "redis")


def test_active_users_fall_back_to_process_memory_when_redis_breaker_is_open(client, make_user):
    from common.breaker import get_breaker
    from monitoring import activity

    client.force_login(make_user())
    client.get("/api/events/")
    breaker = get_breaker("redis")
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    assert activity.count() == (1, "process")


def test_alerts_api_lists_newest_first(client, staff, alert_rules):
    now = timezone.now()
    Alert.objects.create(
        rule=alert_rules["error_rate"], key="error_rate", state="resolved", value=12, last_value=3, threshold=10,
        started_at=now - timedelta(hours=1), resolved_at=now - timedelta(minutes=50),
    )  # fmt: skip
    Alert.objects.create(
        rule=alert_rules["remaining_tickets"], key="remaining_tickets:kuliah-umum", value=40, last_value=40,
        threshold=50, started_at=now,
    )  # fmt: skip
    client.force_login(staff)
    data = client.get("/api/monitoring/alerts/").json()
    assert [a["rule"] for a in data] == ["remaining_tickets:kuliah-umum", "error_rate"]
    assert data[0] | {} == data[0] and data[0]["state"] == "firing" and data[0]["resolved_at"] is None
    assert set(data[1]) >= {"rule", "state", "value", "threshold", "started_at", "resolved_at"}


def test_request_log_and_exports(client, staff):
    from monitoring import recorder

    client.force_login(staff)
    client.get("/api/events/")
    client.get("/api/events/does-not-exist/")
    recorder.flush()
    stats = {(s.endpoint, s.count) for s in RequestStat.objects.all()}
    assert any(count >= 1 for _, count in stats)
    body = b"".join(client.get("/api/monitoring/export/requests.csv").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows and {"minute", "endpoint", "method", "count", "errors", "avg_ms", "db_queries"} <= set(rows[0])
    assert sum(int(r["count"]) for r in rows) >= 2


def test_exports_filter_by_time_range(client, staff):
    now = timezone.now().replace(second=0, microsecond=0)
    for minutes_ago in (90, 30, 5):
        MetricSample.objects.create(taken_at=now - timedelta(minutes=minutes_ago), active_users=minutes_ago)
    ErrorLog.objects.create(logged_at=now - timedelta(minutes=10), logger="x", level="ERROR", message="boom",
                            exception_type="builtins.ValueError", traceback="Traceback ...")  # fmt: skip
    client.force_login(staff)
    since = (now - timedelta(minutes=60)).isoformat()
    response = client.get("/api/monitoring/export/metrics.jsonl", {"since": since, "until": now.isoformat()})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert "attachment" in response["Content-Disposition"]
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [line["active_users"] for line in lines] == [30, 5]
    errors = b"".join(client.get("/api/monitoring/export/errors.csv").streaming_content).decode()
    assert "builtins.ValueError" in errors and "Traceback" in errors


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-45T99:00"}, "until"),
        ({"since": "2026-11-26T10:00:00+07:00", "until": "2026-11-26T09:00:00+07:00"}, "lebih awal"),
        ({"since": "2026-01-01", "until": "2026-11-01"}, "31 hari"),
    ],
)
def test_bad_time_ranges_are_400(client, staff, params, needle):
    client.force_login(staff)
    for url in ("/api/monitoring/export/claims.csv", "/api/monitoring/history/"):
        response = client.get(url, params)
        assert response.status_code == 400
        assert needle in response.json()["error"]


def test_unknown_export_kind_or_format_is_404(client, staff):
    client.force_login(staff)
    assert client.get("/api/monitoring/export/passwords.csv").status_code == 404
    assert client.get("/api/monitoring/export/errors.xml").status_code == 404


def test_history_returns_samples_in_order(client, staff):
    now = timezone.now().replace(second=0, microsecond=0)
    for minutes_ago in (3, 2, 1):
        MetricSample.objects.create(taken_at=now - timedelta(minutes=minutes_ago), queue_depth=minutes_ago)
    client.force_login(staff)
    data = client.get("/api/monitoring/history/").json()
    assert [s["queue_depth"] for s in data["samples"]] == [3, 2, 1]


def test_claims_export_lists_queue_entries(client, staff, student, event):
    from queueing.models import QueueEntry

    entry = QueueEntry.objects.create(user=student, event=event)
    client.force_login(staff)
    body = b"".join(client.get("/api/monitoring/export/claims.jsonl").streaming_content).decode()
    row = json.loads(body.splitlines()[0])
    assert row["queue_id"] == str(entry.public_id) and row["event"] == event.slug and row["status"] == "pending"


def test_claim_statistics_export_survives_queue_cleanup(client, staff, event):
    from queueing.models import ClaimStat

    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=3)
    ClaimStat.objects.create(event=event, minute=minute, outcome="completed", count=42)
    ClaimStat.objects.create(event=event, minute=minute, outcome="sold_out", count=7)
    client.force_login(staff)
    body = b"".join(client.get("/api/monitoring/export/claimstats.csv").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [(r["event"], r["outcome"], r["count"]) for r in rows] == [
        (event.slug, "completed", "42"),
        (event.slug, "sold_out", "7"),
    ]


def test_the_door_is_in_the_live_metrics_and_in_the_exports(client, staff, make_event, make_user):
    from tickets.checkin import Scan, SyncedScan, door_sync, ticket_check_in
    from tools.testing import door_open_times, issue_ticket

    event = make_event(**door_open_times())
    make_event()  # its door is not open: not on the dashboard
    tickets = [issue_ticket(event_id=event.id, user_id=make_user().id) for _ in range(3)]
    now = timezone.now()
    ticket_check_in(
        code=tickets[0].redeem_code, staff_user=staff, event_slug=event.slug, now=now - timedelta(seconds=30),
        scan=Scan(device_id="p1", device_name="pintu1"),
    )  # fmt: skip
    offline = [SyncedScan(nonce=f"n{i}", code=t.redeem_code, scanned_at=now) for i, t in enumerate(tickets[:2])]
    door_sync(event_slug=event.slug, staff_user=staff, scans=offline, device_id="p2", device_name="pintu2", waiting=4)
    client.force_login(staff)
    door = client.get("/api/monitoring/metrics/").json()["door"]
    assert list(door) == [event.slug]
    figures = door[event.slug]
    assert (figures["admitted"], figures["issued"], figures["waiting_to_sync"], figures["conflicts"]) == (2, 3, 4, 1)
    assert {phone["name"]: phone["admitted"] for phone in figures["phones"]} == {"pintu1": 1, "pintu2": 1}

    since = (now - timedelta(minutes=5)).isoformat()
    body = b"".join(client.get("/api/monitoring/export/door.csv", {"since": since}).streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [(r["device"], r["result"], r["offline"], r["conflict"]) for r in rows] == [
        ("pintu1", "admitted", "False", "False"),
        ("pintu2", "already_admitted", "True", "True"),
        ("pintu2", "admitted", "True", "False"),
    ]
    stats = client.get("/api/monitoring/export/doorstats.jsonl", {"since": since})
    lines = [json.loads(line) for line in b"".join(stats.streaming_content).decode().splitlines()]
    per_device = {}
    for line in lines:
        per_device.setdefault(line["device"], [0, 0, 0])
        for i, key in enumerate(("scans", "admitted", "conflicts")):
            per_device[line["device"]][i] += line[key]
    assert per_device == {"pintu1": [1, 1, 0], "pintu2": [2, 1, 1]}


def test_csv_exports_escape_spreadsheet_formulas_like_the_attendee_list(client, staff, make_user, event):
    """Logged text comes from requests (paths, messages): in CSV it must never run as a formula."""
    from queueing.models import QueueEntry

    now = timezone.now()
    ErrorLog.objects.create(logged_at=now - timedelta(minutes=1), logger="@evil", level="ERROR",
                            message='=HYPERLINK("http://evil.example","click")', exception_type="+x",
                            path="-2+3", process="\tp", traceback="\rtrace")  # fmt: skip
    RequestStat.objects.create(minute=now.replace(second=0, microsecond=0), endpoint="=cmd|' /C calc'!A0",
                               method="GET", count=1, total_ms=5, max_ms=5, buckets=[1] + [0] * 10)  # fmt: skip
    QueueEntry.objects.create(user=make_user(), event=event, status="failed", reason="=1+1")
    client.force_login(staff)
    since = (now - timedelta(hours=1)).isoformat()

    def cells(kind):
        response = client.get(f"/api/monitoring/export/{kind}.csv", {"since": since})
        return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))

    (error,) = cells("errors")
    assert error["message"] == '\'=HYPERLINK("http://evil.example","click")'
    assert (error["logger"], error["exception_type"], error["path"]) == ("'@evil", "'+x", "'-2+3")
    assert error["process"] == "'\tp" and error["traceback"] == "'\rtrace"
    assert cells("requests")[0]["endpoint"] == "'=cmd|' /C calc'!A0"
    assert cells("claims")[0]["reason"] == "'=1+1"
    # Numbers and times stay as they are; JSON Lines keep the text as logged.
    assert error["logged_at"][0].isdigit()
    jsonl = client.get("/api/monitoring/export/errors.jsonl", {"since": since})
    assert json.loads(b"".join(jsonl.streaming_content))["message"].startswith("=HYPERLINK")
