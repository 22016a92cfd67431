"""The ticket in the student's pocket, in Chromium on a phone: the ticket page opens offline after
one visit (its service worker, under the site's Content-Security-Policy), a shared phone forgets
it at log-out and for the next account, and printing works with JavaScript off."""

from __future__ import annotations

import pytest
from playwright.sync_api import Error as PlaywrightError

from events.models import Event
from tickets.services import ticket_return
from tools.testing import door_open_times, wait_until

from .browser import login_with_session

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SAVED_KEYS = "caches.keys().then(keys => keys.filter(key => key.startsWith('ticket-pages:')))"


def _phone(browser, **options):
    # No bypass_csp: the service worker and the page's scripts run under the real policy.
    return browser.new_context(viewport={"width": 390, "height": 844}, locale="id-ID", **options)


def _opens_offline(page, url: str) -> str | None:
    """The page's text when ``url`` opens with the network cut, None when it does not open."""
    try:
        page.goto(url, timeout=15_000)
    except PlaywrightError:
        return None  # net::ERR_INTERNET_DISCONNECTED: nothing saved served it
    return page.inner_text("body")


def test_a_ticket_opens_offline_after_one_visit_and_a_shared_phone_forgets_it(
    live_asgi_server, browser, student, other_student, make_ticket, make_event, screenshot_dir
):
    base = live_asgi_server
    mine = make_ticket(user=student, event=make_event(title="Kuliah Umum", rotating_qr=True, **door_open_times()))
    theirs = make_ticket(user=other_student)
    context = _phone(browser)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        login_with_session(page, base, student)
        page.goto(f"{base}/tickets/{mine.id}/")
        page.wait_for_selector("#pocket-saved", state="visible", timeout=20_000)
        assert "Tersimpan di ponsel ini" in page.inner_text("#pocket-saved")

        # The hall's Wi-Fi is gone: the page opens from the phone, code and event included.
        venue = mine.event.venue
        Event.objects.filter(pk=mine.event_id).update(venue="Gedung Baru")  # so a fresh page would tell
        context.set_offline(True)
        text = _opens_offline(page, f"{base}/tickets/{mine.id}/")
        assert text is not None, "the saved ticket page did not open offline"
        assert venue in text and "Gedung Baru" not in text, "not the saved copy"
        page.wait_for_selector("#pocket-offline", state="visible")
        assert "Tidak ada koneksi" in page.inner_text("#pocket-offline")
        assert f"{mine.redeem_code[:4]}-{mine.redeem_code[4:]}" in text
        assert "Kuliah Umum" in text and "WIB" in text
        assert page.locator("link[rel=stylesheet]").count() and page.evaluate(
            "getComputedStyle(document.querySelector('.redeem-code')).fontFamily"
        ).startswith("ui-monospace")  # the saved page came with its styles
        # Its rotating QR cannot refresh: the page says so instead of showing a code that fails.
        page.wait_for_selector("#ticket-qr-offline", state="visible", timeout=10_000)
        assert "kartu mahasiswa" in page.inner_text("#ticket-qr-offline")
        page.screenshot(path=str(screenshot_dir / "ticket-offline.png"), full_page=True)
        # Pages never opened were not saved.
        assert _opens_offline(page, f"{base}/tickets/{theirs.id}/") is None

        # Another student takes the phone and logs in (no log-out before): the first one's
        # saved ticket is gone as soon as any page opens, and never served offline.
        context.set_offline(False)
        context.clear_cookies()
        login_with_session(page, base, other_student)
        page.goto(f"{base}/")
        wait_until(
            lambda: page.evaluate(SAVED_KEYS) == [], timeout=10, message="saved pages of the first student deleted"
        )
        context.set_offline(True)
        text = _opens_offline(page, f"{base}/tickets/{mine.id}/")
        assert text is None or mine.redeem_code[:4] not in text

        # The second student saves their own ticket, then logs out: nothing is left.
        context.set_offline(False)
        page.goto(f"{base}/tickets/{theirs.id}/")
        page.wait_for_selector("#pocket-saved", state="visible", timeout=20_000)
        assert len(page.evaluate(SAVED_KEYS)) == 1
        page.click("form[action='/accounts/logout/'] button")
        page.wait_for_url(f"{base}/")
        wait_until(lambda: page.evaluate(SAVED_KEYS) == [], timeout=10, message="saved pages deleted at log-out")
        context.set_offline(True)
        text = _opens_offline(page, f"{base}/tickets/{theirs.id}/")
        assert text is None or theirs.redeem_code[:4] not in text
    finally:
        context.close()
    assert errors == []


def test_print_works_without_javascript_and_a_given_back_ticket_offers_none(
    live_asgi_server, browser, student, make_ticket
):
    base = live_asgi_server
    active, returned = make_ticket(user=student), make_ticket(user=student)
    ticket_return(ticket_id=returned.id, user_id=student.id)

    context = _phone(browser, java_script_enabled=False)
    try:
        page = context.new_page()
        login_with_session(page, base, student)
        page.goto(f"{base}/tickets/{active.id}/")
        page.click("text=Cetak tiket")
        page.wait_for_url(f"{base}/tickets/{active.id}/print/")
        assert "Ctrl+P" in page.inner_text(".print-help")
        assert page.locator("[data-print-now]").is_hidden()  # its button needs a script
        assert page.locator(".redeem-code").inner_text() == f"{active.redeem_code[:4]}-{active.redeem_code[4:]}"
        page.emulate_media(media="print")
        assert page.locator(".print-help").is_hidden() and page.locator(".site-header").is_hidden()
        assert page.locator("svg.ticket-qr").is_visible()

        page.emulate_media(media="screen")
        page.goto(f"{base}/tickets/{returned.id}/")
        assert page.locator("text=Cetak tiket").count() == 0
    finally:
        context.close()

    # With JavaScript the same link prints the ticket page itself.
    context = _phone(browser)
    try:
        page = context.new_page()
        page.add_init_script("window.print = () => { document.documentElement.dataset.printed = 'yes'; };")
        login_with_session(page, base, student)
        page.goto(f"{base}/tickets/{active.id}/")
        page.click("text=Cetak tiket")
        page.wait_for_selector("html[data-printed=yes]", state="attached", timeout=5_000)
        assert page.url == f"{base}/tickets/{active.id}/"
    finally:
        context.close()
