"""Every student page in a real Chromium: in Indonesian, and the claim without JavaScript.

The language check reads the English source strings from the catalogs and looks for any of
them on screen (``id-ID`` phone): a string left untranslated, or shown without gettext, fails.
"""

from __future__ import annotations

import contextlib
import re
import time
from datetime import timedelta
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.utils import timezone

from events import cache as events_cache
from queueing.processing import queue_process_batch
from tickets.confirmations import confirmation_request_create
from tickets.models import Ticket
from tickets.selectors import format_redeem_code
from tickets.services import ticket_return
from tools.testing import issue_ticket
from waitlist.models import WaitlistEntry
from waitlist.services import waitlist_fill, waitlist_join

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "s3cret-pass!"  # the conftest make_user default
CHROMIUM = {"viewport": {"width": 390, "height": 844}, "locale": "id-ID"}
# Pieces of source strings that read the same in both languages or are names, not sentences.
SAME_IN_BOTH = {"ticketwar"}


def english_sources() -> set[str]:
    """Literal runs (12+ characters, two words or more) of every translated source string."""
    root = Path(settings.BASE_DIR)
    pieces: set[str] = set()
    for path in root.rglob("locale/id/LC_MESSAGES/django.po"):
        if ".venv" in path.parts:
            continue
        for entry in polib.pofile(str(path)).translated_entries():
            for source, translated in ((entry.msgid, entry.msgstr), (entry.msgid_plural, None)):
                for piece in re.split(r"%\(\w+\)[sd]|<[^>]+>|%%", source or ""):
                    piece = piece.strip(" .,:;()!?")
                    if len(piece) >= 12 and " " in piece and piece not in SAME_IN_BOTH and piece != translated:
                        pieces.add(piece)
    return pieces


def assert_no_english(page, sources: set[str]) -> None:
    """No English source string on screen, and no serious or critical axe-core violation."""
    text = page.inner_text("body")
    found = sorted(piece for piece in sources if piece in text)
    assert found == [], f"{page.url} shows English: {found}"
    assert_accessible(page)


AXE = Path(settings.BASE_DIR) / "static" / "vendor" / "axe-core" / "axe.min.js"


def assert_accessible(page) -> None:
    """axe-core, loaded by the test only (the pages never ship it), finds nothing serious."""
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
        }))"""
    )
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{page.url}: {serious}"


def sell_out(event) -> None:
    from django.core.cache import cache

    issue_ticket(event_id=event.id, user_id=make_holder().id)
    cache.clear()  # the 5-second seat count too


def make_holder():
    from django.contrib.auth import get_user_model

    nim = f"{timezone.now().microsecond:06d}999"
    return get_user_model().objects.create(
        username=nim, nim=nim, email=f"{nim}@student.itera.ac.id", email_verified_at=timezone.now()
    )


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit].primary")
    page.wait_for_url(f"{base}/")


@contextlib.contextmanager
def page_without_javascript(browser, base: str, username: str):
    """A phone-sized page with JavaScript off, signed in as ``username``; closed at the end."""
    context = browser.new_context(java_script_enabled=False, **CHROMIUM)
    try:
        page = context.new_page()
        log_in(page, base, username)
        yield page
    finally:
        context.close()


def test_the_claim_works_with_javascript_off(live_asgi_server, browser, make_event, student):
    """Sign in, claim, see the place in the queue, see the ticket: forms and reloads only."""
    base = live_asgi_server
    event = make_event(capacity=3, title="Kuliah Umum Tanpa Skrip")
    with page_without_javascript(browser, base, student.nim) as page:
        page.goto(f"{base}/events/{event.slug}/")
        assert page.get_attribute("#claim-form", "method") == "post"
        page.click("#claim-button")
        page.wait_for_url(re.compile(r".*/queue/[0-9a-f-]+/$"))
        assert page.inner_text("#queue-status") == "Menunggu di antrean"
        assert page.inner_text("#queue-position") == "1"
        assert page.is_visible("#waitlist-save")  # the checkbox's own button, without scripts
        queue_url = page.url
        # The worker's decision (the same service the Celery task calls).
        assert queue_process_batch().taken == 1
        # The page reloads itself (<noscript> refresh) and shows the outcome and the ticket.
        page.wait_for_selector("#queue-ticket:not([hidden])", timeout=15_000)
        assert page.url == queue_url
        assert page.inner_text("#queue-status") == "Anda dapat tiket!"
        ticket = Ticket.objects.get(event=event, user=student)
        page.click("#queue-ticket-link")
        page.wait_for_url(f"{base}/tickets/{ticket.id}/")
        assert page.inner_text(".ticket-redeem .redeem-code") == format_redeem_code(ticket.redeem_code)
        # Back on the event page: the ticket, not the claim button.
        page.goto(f"{base}/events/{event.slug}/")
        assert page.locator("#claim-button").count() == 0
        assert page.get_attribute("#have-ticket a", "href") == f"/tickets/{ticket.id}/"


def test_a_refused_claim_without_javascript_shows_the_reason(live_asgi_server, browser, make_event, student):
    event = make_event(capacity=1, title="Kuliah Umum Penuh")
    with page_without_javascript(browser, live_asgi_server, student.nim) as page:
        page.goto(f"{live_asgi_server}/events/{event.slug}/")
        sell_out(event)  # the last seat goes while the page is open
        # The server's own copy of the seat count lives LOCAL_TTL (events/cache.py); after it the
        # claim is refused at once (before it, the worker refuses it from the queue instead).
        time.sleep(events_cache.LOCAL_TTL + 0.5)
        page.click("#claim-button")
        page.wait_for_selector("#claim-message:not([hidden])")
        assert page.inner_text("#claim-message") == "Tiket untuk acara ini sudah habis diklaim."


def test_every_student_page_is_in_indonesian(live_asgi_server, phone_page, make_event, make_user, student):
    base, page = live_asgi_server, phone_page
    sources = english_sources()
    assert "Claim my ticket" in sources and "All tickets for this event have been claimed" in sources
    open_event = make_event(capacity=5, title="Kuliah Umum Terbuka")
    sold_out = make_event(capacity=1, title="Kuliah Umum Habis")
    offered_event = make_event(capacity=1, title="Kuliah Umum Tawaran")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    for path in ("/accounts/login/", "/accounts/signup/", "/", f"/events/{open_event.slug}/"):
        page.goto(f"{base}{path}")
        assert_no_english(page, sources)
    page.goto(f"{base}/accounts/signup/")
    page.click("form button[type=submit]")  # empty: the browser's own checks, or the form's errors
    assert_no_english(page, sources)

    log_in(page, base, student.nim)
    # The claim refusal (sold out) on the event page.
    page.goto(f"{base}/events/{sold_out.slug}/")
    sell_out(sold_out)
    time.sleep(events_cache.LOCAL_TTL + 0.5)  # the server's own copy of the seat count expires
    page.click("#claim-button")
    page.wait_for_function("document.getElementById('claim-message').textContent.indexOf('habis') >= 0")
    assert_no_english(page, sources)
    # The waiting page, before and after the decision.
    page.goto(f"{base}/events/{open_event.slug}/")
    page.click("#claim-button")
    page.wait_for_url(re.compile(r".*/queue/[0-9a-f-]+/$"))
    page.wait_for_selector("#waitlist-save", state="hidden")  # the checkbox saves itself here
    assert_no_english(page, sources)
    queue_process_batch()
    page.wait_for_selector("#queue-ticket:not([hidden])", timeout=15_000)
    assert_no_english(page, sources)
    # The ticket, the list of tickets, the give-back page and the attendance confirmation.
    ticket = Ticket.objects.get(event=open_event, user=student)
    for path in (f"/tickets/{ticket.id}/", "/tickets/", f"/tickets/{ticket.id}/return/", f"/events/{open_event.slug}/"):
        page.goto(f"{base}{path}")
        assert_no_english(page, sources)
    confirmation_request_create(event_id=open_event.id, deadline=timezone.now() + timedelta(minutes=30))
    page.goto(f"{base}/tickets/{ticket.id}/confirm/")
    assert page.is_visible("#confirm-button")
    assert_no_english(page, sources)
    # A waiting-list offer: a seat given back, the student next on the list.
    holder = make_user()
    given_back = issue_ticket(event_id=offered_event.id, user_id=holder.id)
    waitlist_join(students=[(offered_event.id, student.id, None)])
    ticket_return(ticket_id=given_back.id, user_id=holder.id)
    waitlist_fill(event_id=offered_event.id)
    offer = WaitlistEntry.objects.get(event=offered_event, user=student)
    page.goto(f"{base}/waitlist/{offer.public_id}/")
    assert page.is_visible("#offer-claim")
    assert_no_english(page, sources)
    page.goto(f"{base}/events/{offered_event.slug}/draw/")
    assert_no_english(page, sources)
    assert errors == []
