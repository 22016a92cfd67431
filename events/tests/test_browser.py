"""The event page in a real Chromium: counter, countdown, claim button (phone viewport)."""

from __future__ import annotations

import re

import pytest

from tickets.tests.browser import login_with_session
from tools.testing import issue_ticket

pytestmark = [pytest.mark.browser, pytest.mark.slow]


PASSWORD = "s3cret-pass!"  # the conftest make_user default


def log_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit].primary")
    page.wait_for_url(f"{base}/")


def test_counter_follows_the_server_and_anonymous_visitors_are_led_to_log_in(
    live_asgi_server, phone_page, make_event, student
):
    event = make_event(capacity=5, title="Kuliah Umum Browser")
    errors: list[str] = []
    phone_page.on("pageerror", lambda exc: errors.append(str(exc)))
    phone_page.goto(f"{live_asgi_server}/")
    phone_page.click("text=Kuliah Umum Browser")
    phone_page.wait_for_url(f"{live_asgi_server}/events/{event.slug}/")
    assert phone_page.text_content("#remaining") == "5"
    # No claim button to press before logging in: the login, and back to this event after it.
    assert phone_page.locator("#claim-button").count() == 0
    assert phone_page.get_attribute("#log-in-button", "href") == f"/accounts/login/?next=/events/{event.slug}/"
    # A seat taken elsewhere shows up within one poll (5 s).
    issue_ticket(event_id=event.pk, user_id=student.pk)
    phone_page.wait_for_function("document.getElementById('remaining').textContent === '4'", timeout=12_000)
    assert errors == []


def test_countdown_before_opening(live_asgi_server, phone_page, make_event, student):
    event = make_event(opens_in=3600)
    login_with_session(phone_page, live_asgi_server, student)
    phone_page.goto(f"{live_asgi_server}/events/{event.slug}/")
    countdown = phone_page.locator("#countdown")
    countdown.wait_for(state="visible")
    text = countdown.text_content()
    assert re.search(r"(59|1:00):\d\d", text), text
    assert phone_page.is_disabled("#claim-button")
    first = text
    phone_page.wait_for_function(f"document.getElementById('countdown').textContent !== {first!r}", timeout=5_000)


def test_claim_goes_to_the_queue_page(live_asgi_server, phone_page, make_event, student):
    event = make_event(capacity=3)
    log_in(phone_page, live_asgi_server, student.nim)
    phone_page.goto(f"{live_asgi_server}/events/{event.slug}/")
    phone_page.click("#claim-button")
    phone_page.wait_for_url(re.compile(r".*/queue/[^/]+/$"), timeout=15_000)


def test_unverified_student_sees_the_refusal(live_asgi_server, phone_page, make_event, make_user):
    event = make_event(capacity=3)
    user = make_user(verified=False)
    log_in(phone_page, live_asgi_server, user.nim)
    phone_page.goto(f"{live_asgi_server}/events/{event.slug}/")
    assert phone_page.locator(".verify-banner").is_visible()
    # Why, and how to get a new link; no button that would only fail.
    assert phone_page.locator("#claim-button").count() == 0
    assert "verifikasi" in phone_page.text_content("#verify-first")
    assert phone_page.get_attribute("#verify-first a", "href") == "/accounts/verify/sent/"


def test_event_and_signup_page_screenshots(live_asgi_server, phone_page, make_event, student, screenshot_dir):
    """Phone-sized screenshots for the README (docs/screenshots/ with `make screenshots`)."""
    screenshots = screenshot_dir
    event = make_event(
        capacity=500,
        slug="kuliah-umum-demo",
        title="Kuliah Umum: Akal Sehat di Ruang Publik",
        speaker="Rocky Gerung",
        venue="Aula Gedung Serbaguna",
        description="Kuliah umum terbuka untuk mahasiswa. 500 kursi gratis, satu tiket per mahasiswa.",
        remaining=312,
    )
    login_with_session(phone_page, live_asgi_server, student)  # a student's view: the claim button
    phone_page.goto(f"{live_asgi_server}/events/{event.slug}/")
    assert phone_page.text_content("#remaining") == "312"
    assert phone_page.is_visible("text=Klaim tiket saya")
    phone_page.screenshot(path=str(screenshots / "event.png"), full_page=True)
    phone_page.context.clear_cookies()
    phone_page.goto(f"{live_asgi_server}/accounts/signup/")
    assert phone_page.is_visible("text=Buat akun mahasiswa Anda")
    phone_page.screenshot(path=str(screenshots / "signup.png"), full_page=True)


def test_admin_actions_run_what_their_labels_say(live_asgi_server, browser, organiser, student, make_event, tmp_path):
    """An organiser picks each action by its visible label in the changelist and gets that action."""
    from tickets.tests.browser import admin_login

    event = make_event(title="Kuliah Umum")
    issue_ticket(event_id=event.id, user_id=student.id)
    context = browser.new_context(accept_downloads=True, locale="en-US")
    try:
        page = context.new_page()
        admin_login(page, live_asgi_server, organiser.username)

        def run(label: str) -> None:
            page.goto(f"{live_asgi_server}/admin/events/event/")
            page.check(f"input.action-select[value='{event.pk}']")
            page.select_option("select[name=action]", label=label)

        run("Export attendee list (CSV)")
        with page.expect_download() as download_info:
            page.click("button[name=index]")
        download = download_info.value
        assert download.suggested_filename.startswith("attendees-") and download.suggested_filename.endswith(".csv")
        path = tmp_path / "attendees.csv"
        download.save_as(path)
        lines = path.read_text().splitlines()
        assert lines[0].startswith("event,nim,full_name")
        assert any(student.nim in line and event.slug in line for line in lines[1:])

        run("Ask ticket holders to confirm attendance")
        page.click("button[name=index]")
        page.wait_for_load_state()
        assert "/admin/tickets/confirmationrequest/add/" in page.url and f"event={event.pk}" in page.url
        assert page.locator("#confirmationrequest_form").count() == 1  # organisers may fill it in
    finally:
        context.close()
