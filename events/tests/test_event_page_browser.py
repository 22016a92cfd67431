"""The event page says the right thing at the right moment, in a real Chromium: to a visitor who
is not logged in, once the seats are gone, and to a student who already holds a ticket.

Each test walks a phone with JavaScript and a laptop without it (the forms alone), in Indonesian.
"""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.test import RequestFactory

from common.ratelimit import check
from common.tests.test_ratelimit import seconds_left
from events import cache as events_cache
from tickets.tests.browser import DEFAULT_PASSWORD, DESKTOP, PHONE, browser_page, login_with_session
from tools.testing import issue_ticket

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HAVE_TICKET = "Anda sudah punya tiket untuk acara ini."


def assert_tap_targets(page, selectors: list[str]) -> None:
    """Each at least 44 × 44 px: a thumb, not a mouse pointer."""
    for selector in selectors:
        box = page.locator(selector).first.bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44, f"{selector}: {box}"


def same_font_as_the_text(page, selector: str) -> bool:
    return page.locator(selector).first.evaluate(
        "el => getComputedStyle(el).fontFamily === getComputedStyle(document.body).fontFamily"
    )


def log_in_with_the_form(page, username: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("form button[type=submit].primary")


def use_up_claims(user, event) -> None:
    """The three claim attempts of this minute, spent (same Redis, same counters as the server)."""
    request = RequestFactory().post(f"/api/events/{event.slug}/claim/")
    request.user = user
    for _ in range(3):
        check(request, "claim")


def with_a_long_window(make_user, seconds: int = 30):
    """A student whose claim window (django-ratelimit's per-key minute) has ``seconds`` or more
    left: the budget spent stays spent for the whole test."""
    for _ in range(40):
        user = make_user()
        if seconds_left(f"user:{user.pk}") >= seconds:
            return user
    pytest.fail("no student with a long enough window in 40 tries")


def test_a_visitor_who_is_not_logged_in_is_sent_to_log_in_and_back(live_asgi_server, browser, make_event, student):
    base = live_asgi_server
    event = make_event(opens_in=3600, title="Kuliah Umum Belum Dibuka")
    path = f"/events/{event.slug}/"
    back_here = f"/accounts/login/?next={path}"
    with browser_page(browser, PHONE) as page:
        page.goto(f"{base}/")
        nav = ".site-nav a[href^='/accounts/login/']", ".site-nav a[href='/accounts/signup/']"
        assert_tap_targets(page, [*nav, ".site-footer .lang button"])
        assert same_font_as_the_text(page, ".site-footer .lang button")
        # The whole card leads to its event, not its title alone: a tap on the speaker's name.
        speaker = page.locator(".event-card", has_text=event.title).locator(".speaker").bounding_box()
        page.mouse.click(speaker["x"] + speaker["width"] / 2, speaker["y"] + speaker["height"] / 2)
        page.wait_for_url(base + path, timeout=5_000)
        # Before the opening: no claim button that could only answer "log in first", but the way
        # to log in and come back, from the page and from the header alike.
        assert page.locator("#claim-button").count() == 0
        assert page.get_attribute("#log-in-button", "href") == back_here
        assert page.get_attribute(nav[0], "href") == back_here
        assert page.inner_text("#log-in-first") == "Masuk dengan akun mahasiswa Anda untuk mengklaim tiket."
        assert_tap_targets(page, ["#log-in-button"])
        page.click(nav[0])
        log_in_with_the_form(page, student.nim)
        page.wait_for_url(base + path)
        assert page.is_disabled("#claim-button")  # logged in: the claim button, until the opening
    with browser_page(browser, DESKTOP, javascript=False) as page:
        page.goto(base + path)
        page.click("#log-in-button")
        log_in_with_the_form(page, student.nim)
        page.wait_for_url(base + path)
        assert page.locator("#claim-form").count() == 1 and page.locator("#log-in-button").count() == 0


def test_a_sold_out_event_page_says_what_a_student_can_still_do(live_asgi_server, browser, make_event, make_user):
    base = live_asgi_server
    event = make_event(capacity=1, title="Kuliah Umum Hampir Habis")
    path = f"/events/{event.slug}/"
    first, second = make_user(), make_user()
    with browser_page(browser, PHONE) as page:
        login_with_session(page, base, first)
        page.goto(base + path)
        assert page.locator("#waitlist-box").is_hidden()  # seats left: claim, no list yet
        # The last seat goes while the page is open; the claim is refused and puts them on the list.
        issue_ticket(event_id=event.id, user_id=make_user().id)
        cache.clear()
        time.sleep(events_cache.LOCAL_TTL + 0.5)  # the server's own copy of the seat count expires
        page.click("#claim-button")
        page.wait_for_selector("#waitlist-box:not([hidden])", timeout=10_000)
        box = page.inner_text("#waitlist-box")
        assert "Anda nomor 1 di daftar tunggu." in box
        assert "ditawarkan kepada mahasiswa berikutnya" in box and "15 menit" in box  # when a seat frees up
        page.reload()  # the server says the same
        assert page.inner_text("#waitlist-standing").startswith("Anda nomor 1 di daftar tunggu.")
    with browser_page(browser, DESKTOP, javascript=False) as page:
        login_with_session(page, base, second)
        page.goto(base + path)
        assert "Habis" in page.inner_text("#state-line") and page.is_visible("#waitlist-box")
        page.click("#waitlist-join-button")
        page.wait_for_url(base + path)
        assert page.inner_text("#waitlist-standing").startswith("Anda nomor 2 di daftar tunggu.")
        assert page.locator("#waitlist-join-form").is_hidden()
    with browser_page(browser, PHONE) as page:  # not logged in: what the list does, and the way in
        page.goto(base + path)
        assert page.is_visible("#waitlist-box") and page.locator("#waitlist-join-form").count() == 0
        sentence = "Masuk dengan akun mahasiswa Anda untuk bergabung dengan daftar tunggu."
        assert page.inner_text("#log-in-first") == sentence


def test_a_ticket_holder_is_told_so_whatever_the_claim_budget_says(live_asgi_server, browser, make_event, make_user):
    base = live_asgi_server
    event = make_event(capacity=5)
    path = f"/events/{event.slug}/"
    holder, other = with_a_long_window(make_user), with_a_long_window(make_user)
    with (
        browser_page(browser, PHONE) as phone,
        browser_page(browser, DESKTOP, javascript=False) as laptop,
        browser_page(browser, DESKTOP, javascript=False) as other_laptop,
    ):
        # Second tabs, opened before the first tab's claim won and the minute's claims were spent.
        for page, user in ((phone, holder), (laptop, holder), (other_laptop, other)):
            login_with_session(page, base, user)
            page.goto(base + path)
        ticket = issue_ticket(event_id=event.id, user_id=holder.id)
        use_up_claims(holder, event)
        use_up_claims(other, event)

        phone.click("#claim-button")
        phone.wait_for_function("document.getElementById('claim-message').textContent.indexOf('tiket') >= 0")
        assert phone.inner_text("#claim-message").startswith(HAVE_TICKET)
        assert phone.get_attribute("#claim-message a", "href") == f"/tickets/{ticket.id}/"
        assert phone.is_disabled("#claim-button")

        # Without JavaScript: redirected (a reload posts nothing), the ticket said once, its button
        # under the sentence rather than inside it.
        laptop.click("#claim-button")
        laptop.wait_for_url(base + path)
        assert laptop.inner_text("main").count(HAVE_TICKET) == 1 and laptop.locator("#claim-message").is_hidden()
        sentence = laptop.locator("#have-ticket p").bounding_box()
        button = laptop.locator("#have-ticket a.button").bounding_box()
        assert button["y"] >= sentence["y"] + sentence["height"], (sentence, button)

        # Anyone else over the budget is told to wait, once.
        other_laptop.click("#claim-button")
        other_laptop.wait_for_url(base + path)
        assert other_laptop.inner_text("main").count("Terlalu banyak permintaan") == 1
        other_laptop.reload()
        assert other_laptop.locator("#claim-message").is_hidden()
