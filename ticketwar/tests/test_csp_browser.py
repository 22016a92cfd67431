"""The pages keep the Content-Security-Policy: no violation in a real Chromium.

Every script and style is a static file; a regression (an inline ``<script>``, a ``style=``
attribute, an ``onclick=``, a websocket origin the policy does not list) shows up here as a
``securitypolicyviolation`` event or a CSP console error.
"""

from __future__ import annotations

import pytest

from tickets.tests.browser import admin_login, camera_chromium, login_with_session, qr_camera_file

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} in ${e.sourceFile}:${e.lineNumber}`);
});
"""


def _watch(page) -> list[str]:
    messages: list[str] = []
    page.add_init_script(RECORD_VIOLATIONS)
    page.on("console", lambda m: messages.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda exc: messages.append(f"page error: {exc}"))
    return messages


def _violations(page, messages: list[str]) -> list[str]:
    page.wait_for_timeout(1_500)  # polling, websockets, charts and workers start after load
    return messages + page.evaluate("window.__csp")


def _policy(response) -> str:
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy, policy  # the check below means nothing without it
    return policy


def test_student_pages_load_without_violations(live_asgi_server, browser, make_event, student):
    from claims.services import claim_submit
    from tools.testing import issue_ticket

    held, open_ = make_event(), make_event()
    ticket = issue_ticket(event_id=held.id, user_id=student.id)
    entry, _created = claim_submit(user=student, event_slug=open_.slug)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    messages = _watch(page)
    try:
        for name, path in {"login": "/accounts/login/", "signup": "/accounts/signup/"}.items():
            _policy(page.goto(live_asgi_server + path))
            assert _violations(page, messages) == [], name
        login_with_session(page, live_asgi_server, student)
        pages = {
            "event": f"/events/{open_.slug}/",
            "waiting": f"/queue/{entry.public_id}/",
            "ticket": f"/tickets/{ticket.id}/",
            "home": "/",
            "draw": f"/events/{open_.slug}/draw/",
        }
        for name, path in pages.items():
            _policy(page.goto(live_asgi_server + path))
            assert _violations(page, messages) == [], name
        # The waiting page's live updates come over the websocket (connect-src allows it): it
        # does not fall back to polling.
        page.goto(live_asgi_server + pages["waiting"])
        assert _violations(page, messages) == []
        assert page.locator("#queue-mode").is_hidden(), page.locator("#queue-mode").inner_text()
    finally:
        context.close()


def test_staff_pages_load_without_violations(live_asgi_server, browser, staff, make_event, student, tmp_path):
    from tickets.codes import qr_payload_for
    from tools.testing import door_open_times, issue_ticket

    ticket = issue_ticket(event_id=make_event(**door_open_times()).id, user_id=student.id)  # its door open now
    video = qr_camera_file(tmp_path / "qr.y4m", qr_payload_for(ticket.id))
    # A Chromium with a camera filming the QR: the scanner loads its decoder worker (blob: URL).
    chromium = camera_chromium(browser, video)
    try:
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"])
        page = context.new_page()
        messages = _watch(page)
        admin_login(page, live_asgi_server, staff.username)
        assert _violations(page, messages) == [], "admin"
        _policy(page.goto(f"{live_asgi_server}/admin/monitoring/dashboard/"))
        page.wait_for_selector('#monitoring[data-charts-drawn="5"]', timeout=15_000)
        assert _violations(page, messages) == [], "dashboard"
        _policy(page.goto(f"{live_asgi_server}/scan/"))
        page.click("#scan-camera-toggle")
        page.wait_for_selector("#scan-result[data-result=admitted]", timeout=20_000)
        assert _violations(page, messages) == [], "scan"
        # The scan page's service worker (offline use) and manifest work under the policy too.
        assert page.evaluate("navigator.serviceWorker.ready.then((r) => Boolean(r.active))")
        assert page.evaluate("navigator.serviceWorker.controller !== null")
        assert page.evaluate("fetch(document.querySelector('link[rel=manifest]').href).then((r) => r.ok)")
    finally:
        chromium.close()
