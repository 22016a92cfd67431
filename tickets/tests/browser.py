"""Browser helpers for Playwright tests, reusable by any app's end-to-end tests."""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

from django.test import Client

DEFAULT_PASSWORD = "s3cret-pass!"  # the conftest ``make_user`` default

# The two screens the pages are tried on: a student's phone and an organiser's laptop.
PHONE = {"viewport": {"width": 390, "height": 844}, "locale": "id-ID"}
DESKTOP = {"viewport": {"width": 1366, "height": 768}, "locale": "id-ID"}


@contextlib.contextmanager
def browser_page(browser, screen: dict, *, javascript: bool = True):
    """A page in a fresh context of ``screen`` (``PHONE``, ``DESKTOP``), scripts on or off; closed after.

    bypass_csp: Playwright's wait_for_function evaluates its expression with eval(), which the
    Content-Security-Policy refuses (the policy itself is tested in ticketwar/tests/test_csp_browser.py).
    """
    context = browser.new_context(**screen, java_script_enabled=javascript, bypass_csp=True)
    try:
        yield context.new_page()
    finally:
        context.close()


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


def camera_chromium(browser, video: str | None = None):
    """A second Chromium from ``browser``'s Playwright, with a fake camera: filming ``video`` (a file
    from ``qr_camera_file`` or ``barcode_camera_file``) with the camera permission granted at once,
    or, without ``video``, Chromium's test picture behind a permission prompt nobody answers."""
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--use-fake-device-for-media-stream"]
    if video:
        args += ["--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={video}"]
    return browser.browser_type.launch(executable_path="/usr/bin/chromium", args=args)


def _y4m(path, luma: bytearray, width: int, height: int) -> str:
    """Write one grey picture (``luma``, one byte per pixel) as a Y4M video Chromium can loop."""
    chroma = b"\x80" * ((width // 2) * (height // 2))
    header = f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode()
    with open(path, "wb") as video:
        video.write(header + b"FRAME\n" + bytes(luma) + chroma + chroma)
    return str(path)


def barcode_camera_file(path, text: str, *, width: int = 640, height: int = 480) -> str:
    """A one-frame Y4M video of ``text`` as a Code 128 barcode (a student card's NIM, or a ticket's
    redeem code as the ticket page prints it), for Chromium's fake camera (see ``qr_camera_file``)."""
    import barcode

    modules = barcode.get("code128", text).build()[0]
    quiet = 10
    scale = (width - 40) // (len(modules) + 2 * quiet)
    left = (width - scale * len(modules)) // 2
    top, bottom = height // 3, 2 * height // 3
    luma = bytearray(b"\xff" * (width * height))
    for index, bit in enumerate(modules):
        if bit == "1":
            for y in range(top, bottom):
                start = y * width + left + index * scale
                luma[start : start + scale] = b"\x00" * scale
    return _y4m(path, luma, width, height)


def qr_camera_file(path, payload: str, *, width: int = 640, height: int = 480) -> str:
    """Write a one-frame Y4M video of ``payload``'s QR code for Chromium's fake camera: in
    ``camera_chromium(browser, path)`` the page's camera sees this picture, looped."""
    from tickets.rendering import qr_code

    # The very picture the ticket page shows (same error level and data mask).
    rows = [list(row) for row in qr_code(payload).matrix_iter(border=4)]
    scale = min(width, height) * 8 // 10 // len(rows)
    size = scale * len(rows)
    left, top = (width - size) // 2, (height - size) // 2
    luma = bytearray(b"\xff" * (width * height))
    for r, row in enumerate(rows):
        for c, dark in enumerate(row):
            if dark:
                for y in range(top + r * scale, top + (r + 1) * scale):
                    start = y * width + left + c * scale
                    luma[start : start + scale] = b"\x00" * scale
    return _y4m(path, luma, width, height)
