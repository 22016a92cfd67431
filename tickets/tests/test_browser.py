"""The door scan page and the ticket page in a real Chromium on a phone-sized screen."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tickets.models import Ticket

from .browser import DEFAULT_PASSWORD, admin_login, camera_chromium, login_with_session, qr_camera_file

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
    # Which door phone let the holder in: this one, named after its login until staff rename it.
    assert f"lewat {staff.username}" in text
    admitted_at = Ticket.objects.get(pk=ticket.pk).admitted_at
    from django.utils import timezone

    # Indonesian writes the time with a dot ("pukul 18.52"), in WIB.
    assert f"pukul {timezone.localtime(admitted_at).strftime('%H.%M')}" in text

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
    chromium = camera_chromium(browser, video)  # a camera that films the QR code
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


def test_door_staff_log_in_and_see_each_identical_answer_as_a_new_scan(
    live_asgi_server, phone_page, door_staff, ticket, make_event
):
    """A door volunteer (no admin access) logs in on the login page, lands on /scan/ with the
    event on now preselected, and two equal answers in a row are numbered apart."""
    from django.utils import timezone

    now = timezone.now()
    make_event(title="Earlier today", starts_at=now - timedelta(hours=5), claim_opens_at=now - timedelta(days=2),
               claim_closes_at=now - timedelta(days=1))  # fmt: skip
    page = phone_page
    page.goto(f"{live_asgi_server}/scan/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", door_staff.username)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click(".auth-card button[type=submit]")
    page.wait_for_url(f"{live_asgi_server}/scan/")
    assert page.locator("#scan-event").input_value() == ticket.event.slug
    assert page.locator("#scan-event option[value='']").count() == 0  # no "any event"
    assert page.locator("#scan-door").get_attribute("data-open") == "true"

    result = page.locator("#scan-result")
    unknown = "ACDE-FGHJ" if ticket.redeem_code != "ACDEFGHJ" else "ACDE-FGHK"
    page.fill("#scan-code", unknown)
    page.click("#scan-submit")
    page.wait_for_selector("#scan-result[data-result=invalid][data-scan='1']", timeout=10_000)
    first_meta = page.locator("#scan-result-meta").inner_text()
    # The same answer at once, before the first has cleared: still visibly a second scan.
    page.fill("#scan-code", unknown)
    page.click("#scan-submit")
    page.wait_for_selector("#scan-result[data-result=invalid][data-scan='2']", timeout=10_000)
    assert "#2" in page.locator("#scan-result-meta").inner_text() and "#1" in first_meta
    assert "scan-flash" in (result.get_attribute("class") or "")

    page.fill("#scan-code", ticket.redeem_code)
    page.click("#scan-submit")
    page.wait_for_selector("#scan-result[data-result=admitted][data-scan='3']", timeout=10_000)
    assert Ticket.objects.get(pk=ticket.pk).admitted_by_id == door_staff.id


def test_the_door_is_closed_for_an_event_of_another_day(live_asgi_server, phone_page, staff, student, make_event):
    from django.utils import timezone

    from tools.testing import issue_ticket

    now = timezone.now()
    later = make_event(title="Next week", starts_at=now + timedelta(days=7), claim_closes_at=now + timedelta(days=6))
    ticket = issue_ticket(event_id=later.id, user_id=student.id)
    login_with_session(phone_page, live_asgi_server, staff)
    phone_page.goto(f"{live_asgi_server}/scan/")
    assert phone_page.locator("#scan-event").input_value() == later.slug  # the next door to open
    assert phone_page.locator("#scan-door").get_attribute("data-open") == "false"
    phone_page.fill("#scan-code", ticket.redeem_code)
    phone_page.click("#scan-submit")
    phone_page.wait_for_selector("#scan-result[data-result=wrong]", timeout=10_000)
    assert "Pintu belum dibuka" in phone_page.locator("#scan-result").inner_text()
    assert Ticket.objects.get(pk=ticket.pk).admitted_at is None


@pytest.mark.parametrize(
    ("init_script", "reason"),
    [
        # A page served over plain HTTP from another host: no secure context.
        ("Object.defineProperty(window, 'isSecureContext', {value: false});", "insecure"),
        # An old or locked-down browser without the camera API.
        ("Object.defineProperty(navigator, 'mediaDevices', {value: undefined});", "unsupported"),
        # This Chromium has no camera at all.
        ("", "none"),
    ],
)
def test_the_camera_note_names_the_real_reason(live_asgi_server, browser, staff, door_event, init_script, reason):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    try:
        page = context.new_page()
        if init_script:
            page.add_init_script(init_script)
        login_with_session(page, live_asgi_server, staff)
        page.goto(f"{live_asgi_server}/scan/", wait_until="networkidle")
        page.click("#scan-camera-toggle")
        page.wait_for_selector(f"#scan-camera-note[data-reason={reason}]", timeout=15_000)
        note = page.locator("#scan-camera-note").inner_text()
        assert {"insecure": "HTTPS", "unsupported": "browser", "none": "No camera"}[reason] in note
    finally:
        context.close()


def test_a_refused_camera_permission_says_so(live_asgi_server, browser, staff, door_event):
    # A camera exists (fake device) but the permission prompt is dismissed: NotAllowedError.
    chromium = camera_chromium(browser)
    try:
        page = chromium.new_context(viewport={"width": 390, "height": 844}).new_page()
        login_with_session(page, live_asgi_server, staff)
        page.goto(f"{live_asgi_server}/scan/", wait_until="networkidle")
        page.click("#scan-camera-toggle")
        page.wait_for_selector("#scan-camera-note[data-reason]", timeout=15_000)
        assert page.locator("#scan-camera-note").get_attribute("data-reason") == "denied", page.locator(
            "#scan-camera-note"
        ).inner_text()
    finally:
        chromium.close()


def test_a_rotating_events_redeem_code_asks_for_the_student_id_then_admits(
    live_asgi_server, phone_page, door_staff, student, make_event, make_ticket
):
    from tools.testing import door_open_times

    ticket = make_ticket(user=student, event=make_event(rotating_qr=True, **door_open_times()))
    login_with_session(phone_page, live_asgi_server, door_staff)
    phone_page.goto(f"{live_asgi_server}/scan/")
    phone_page.select_option("#scan-event", ticket.event.slug)
    phone_page.fill("#scan-code", ticket.redeem_code)
    phone_page.click("#scan-submit")
    phone_page.wait_for_selector("#scan-result[data-result=identity]", timeout=10_000)
    assert student.nim in phone_page.locator("#scan-result").inner_text()
    phone_page.wait_for_timeout(2_500)  # it waits for the decision instead of clearing itself
    assert phone_page.locator("#scan-result").get_attribute("data-result") == "identity"
    assert Ticket.objects.get(pk=ticket.pk).admitted_at is None
    phone_page.click("#scan-identity-confirm")
    phone_page.wait_for_selector("#scan-result[data-result=admitted]", timeout=10_000)
    assert phone_page.locator("#scan-identity-confirm").is_hidden()
    assert Ticket.objects.get(pk=ticket.pk).admitted_by_id == door_staff.id
