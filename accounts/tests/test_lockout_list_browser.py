"""The admin's list of login locks in a real Chromium, in Indonesian at 1366 px: until when each
account waits, and no "last failed login" for an account with nothing counted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import LoginThrottle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "s3cret-pass!"  # the conftest make_user default


def test_the_lockout_list_says_until_when(live_asgi_server, browser, make_user, screenshot_dir):
    admin = make_user(staff=True)
    admin.is_superuser = True
    admin.save()
    locked, tried_once, unlocked = make_user(), make_user(), make_user()
    now = timezone.now()
    until = now + timedelta(minutes=4)
    LoginThrottle.objects.create(
        key=f"account:{locked.pk}", user=locked, attempts=12, last_attempt_at=now, locked_until=until
    )
    LoginThrottle.objects.create(key=f"account:{tried_once.pk}", user=tried_once, attempts=1, last_attempt_at=now)
    LoginThrottle.objects.create(key=f"account:{unlocked.pk}", user=unlocked, attempts=0)

    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="id-ID")
    page = context.new_page()
    try:
        page.goto(f"{live_asgi_server}/admin/login/?next=/admin/accounts/loginthrottle/")
        page.fill("#id_username", admin.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/accounts/loginthrottle/")
        headers = [text.strip().lower() for text in page.locator("#result_list thead th").all_text_contents()]
        assert "terkunci sampai" in headers and "login gagal terakhir" in headers
        row = page.locator("#result_list tbody tr", has_text=locked.full_name)
        assert timezone.localtime(until).strftime("%H:%M:%S") in row.locator(".field-waits_until").text_content()
        other = page.locator("#result_list tbody tr", has_text=tried_once.full_name)
        assert other.locator(".field-waits_until").text_content().strip() == "—"
        assert other.locator(".field-last_failed").text_content().strip() != "—"
        assert unlocked.full_name not in page.locator("#result_list").text_content()
        # The admin's login left this browser a device cookie (accounts/limits.py).
        assert "tw_device" in {cookie["name"] for cookie in context.cookies()}
        page.screenshot(path=str(screenshot_dir / "admin-login-locks.png"))
    finally:
        context.close()
