"""The door scan page and the ticket page in a real Chromium on a phone-sized screen."""

from __future__ import annotations

import pytest

from tickets.models import Ticket

from .browser import admin_login, login_with_session, qr_camera_file

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_staff_checks_a_ticket_in_by_typing_its_redeem_code(
    live_asgi_server, phone_page, staff, ticket, student, screenshot_dir
):
    page = phone_page
    admin_login(page, live_asgi_server, staff.username, next_path="/scan/")
    page.goto(f"{live_asgi_server}/scan/")
    assert page.locator("#scan-event").input_value() == ticket.event.slug
    result = page.locator("#scan-result")

    grouped = f"{ticket.redeem_code[:4]}-{ticket.redeem_code[4:]}".lower()
    page.fill("#scan-code", grouped)
    page.click("#scan-submit")
    page.wait_for_selector("#scan-result[data-result=admitted]", timeout=10_000)
    assert student.nim in result.inner_text() and student.full_name in result.inner_text()
    assert "rgb(10, 125, 50)" in result.evaluate("el => getComputedStyle(el).backgroundColor")
    page.screenshot(path=str(screenshot_dir / "scan.png"))
    assert Ticket.objects.get(pk=ticket.pk).admitted_by_id == staff.id

    # The result clears itself for the next ticket after about two seconds.
    page.wait_for_selector("#scan-result[data-result=idle]", timeout=5_000)

    page.fill("#scan-code", ticket.redeem_code)
    page.click("#scan-submit")
    page.wait_for_selector("#scan-result[data-result=already]", timeout=10_000)
    text = result.inner_text()
    assert staff.full_name in text
    admitted_at = Ticket.objects.get(pk=ticket.pk).admitted_at
    from django.utils import timezone

    assert timezone.localtime(admitted_at).strftime("%H:%M") in text

    page.wait_for_selector("#scan-result[data-result=idle]", timeout=5_000)
    page.fill("#scan-code", "ACDE-FGHJ" if ticket.redeem_code != "ACDEFGHJ" else "ACDE-FGHK")
    page.click("#scan-submit")
    page.wait_for_selector("#scan-result[data-result=invalid]", timeout=10_000)


def test_a_student_is_refused_the_scan_page(live_asgi_server, phone_page, student):
    login_with_session(phone_page, live_asgi_server, student)
    response = phone_page.goto(f"{live_asgi_server}/scan/")
    assert response.status == 403
    assert phone_page.locator(".scan-forbidden").is_visible()
    assert phone_page.locator("#scan-code").count() == 0


def test_ticket_page_screenshot(live_asgi_server, phone_page, student, ticket, screenshot_dir):
    login_with_session(phone_page, live_asgi_server, student)
    phone_page.goto(f"{live_asgi_server}/tickets/{ticket.id}/")
    assert phone_page.locator("svg.ticket-qr").is_visible()
    assert phone_page.locator("svg.ticket-barcode").is_visible()
    phone_page.screenshot(path=str(screenshot_dir / "ticket.png"), full_page=True)


def test_staff_scans_a_ticket_qr_with_the_camera(live_asgi_server, browser, staff, ticket, student, tmp_path):
    """The vendored qr-scanner reads the ticket's QR from a (fake) camera and admits it."""
    from tickets.codes import qr_payload_for

    video = qr_camera_file(tmp_path / "qr.y4m", qr_payload_for(ticket.id))
    # A second Chromium from the session's Playwright, with a camera that films the QR code.
    chromium = browser.browser_type.launch(
        executable_path="/usr/bin/chromium",
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        context = chromium.new_context(viewport={"width": 390, "height": 844}, permissions=["camera"])
        page = context.new_page()
        admin_login(page, live_asgi_server, staff.username)
        page.goto(f"{live_asgi_server}/scan/")
        page.click("#scan-camera-toggle")
        page.wait_for_selector("#scan-result[data-result=admitted]", timeout=20_000)
        assert student.nim in page.locator("#scan-result").inner_text()
        # The camera keeps seeing the same code: it is de-duplicated, not reported again.
        page.wait_for_selector("#scan-result[data-result=idle]", timeout=5_000)
        page.wait_for_timeout(1_500)
        assert page.locator("#scan-result").get_attribute("data-result") == "idle"
    finally:
        chromium.close()
    assert Ticket.objects.get(pk=ticket.pk).admitted_by_id == staff.id
