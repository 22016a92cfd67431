"""The whole product as people use it, in a real Chromium against the real stack.

A student signs up, verifies the e-mail from the link in the mail the server sent, logs in,
claims a ticket (queue, real Celery worker), sees the QR and the redeem code; a staff member
checks the ticket in by redeem code, a second check-in says "already admitted"; a student is
refused the scan page.
"""

from __future__ import annotations

import re
import time

import pytest

from queueing.models import QueueEntry
from tickets.models import Ticket
from tickets.tests.browser import admin_login
from tools.testing import door_open_times, read_live_mail

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _wait_for_mail(mail_dir, *, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = read_live_mail(mail_dir)
        if messages:
            return messages[-1]
        time.sleep(0.2)
    raise AssertionError("the server sent no verification mail")


def test_sign_up_verify_claim_and_check_in(
    live_asgi_server, live_mail_dir, browser, celery_worker_process, make_event, staff
):
    # Claimed and scanned the same day: the claim window and the door are both open.
    event = make_event(capacity=5, title="Kuliah Umum", speaker="Rocky Gerung", **door_open_times())
    celery_worker_process()
    base = live_asgi_server
    student_context = browser.new_context(viewport={"width": 390, "height": 844}, locale="id-ID")
    page = student_context.new_page()

    # Sign up.
    page.goto(f"{base}/accounts/signup/")
    page.fill("#id_full_name", "Siti Mahasiswa")
    page.fill("#id_nim", "121140001")
    page.fill("#id_email", "siti.121140001@student.itera.ac.id")
    page.fill("#id_password1", "Lautan-biru-2026")
    page.fill("#id_password2", "Lautan-biru-2026")
    page.click("form[action='/accounts/signup/'] button[type=submit]")
    page.wait_for_url(re.compile(r"/accounts/verify/sent/"))

    # Verify from the link in the mail the server really sent.
    mail = _wait_for_mail(live_mail_dir)
    assert "siti.121140001@student.itera.ac.id" in mail
    link = re.search(r"https?://\S+/accounts/verify/\S+/", mail).group(0)
    page.goto(link)
    assert page.locator("body").inner_text()

    # Log out, then log in with the NIM as a student would on the day.
    page.goto(f"{base}/")
    page.click("form[action='/accounts/logout/'] button")
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "121140001")
    page.fill("#id_password", "Lautan-biru-2026")
    page.click("form[action='/accounts/login/'] button[type=submit]")
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url

    # Claim on the event page; the queue page shows the ticket once the worker decides.
    page.goto(f"{base}/events/{event.slug}/")
    page.click("#claim-button")
    page.wait_for_url(re.compile(r"/queue/[0-9a-f-]{36}/"), timeout=15_000)
    try:
        page.wait_for_selector("#queue-ticket:not([hidden])", timeout=30_000)
    except Exception as exc:
        entries = list(QueueEntry.objects.values("status", "reason", "attempts", "last_error"))
        raise AssertionError(
            f"no ticket on the waiting page; queue: {entries}; page: {page.inner_text('main')}"
        ) from exc
    ticket = Ticket.objects.get(event=event, user__nim="121140001")
    assert page.inner_text("#queue-redeem").replace("-", "") == ticket.redeem_code

    # The ticket page: QR code (SVG) and the redeem code.
    page.click("#queue-ticket-link")
    page.wait_for_url(re.compile(rf"/tickets/{ticket.id}/"))
    assert page.locator(".ticket-qr-wrap svg").count() == 1
    assert page.inner_text(".redeem-code").replace("-", "") == ticket.redeem_code

    # The student is refused the scan page.
    response = page.goto(f"{base}/scan/")
    assert response.status == 403

    # Door staff check the ticket in by redeem code; the second time says already admitted.
    staff_context = browser.new_context(viewport={"width": 390, "height": 844}, locale="id-ID")
    door = staff_context.new_page()
    admin_login(door, base, staff.username, next_path="/scan/")
    door.goto(f"{base}/scan/")
    door.select_option("#scan-event", event.slug)
    door.fill("#scan-code", ticket.redeem_code)
    door.click("#scan-submit")
    door.wait_for_selector("#scan-result[data-result=admitted]", timeout=10_000)
    assert "121140001" in door.inner_text("#scan-result")
    door.wait_for_selector("#scan-result[data-result=idle]", timeout=5_000)
    door.fill("#scan-code", ticket.redeem_code)
    door.click("#scan-submit")
    door.wait_for_selector("#scan-result[data-result=already]", timeout=10_000)
    ticket.refresh_from_db()
    assert ticket.admitted_at is not None and ticket.admitted_by_id == staff.id

    staff_context.close()
    student_context.close()
    # The ORM calls above ran while Playwright's event loop was marked running, so Django gave
    # them a connection of their own (per context, not per thread): close it here, in that same
    # context, or it outlives the test and blocks dropping the test database.
    from django.db import connection

    connection.close()
