"""Organisers' pages: admin lists that fit a laptop with their time zone, links to the door
scan and the dashboard, health lights in words, the seats chart scaled per event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import MetricSample, RequestStat
from monitoring.recorder import LATENCY_BUCKETS_MS
from tools.testing import issue_ticket


@pytest.fixture
def admin_page_client(client, make_user):
    staff = make_user(staff=True)
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    return client


@pytest.mark.django_db
def test_admin_index_links_the_scan_page_and_the_dashboard(admin_page_client):
    html = admin_page_client.get("/admin/").content.decode()
    assert 'href="/scan/"' in html and 'href="/admin/monitoring/dashboard/"' in html


@pytest.mark.django_db
def test_event_and_ticket_lists_show_short_times_in_wib(admin_page_client, make_event, student):
    event = make_event(capacity=500)
    issue_ticket(event_id=event.id, user_id=student.id)
    events = admin_page_client.get("/admin/events/event/").content.decode()
    assert "WIB" in events and "column-claim_opens" in events and "column-slug" not in events
    tickets = admin_page_client.get("/admin/tickets/ticket/").content.decode()
    assert "WIB" in tickets and "column-issued" in tickets and "column-admitted" in tickets


@pytest.mark.django_db
def test_history_gives_each_events_capacity_for_the_chart(admin_page_client, make_event):
    small = make_event(capacity=30, slug="workshop")
    make_event(capacity=500, slug="lecture")
    MetricSample.objects.create(
        taken_at=timezone.now() - timedelta(minutes=1), remaining={"workshop": 3, "lecture": 250}
    )
    body = admin_page_client.get("/api/monitoring/history/").json()
    assert body["capacity"] == {"workshop": 30, "lecture": 500}
    assert small.capacity == 30


@pytest.mark.django_db
def test_dashboard_health_lights_have_words(admin_page_client):
    html = admin_page_client.get("/admin/monitoring/dashboard/").content.decode()
    assert html.count('class="mon-health-state"') == 6
    assert 'data-label-health-green="OK"' in html and 'data-label-health-red="masalah"' in html


@pytest.mark.browser
@pytest.mark.slow
def test_admin_lists_fit_1366_pixels_in_indonesian_and_the_dashboard_says_its_health(
    live_asgi_server, browser, make_user, make_event, student, alert_rules
):
    staff = make_user(staff=True)
    staff.is_superuser = True
    staff.save()
    title = "Kuliah Umum: Akal Sehat di Ruang Publik"
    event = make_event(capacity=500, title=title)
    workshop = make_event(capacity=3, title="Lokakarya Menulis Esai")  # open, all its seats left
    running_out = make_event(capacity=500, remaining=37, title="Seminar Hampir Penuh")
    ticket = issue_ticket(event_id=event.id, user_id=student.id)
    MetricSample.objects.create(taken_at=timezone.now() - timedelta(minutes=1), remaining={event.slug: 250})
    buckets = [0] * len(LATENCY_BUCKETS_MS)
    buckets[3] = 120  # every request between 100 and 250 ms: p95 is 242.5 ms
    RequestStat.objects.create(minute=timezone.now().replace(second=0, microsecond=0), endpoint="events:api-list",
                               method="GET", count=120, total_ms=120 * 140, max_ms=240, buckets=buckets)  # fmt: skip
    # bypass_csp: wait_for_function evaluates its expression with eval(), which the pages' CSP
    # refuses (the shared phone_page fixture does the same).
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="id-ID", bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(f"{live_asgi_server}/admin/login/?next=/admin/")
        page.fill("#id_username", staff.username)
        page.fill("#id_password", "s3cret-pass!")
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")
        # The product's own name, and every app section in Indonesian.
        assert page.inner_text("#site-name") == "Administrasi ticketwar"
        assert "Django" not in page.title()
        sections = set(page.eval_on_selector_all("#content-main .module caption", "cs => cs.map(c => c.innerText)"))
        assert {"ACARA", "AKUN", "PEMANTAUAN", "TIKET", "DAFTAR TUNGGU"} <= sections, sections
        assert "Tanda hidup worker" in page.inner_text("#content-main")

        for path in ("/admin/events/event/", "/admin/tickets/ticket/"):
            page.goto(live_asgi_server + path)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow} px at 1366 px"
            # No column clipped inside the list either.
            clipped = page.locator("#changelist .results").evaluate("r => r.scrollWidth - r.clientWidth")
            assert clipped <= 0, f"{path} hides {clipped} px of its last columns at 1366 px"
            assert "WIB" in page.inner_text("#result_list")
            if path == "/admin/events/event/":
                assert page.inner_text(".breadcrumbs") == "Beranda › Acara › Acara"
                # The long title wraps at most once, not a word per line.
                link = page.locator("#result_list th.field-title a", has_text=title)
                lines = link.evaluate("a => a.getClientRects().length")
                assert lines <= 2, f"the title takes {lines} lines"
                # "Tickets issued" and the status "published" are different words.
                issued = page.inner_text("#result_list th.column-issued").strip().lower()
                status = page.inner_text("#result_list td.field-status >> nth=0").strip().lower()
                assert status == "dipublikasikan" and issued != status and "terbit" in issued
        assert ticket.redeem_code[:4] in page.inner_text("#result_list")
        assert "PEMEGANG" in page.inner_text("#result_list thead")
        page.goto(f"{live_asgi_server}/admin/events/event/{event.pk}/change/")
        labels = set(page.eval_on_selector_all("#event_form label", "ls => ls.map(l => l.innerText.replace(/:$/, ''))"))
        assert {"Alamat singkat", "Dibuat pada", "Diperbarui pada"} <= labels, labels
        assert not {"Slug", "Created at", "Updated at"} & labels

        page.goto(f"{live_asgi_server}/admin/monitoring/dashboard/")
        page.wait_for_function(
            "document.querySelector('[data-health=database] .mon-health-state').textContent !== '–'", timeout=15_000
        )
        assert page.inner_text("[data-health=database] .mon-health-state") == "OK"
        # Indonesian numbers: a decimal comma, as in the help text beside them.
        assert page.inner_text('[data-metric="p95_ms"]') == "242,5 ms"
        assert "1 %" in page.inner_text(".mon-help") and "1,0" not in page.inner_text(".mon-help")
        # Events by their titles; red only where seats are really running out (not 3 of 3).
        tiles = page.locator("#mon-remaining .mon-tile")
        tiles.first.wait_for()
        assert page.inner_text(f'#mon-remaining [data-event="{workshop.slug}"] .mon-label') == workshop.title
        low = set(page.eval_on_selector_all("#mon-remaining .mon-tile.is-low", "ts => ts.map(t => t.dataset.event)"))
        assert low == {running_out.slug}
        # The export help in Indonesian, the kinds by their names.
        help_text = page.inner_text("#mon-export-help") + page.inner_text(".mon-export-kinds")
        assert "KIND" not in help_text and "jenis" in help_text and "Log galat" in help_text
        page.wait_for_selector('#monitoring[data-remaining-scale="percent"]', timeout=15_000)
        chart = page.evaluate("Chart.getChart(document.getElementById('chart-remaining')).data.datasets[0]")
        assert chart["data"][-1] == 50 and chart["label"] == title  # 250 of 500 seats, by its title
    finally:
        context.close()
