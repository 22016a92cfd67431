"""The door on the day, in Chromium: phones that lose the network keep admitting from their door
list (service worker and IndexedDB included), sync when it returns, and agree with each other."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from accounts.roles import DOOR_STAFF
from tickets.models import DoorScan, Ticket
from tickets.rotating import rotating_payload
from tickets.services import ticket_issue_many
from tools.testing import FlakyProxy, bulk_students, door_open_times

from .browser import PHONE, barcode_camera_file, camera_chromium, login_with_session

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def issue(event, count: int) -> list[Ticket]:
    students = bulk_students(count)
    issued = ticket_issue_many(event_id=event.id, user_ids=[s.id for s in students])
    return [issued[s.id] for s in students]


def open_scanner(context, base: str, user, device: str, tickets: int):
    """The scan page on a phone logged in as ``user``, named ``device``, its door list downloaded."""
    page = context.new_page()
    login_with_session(page, base, user)
    page.goto(f"{base}/scan/")
    page.wait_for_selector("#scan-app[data-ready=true]")
    page.fill("#scan-device-name", device)
    page.dispatch_event("#scan-device-name", "change")
    page.wait_for_selector(f"#scan-list-state[data-tickets='{tickets}']", timeout=15_000)
    return page


def scan(page, code: str, expected: str, *, timeout: float = 10_000) -> str:
    """Type (as a keyboard-wedge scanner would) ``code`` + Enter; the answer's state must be ``expected``."""
    before = int(page.locator("#scan-result").get_attribute("data-scan"))
    page.fill("#scan-code", code)
    page.press("#scan-code", "Enter")
    page.wait_for_selector(f"#scan-result[data-scan='{before + 1}']", timeout=timeout)
    result = page.locator("#scan-result")
    assert result.get_attribute("data-result") == expected, result.inner_text()
    return result.inner_text()


def waiting(page) -> int:
    return int(page.locator("#scan-waiting").get_attribute("data-waiting"))


def test_two_offline_phones_admit_the_same_ticket_once_and_a_third_sees_it_all(
    live_asgi_server, browser, make_event, make_user, operator
):
    base = live_asgi_server
    event = make_event(capacity=60, **door_open_times())
    tickets = issue(event, 51)
    shared, rest = tickets[0], tickets[1:]
    phones = {name: make_user(roles=(DOOR_STAFF,)) for name in ("pintu1", "pintu2", "pintu3")}
    # bypass_csp: Playwright's wait_for_function evaluates with eval(); the policy with the service
    # worker and manifest is checked in ticketwar/tests/test_csp_browser.py.
    contexts = {name: browser.new_context(**PHONE, bypass_csp=True) for name in phones}
    try:
        pages = {name: open_scanner(contexts[name], base, user, name, 51) for name, user in phones.items()}
        one, two, three = pages["pintu1"], pages["pintu2"], pages["pintu3"]
        for page in (one, two):
            page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=15_000)

        contexts["pintu1"].set_offline(True)
        contexts["pintu2"].set_offline(True)
        assert "Boleh masuk" in scan(one, shared.redeem_code, "admitted")  # pintu1 first ...
        for ticket in rest[:25]:
            scan(one, ticket.redeem_code, "admitted")
        # The page reopens with no network (service worker) and still holds its scans (IndexedDB).
        one.reload()
        one.wait_for_selector("#scan-app[data-ready=true]")
        assert one.locator("#scan-connection").inner_text() == "Offline"
        assert waiting(one) == 26
        text = scan(one, shared.redeem_code, "already")  # its own admission, remembered
        assert "pintu1" in text
        assert "Boleh masuk" in scan(two, shared.redeem_code, "admitted")  # ... pintu2 a little later
        for ticket in rest[25:]:
            scan(two, ticket.redeem_code, "admitted")
        assert waiting(two) == 26
        assert Ticket.objects.filter(event=event, admitted_at__isnull=False).count() == 0

        # pintu2 gets its connection back first: its scans are the server's first word.
        contexts["pintu2"].set_offline(False)
        two.wait_for_selector("#scan-waiting[data-waiting='0']", timeout=15_000)
        assert Ticket.objects.get(pk=shared.pk).admitted_device == "pintu2"
        contexts["pintu1"].set_offline(False)
        one.wait_for_selector("#scan-waiting[data-waiting='0']", timeout=15_000)

        # Exactly one admission per ticket, the earliest scan's; nothing lost.
        assert Ticket.objects.filter(event=event, admitted_at__isnull=False).count() == 51
        assert DoorScan.objects.filter(event=event).count() == 52
        assert DoorScan.objects.filter(event=event, result="admitted").count() == 51
        shared.refresh_from_db()
        assert shared.admitted_device == "pintu1"
        [conflict] = DoorScan.objects.filter(event=event, conflict=True)
        assert conflict.device_name == "pintu2" and conflict.ticket_id == shared.id

        # The later scan's phone is told, in its next delta.
        two.wait_for_selector("#scan-conflicts:not([hidden])", timeout=10_000)
        line = two.locator("#scan-conflict-list").inner_text()
        assert "pintu1" in line and shared.user.nim in line and "sudah masuk" in line
        assert one.locator("#scan-conflicts").is_hidden()

        # The third phone, online throughout, sees every admission within a few seconds.
        three.wait_for_selector("#scan-figures[data-admitted='51']", timeout=10_000)
        three.fill("#scan-lookup", rest[30].user.nim)
        assert "pintu2" in three.locator("#scan-lookup-results").inner_text()
        assert "sudah masuk" in scan(three, rest[3].redeem_code, "already").lower()

        # The dashboard shows the door, its phones and the conflict.
        board = contexts["pintu3"].new_page()
        login_with_session(board, base, operator)
        board.goto(f"{base}/admin/monitoring/dashboard/")
        door = board.locator(f"#mon-door [data-event='{event.slug}']")
        door.locator(".mon-door-conflicts li").wait_for(timeout=15_000)
        assert "51 / 51" in door.locator("[data-door=admitted]").inner_text()
        assert door.locator("[data-door=conflicts] .mon-value").inner_text() == "1"
        assert shared.user.nim in door.locator(".mon-door-conflicts").inner_text()
        assert "pintu1" in door.locator(".mon-door-phones").inner_text()
    finally:
        for context in contexts.values():
            context.close()


def test_a_hung_network_or_a_503_is_no_connection_never_red(live_asgi_server, browser, make_event, make_user):
    event = make_event(**door_open_times())
    first, second, untouched = issue(event, 3)
    proxy = FlakyProxy(int(live_asgi_server.rsplit(":", 1)[1]))
    context = browser.new_context(**PHONE)
    try:
        page = open_scanner(context, proxy.url, make_user(roles=(DOOR_STAFF,)), "pintu1", 3)
        proxy.mode = "hang"  # the Wi-Fi takes requests and never answers
        started = time.monotonic()
        text = scan(page, first.redeem_code, "admitted", timeout=8_000)
        assert time.monotonic() - started < 7  # the request's 4 s timeout, then the door list
        assert "tidak menjawab dalam 4 detik" in text and "Boleh masuk" in text
        assert page.locator("#scan-connection").inner_text() == "Offline" and waiting(page) == 1
        # Known to be offline now: the next scan does not wait for the network at all.
        started = time.monotonic()
        scan(page, first.redeem_code, "already")
        assert time.monotonic() - started < 2

        proxy.mode = "forward"
        page.wait_for_selector("#scan-waiting[data-waiting='0']", timeout=20_000)
        assert page.locator("#scan-connection").inner_text() == "Online"
        assert Ticket.objects.get(pk=first.pk).admitted_device == "pintu1"

        proxy.mode = "503"  # the server is overloaded: not the ticket's fault
        text = scan(page, second.redeem_code, "admitted")
        assert "503" in text
        assert "rgb(198, 40, 40)" not in page.locator("#scan-result").evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
        proxy.mode = "forward"
        page.wait_for_selector("#scan-waiting[data-waiting='0']", timeout=15_000)
        assert Ticket.objects.get(pk=second.pk).admitted_at is not None
        assert Ticket.objects.get(pk=untouched.pk).admitted_at is None
    finally:
        context.close()
        proxy.close()


def test_offline_a_rotating_qr_and_the_lookup_ask_for_the_student_card(
    live_asgi_server, browser, make_event, make_user
):
    event = make_event(rotating_qr=True, title="Kuliah Umum: Akal Sehat di Ruang Publik", **door_open_times())
    by_qr, by_lookup, by_wedge = issue(event, 3)
    other = make_event(title="Seminar Nasional Kewirausahaan Mahasiswa dan Ekonomi Kreatif 2026", **door_open_times())
    context = browser.new_context(**PHONE)
    try:
        page = open_scanner(context, live_asgi_server, make_user(roles=(DOOR_STAFF,)), "pintu1", 3)
        # The event selector fits a 390-pixel phone, however long the titles.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        box = page.locator("#scan-event").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        context.set_offline(True)
        # No door list of that event on this phone and no network: grey, and the code stays typed.
        page.select_option("#scan-event", other.slug)
        text = scan(page, by_qr.redeem_code, "offline")
        assert "Tidak ada koneksi" in text and page.input_value("#scan-code") == by_qr.redeem_code
        page.fill("#scan-code", "")
        page.select_option("#scan-event", event.slug)
        page.wait_for_selector("#scan-list-state[data-tickets='3']")
        # A rotating code cannot be checked offline: the holder's name and NIM, staff confirm.
        text = scan(page, rotating_payload(by_qr.id, timezone.now()), "identity")
        assert by_qr.user.nim in text
        page.click("#scan-identity-confirm")
        page.wait_for_selector("#scan-result[data-result=admitted]")
        # A dead phone: look the student up by NIM, compare the card, admit.
        page.fill("#scan-lookup", by_lookup.user.nim[:6])
        page.locator(f"#scan-lookup-results li[data-nim='{by_lookup.user.nim}'] button").click()
        page.wait_for_selector("#scan-result[data-result=admitted]")
        # A keyboard-wedge scanner types wherever the focus is, then Enter.
        page.click("#scan-figures-title")
        page.keyboard.type(by_wedge.redeem_code + "\n")
        page.wait_for_selector("#scan-result[data-result=identity]")
        assert waiting(page) == 2
        context.set_offline(False)
        page.wait_for_selector("#scan-waiting[data-waiting='0']", timeout=15_000)
        admitted = dict(
            Ticket.objects.filter(event=event, admitted_at__isnull=False).values_list("id", "admitted_device")
        )
        assert admitted == {by_qr.id: "pintu1", by_lookup.id: "pintu1"}
        assert set(DoorScan.objects.filter(event=event).values_list("method", "offline")) == {
            ("qr", True),
            ("lookup", True),
        }
    finally:
        context.close()


DOOR_DATABASE = """async () => {
  const db = await new Promise((ok, no) => {
    const opening = indexedDB.open("ticketwar-door");
    opening.onsuccess = () => ok(opening.result);
    opening.onerror = () => no(opening.error);
  });
  const all = (name) => new Promise((ok) => {
    const reading = db.transaction(name).objectStore(name).getAll();
    reading.onsuccess = () => ok(reading.result);
  });
  const [tickets, meta, scans] = [await all("tickets"), await all("meta"), await all("scans")];
  db.close();
  return {
    tickets: tickets.length,
    lists: meta.filter((row) => row.key.startsWith("list:")).length,
    waiting: scans.filter((scan) => scan.state === "waiting").length,
  };
}"""


def test_a_log_out_takes_the_door_list_off_the_phone_and_keeps_the_scans_to_send(
    live_asgi_server, browser, make_event, make_user
):
    event = make_event(**door_open_times())
    tickets = issue(event, 3)
    staff = make_user(roles=(DOOR_STAFF,))
    # Without the service worker, so the page's routes see every request.
    context = browser.new_context(**PHONE, service_workers="block")
    try:
        page = open_scanner(context, live_asgi_server, staff, "pintu1", 3)
        # The server stops answering check-ins and syncs: the scan is decided from the list and waits.
        refuse = lambda route: route.fulfill(status=503)  # noqa: E731
        page.route("**/api/checkin/", refuse)
        page.route("**/api/door/*/sync/**", refuse)
        scan(page, tickets[0].redeem_code, "admitted")
        assert waiting(page) == 1
        page.click(".site-nav form button")  # Log out
        page.wait_for_url(f"{live_asgi_server}/")
        # The names and NIMs leave the phone with the login; the admission not yet sent stays.
        deadline = time.monotonic() + 10
        while (kept := page.evaluate(DOOR_DATABASE))["tickets"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert kept == {"tickets": 0, "lists": 0, "waiting": 1}
        assert Ticket.objects.get(pk=tickets[0].pk).admitted_at is None

        # The next door login on this phone sends it.
        page.unroute_all()
        login_with_session(page, live_asgi_server, staff)
        page.goto(f"{live_asgi_server}/scan/")
        page.wait_for_selector("#scan-waiting[data-waiting='0']", timeout=15_000)
        assert Ticket.objects.get(pk=tickets[0].pk).admitted_device == "pintu1"
    finally:
        context.close()


# Every write to the "scans" store fails while ``window.scansFail`` is set (a full or broken storage).
FAILING_SCAN_STORE = """
const put = IDBObjectStore.prototype.put;
IDBObjectStore.prototype.put = function (...args) {
  if (window.scansFail && this.name === "scans") throw new DOMException("full", "QuotaExceededError");
  return put.apply(this, args);
};
"""


def test_an_offline_admission_the_phone_cannot_store_is_not_shown_as_admitted(
    live_asgi_server, browser, make_event, make_user
):
    event = make_event(**door_open_times())
    tickets = issue(event, 2)
    staff = make_user(roles=(DOOR_STAFF,))
    context = browser.new_context(**PHONE, service_workers="block")
    context.add_init_script(FAILING_SCAN_STORE)
    try:
        page = open_scanner(context, live_asgi_server, staff, "pintu1", 2)
        refuse = lambda route: route.fulfill(status=503)  # noqa: E731
        page.route("**/api/checkin/", refuse)
        page.route("**/api/door/*/sync/**", refuse)
        page.evaluate("window.scansFail = true")
        # An admission that would never reach the server (nor another phone) is not an admission.
        assert "tidak bisa menyimpan" in scan(page, tickets[0].redeem_code, "notice")
        assert waiting(page) == 0
        # Storage works again: the same ticket is admitted, once, and waits to be sent.
        page.evaluate("window.scansFail = false")
        scan(page, tickets[0].redeem_code, "admitted")
        assert waiting(page) == 1
        scan(page, tickets[0].redeem_code, "already")
    finally:
        context.close()


def test_the_camera_reads_a_student_card_s_code_128(live_asgi_server, browser, make_event, make_user, tmp_path):
    event = make_event(door_accepts_student_card=True, **door_open_times())
    [ticket] = issue(event, 1)
    video = barcode_camera_file(tmp_path / "ktm.y4m", ticket.user.nim)
    chromium = camera_chromium(browser, video)
    try:
        context = chromium.new_context(**PHONE, permissions=["camera"])
        page = open_scanner(context, live_asgi_server, make_user(roles=(DOOR_STAFF,)), "pintu1", 1)
        assert page.locator("#scan-card-hint").is_visible()
        page.click("#scan-camera-toggle")
        page.wait_for_selector("#scan-result[data-result=admitted]", timeout=20_000)
        assert ticket.user.nim in page.locator("#scan-result").inner_text()
    finally:
        chromium.close()
    scan_row = DoorScan.objects.get(ticket=ticket)
    assert (scan_row.result, scan_row.method, scan_row.device_name) == ("admitted", "card", "pintu1")
