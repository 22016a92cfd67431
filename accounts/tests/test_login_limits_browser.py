"""A locked login in a real Chromium: a live countdown, then the button comes back and works."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import LoginThrottle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "s3cret-pass!"  # the conftest make_user default


def test_locked_login_counts_down_and_lets_the_student_in_when_it_ends(live_asgi_server, phone_page, make_user):
    student = make_user()
    # A stranger's guesses earned the account a wait of which about 8 s remain.
    LoginThrottle.objects.create(
        key=f"account:{student.pk}",
        user=student,
        attempts=settings.LOGIN_LIMIT_STUDENT + 2,
        last_attempt_at=timezone.now(),
        locked_until=timezone.now() + timedelta(seconds=8),
    )

    page = phone_page
    page.goto(f"{live_asgi_server}/accounts/login/")
    page.fill("input[name=username]", student.nim)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-button")
    page.wait_for_selector("#login-retry")
    assert "Terlalu banyak percobaan masuk yang gagal untuk nama ini" in page.content()
    left = page.locator("#login-retry-left")
    page.wait_for_function("document.getElementById('login-retry-left').textContent.match(/^0:0\\d$/)")
    first = left.text_content()
    assert page.is_disabled("#login-button")
    page.wait_for_function(f"document.getElementById('login-retry-left').textContent !== {first!r}", timeout=5_000)
    page.wait_for_function("!document.getElementById('login-button').disabled", timeout=20_000)
    assert page.locator("#login-retry").is_hidden()
    # The countdown never ends before the server's lock does: this attempt goes through.
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(re.compile(rf"^{re.escape(live_asgi_server)}/$"), timeout=15_000)
