"""The claim button comes on at the announced second, not up to a second after it."""

from __future__ import annotations

import time

import pytest

from tickets.tests.browser import login_with_session

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_button_enables_at_the_opening_time(live_asgi_server, phone_page, make_event, student):
    login_with_session(phone_page, live_asgi_server, student)  # a student's page: the claim button
    event = make_event(opens_in=4.5)
    opens_at_ms = event.claim_opens_at.timestamp() * 1000
    # Note the browser's clock (the machine's, as the server's) the moment the button comes on.
    phone_page.add_init_script(
        """document.addEventListener("DOMContentLoaded", () => {
            const button = document.getElementById("claim-button");
            new MutationObserver(() => { if (!button.disabled && !window.enabledAt) window.enabledAt = Date.now(); })
                .observe(button, {attributes: true, attributeFilter: ["disabled"]});
        });"""
    )
    phone_page.goto(f"{live_asgi_server}/events/{event.slug}/")
    assert phone_page.is_disabled("#claim-button")
    phone_page.wait_for_function("window.enabledAt", timeout=15_000)
    late_ms = phone_page.evaluate("window.enabledAt") - opens_at_ms
    # A free-running one-second tick was up to 1000 ms late (1.1 s measured); a timer aimed at
    # the opening is late by the timer's own jitter only.
    assert -50 <= late_ms < 300, late_ms
    assert time.time() * 1000 >= opens_at_ms
