"""The waiting page after the decision shows only what is true after it, in a real Chromium."""

from __future__ import annotations

import re

import pytest

from queueing.processing import queue_process_batch
from tickets.tests.browser import DESKTOP, PHONE, browser_page, login_with_session

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_decided_waiting_page_shows_only_what_is_true_after_the_decision(
    live_asgi_server, browser, make_event, student
):
    base = live_asgi_server
    event = make_event(capacity=3, title="Kuliah Umum Antrean")
    with browser_page(browser, PHONE) as page:
        login_with_session(page, base, student)
        page.goto(f"{base}/events/{event.slug}/")
        # Buttons speak in the text's font.
        assert page.evaluate(
            "getComputedStyle(document.getElementById('claim-button')).fontFamily"
            " === getComputedStyle(document.body).fontFamily"
        )
        page.click("#claim-button")
        page.wait_for_url(re.compile(r".*/queue/[0-9a-f-]+/$"))
        queue_url = page.url
        # The place and the wait are two figures side by side, not an indented list.
        figures = page.locator("#queue-figures")
        assert figures.evaluate("dl => getComputedStyle(dl).display") == "grid"
        assert figures.locator("dd").first.evaluate("dd => getComputedStyle(dd).marginLeft") == "0px"
        place, wait = (figures.locator(f"dd >> nth={i}").bounding_box() for i in (0, 1))
        assert place["y"] == wait["y"] and place["x"] < wait["x"]
        assert page.inner_text("#queue-seats") == "3 kursi tersisa" and page.is_visible("#waitlist")

        assert queue_process_batch().taken == 1  # the worker's decision, pushed to the page
        page.wait_for_selector("#queue-ticket:not([hidden])", timeout=15_000)
        # At once, beside "you got a ticket": the seats left after it, and no waiting-list box.
        page.wait_for_function(
            "document.getElementById('waitlist').hidden"
            " && document.getElementById('queue-seats').textContent === '2 kursi tersisa'",
            timeout=1_500,
        )
        assert page.inner_text("#queue-status") == "Anda dapat tiket!"
    with browser_page(browser, DESKTOP, javascript=False) as page:  # the same page, without scripts
        login_with_session(page, base, student)
        page.goto(queue_url)
        assert page.inner_text("#queue-seats") == "2 kursi tersisa"
        assert page.locator("#waitlist-form").count() == 0 and page.locator("#queue-figures").is_hidden()
