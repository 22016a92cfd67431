"""Browser helpers for Playwright tests, reusable by any app's end-to-end tests."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.test import Client

DEFAULT_PASSWORD = "s3cret-pass!"  # the conftest ``make_user`` default


def admin_login(page, base_url: str, username: str, password: str = DEFAULT_PASSWORD, *, next_path: str = "") -> None:
    """Log a staff user in through the real Django admin login form."""
    suffix = f"?next={next_path}" if next_path else ""
    page.goto(f"{base_url}/admin/login/{suffix}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_load_state()
    assert "/admin/login/" not in page.url, f"admin login failed for {username}"


def login_with_session(page, base_url: str, user) -> None:
    """Give the page a logged-in session for ``user`` without going through a login form.

    The session is written to the (shared) database and cache by Django's test client, and
    its cookie is handed to the browser context.
    """
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    page.context.add_cookies(
        [{"name": "sessionid", "value": cookie.value, "domain": urlsplit(base_url).hostname, "path": "/"}]
    )
