"""Over the claim limit in a real Chromium: why, said once, a live countdown, then the button comes
back and the sentence goes."""

from __future__ import annotations

import re

import pytest
from django.test import RequestFactory

from common.ratelimit import check

from .test_ratelimit import seconds_left

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "s3cret-pass!"  # the conftest make_user default


def test_claim_429_shows_a_countdown_and_re_enables_the_button(live_asgi_server, phone_page, make_event, make_user):
    event = make_event(capacity=5)
    # Each key has its own window edge (django-ratelimit adds a per-key offset): pick a student
    # whose window ends in 6-20 s so the test sees the whole countdown without waiting a minute.
    for _ in range(60):
        student = make_user()
        if 6 <= seconds_left(f"user:{student.pk}") <= 20:
            break
    else:
        pytest.fail("no student with a short window in 60 tries")
    # Use up the three claim attempts of this minute (same Redis, same counters as the server).
    request = RequestFactory().post(f"/api/events/{event.slug}/claim/")
    request.user = student
    for _ in range(3):
        assert not check(request, "claim").limited

    page = phone_page
    page.goto(f"{live_asgi_server}/accounts/login/")
    page.fill("input[name=username]", student.nim)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit].primary")
    page.wait_for_url(f"{live_asgi_server}/")
    page.goto(f"{live_asgi_server}/events/{event.slug}/")
    page.click("#claim-button")
    # Why, said once (no number that would stand still), and the wait counting down above the button...
    message, countdown = page.locator("#claim-message"), page.locator("#countdown")
    page.wait_for_function("document.getElementById('countdown').textContent.match(/\\d:\\d\\d/)", timeout=10_000)
    assert message.text_content() == "Terlalu banyak percobaan klaim dalam waktu singkat."
    first = countdown.text_content()
    assert re.search(r"0:[0-2]\d", first), first
    assert page.is_disabled("#claim-button")
    page.wait_for_function(f"document.getElementById('countdown').textContent !== {first!r}", timeout=5_000)
    # ...and when the button is usable again, the sentence is gone with the wait.
    page.wait_for_function("!document.getElementById('claim-button').disabled", timeout=30_000)
    assert message.is_hidden() and countdown.is_hidden()
    page.click("#claim-button")
    page.wait_for_url(re.compile(r".*/queue/[^/]+/$"), timeout=15_000)
