"""The dashboard in a real Chromium: live tiles filled by polling, the 24-hour charts drawn."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.roles import OPERATORS
from monitoring.models import Alert, MetricSample, RequestStat
from monitoring.recorder import LATENCY_BUCKETS_MS


def day_of_samples(slug: str) -> None:
    """A plausible ticket-war day: one sample a minute for the last 24 hours."""
    rng = random.Random(6)
    now = timezone.now().replace(second=0, microsecond=0)
    remaining = 500
    samples = []
    for minutes_ago in range(24 * 60, 0, -1):
        war = 0 < minutes_ago - 600 < 45  # a 45-minute rush ten hours ago
        claims = rng.randint(8, 15) if war else rng.randint(0, 1)
        remaining = max(0, remaining - (claims if war else 0))
        samples.append(
            MetricSample(
                taken_at=now - timedelta(minutes=minutes_ago),
                remaining={slug: remaining},
                active_users=rng.randint(600, 1100) if war else rng.randint(5, 40),
                claims_per_minute=claims,
                claim_success_rate=95.0 + rng.random() * 5 if claims else None,
                p95_ms=rng.uniform(180, 450) if war else rng.uniform(20, 60),
                error_rate=rng.uniform(0, 2) if war else 0.0,
                cache_hit_ratio=rng.uniform(85, 97),
                queue_depth=rng.randint(20, 120) if war else 0,
                queue_delay_seconds=rng.uniform(1, 4) if war else 0,
                requests=rng.randint(2000, 5000) if war else rng.randint(10, 50),
            )
        )
    MetricSample.objects.bulk_create(samples)


@pytest.mark.browser
def test_dashboard_draws_live_tiles_and_charts(
    live_asgi_server, browser, make_user, make_event, alert_rules, screenshot_dir
):
    staff = make_user(staff=True, roles=(OPERATORS,))
    event = make_event(capacity=500, slug="kuliah-umum", remaining=37)
    day_of_samples(event.slug)
    buckets = [0] * len(LATENCY_BUCKETS_MS)
    buckets[3] = 120
    RequestStat.objects.create(minute=timezone.now().replace(second=0, microsecond=0), endpoint="events:api-list",
                               method="GET", count=120, total_ms=120 * 140, max_ms=240, buckets=buckets)  # fmt: skip
    Alert.objects.create(rule=alert_rules["remaining_tickets"], key=f"remaining_tickets:{event.slug}", value=37,
                         last_value=37, threshold=50, started_at=timezone.now())  # fmt: skip

    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="id-ID")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(live_asgi_server + "/admin/login/?next=/admin/monitoring/dashboard/")
        page.fill("#id_username", staff.username)
        page.fill("#id_password", "s3cret-pass!")
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/monitoring/dashboard/")
        page.wait_for_selector('#monitoring[data-charts-drawn="5"]', timeout=15000)
        page.wait_for_selector('#mon-remaining [data-event="kuliah-umum"]', timeout=15000)

        assert page.text_content('#mon-remaining [data-event="kuliah-umum"] .mon-value') == "37"
        assert page.text_content('[data-metric="p95_ms"]') != "–"
        assert page.get_attribute('[data-health="database"]', "data-colour") == "green"
        assert page.get_attribute('[data-health="worker"]', "data-colour") == "red"  # no worker in this test
        assert "remaining_tickets:kuliah-umum" in page.text_content("#mon-alerts-body")
        assert "menyala" in page.text_content("#mon-alerts-body")  # the state in the page's language
        points = page.evaluate(
            """() => [...document.querySelectorAll('.mon-charts canvas')].map((canvas) => {
                const chart = Chart.getChart(canvas);
                return chart ? chart.data.datasets.reduce((n, d) => n + d.data.filter((v) => v !== null).length, 0) : 0;
            })"""
        )
        assert len(points) == 5 and all(count >= 24 * 60 - 5 for count in points), points
        # Something was really painted: the chart canvas is not blank.
        painted = page.evaluate(
            """() => {
                const canvas = document.getElementById('chart-remaining');
                const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                let opaque = 0;
                for (let i = 3; i < data.length; i += 4) if (data[i] > 0) opaque++;
                return opaque;
            }"""
        )
        assert painted > 1000
        page.screenshot(path=str(screenshot_dir / "dashboard.png"), full_page=True)
        assert not errors, errors
    finally:
        context.close()
