"""Organisers' pages: admin lists that fit a laptop with their time zone, links to the door
scan and the dashboard, health lights in words, the seats chart scaled per event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import MetricSample
from tickets.services import ticket_issue


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
    ticket_issue(event_id=event.id, user_id=student.id)
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
def test_admin_lists_fit_1366_pixels_and_the_dashboard_says_its_health(
    live_asgi_server, browser, make_user, make_event, student
):
    staff = make_user(staff=True)
    staff.is_superuser = True
    staff.save()
    event = make_event(capacity=500, title="Kuliah Umum: Akal Sehat di Ruang Publik")
    make_event(capacity=30, title="Lokakarya Menulis Esai")
    ticket = ticket_issue(event_id=event.id, user_id=student.id)
    MetricSample.objects.create(taken_at=timezone.now() - timedelta(minutes=1), remaining={event.slug: 250})
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
        for path in ("/admin/events/event/", "/admin/tickets/ticket/"):
            page.goto(live_asgi_server + path)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow} px at 1366 px"
            assert "WIB" in page.inner_text("#result_list")
        assert ticket.redeem_code[:4] in page.inner_text("#result_list")
        page.goto(f"{live_asgi_server}/admin/monitoring/dashboard/")
        page.wait_for_function(
            "document.querySelector('[data-health=database] .mon-health-state').textContent !== '–'", timeout=15_000
        )
        assert page.inner_text("[data-health=database] .mon-health-state") == "OK"
        page.wait_for_selector('#monitoring[data-remaining-scale="percent"]', timeout=15_000)
        shares = page.evaluate("Chart.getChart(document.getElementById('chart-remaining')).data.datasets[0].data")
        assert shares[-1] == 50  # 250 of 500 seats
    finally:
        context.close()
