"""One walk in Chromium: the pre-queue, the freeze, the organiser entering the public random
value in the admin, the reveal, every step checked by the script, and a freed seat reaching the
next student on the waiting list, who claims it in the browser.

Real uvicorn (HTTP + websockets), a real Celery worker and beat, PostgreSQL and Redis.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from events.models import Event
from queueing.draw import pseudonym_for
from queueing.models import QueueEntry
from tickets.models import Ticket
from tickets.tests.browser import login_with_session
from tools.testing import ROOT, bulk_students, read_live_mail, wait_until
from waitlist.models import WaitlistEntry

pytestmark = pytest.mark.browser

OPENS_IN_SECONDS = 12
BEACON_AFTER_OPENING_SECONDS = 4


def test_prequeue_reveal_and_a_freed_seat_claimed_in_the_browser(
    live_asgi_server,
    browser,
    celery_worker_process,
    celery_beat_process,
    live_mail_dir,
    screenshot_dir,
    tmp_path,
    make_user,
):
    base = live_asgi_server
    now = timezone.now()
    opens = now + timedelta(seconds=OPENS_IN_SECONDS)
    event = Event.objects.create(
        slug="kuliah-fair",
        title="Kuliah Umum",
        speaker="Speaker",
        venue="Aula",
        claim_opens_at=opens,
        claim_closes_at=now + timedelta(days=1),
        starts_at=now + timedelta(days=2),
        capacity=2,
        remaining=2,
        status=Event.Status.PUBLISHED,
        opening_mode=Event.OpeningMode.SHUFFLE_AT_OPEN,
        draw_beacon_source="drand quicknet round 12345678, its randomness field",
        draw_beacon_due_at=(opens + timedelta(seconds=BEACON_AFTER_OPENING_SECONDS)).replace(microsecond=0),
    )
    students = bulk_students(3)
    pages = {}
    for user in students:
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="id-ID")
        pages[user.id] = context.new_page()
        login_with_session(pages[user.id], base, user)

    # Before opening: the commitment is on the event page and the claim button already works.
    first = pages[students[0].id]
    first.goto(f"{base}/events/{event.slug}/")
    assert first.inner_text("#draw-commitment") == event.draw_commitment
    assert event.draw_seed not in first.content()
    first.click("#claim-button")
    first.wait_for_url("**/queue/*/")
    first.wait_for_selector("#queue-status")
    assert "pra-antrean" in first.inner_text("#queue-status")
    assert first.inner_text("#queue-position") == "–"
    first.screenshot(path=str(screenshot_dir / "fair-prequeue.png"))
    for user in students[1:]:
        pages[user.id].goto(f"{base}/events/{event.slug}/")
        pages[user.id].click("#claim-button")
        pages[user.id].wait_for_url("**/queue/*/")
    assert QueueEntry.objects.filter(event=event, prequeue=True).count() == 3
    assert timezone.now() < event.claim_opens_at, "the claims must all be made before opening"

    # Opening: the beat's tick wakes a worker, which freezes the pre-queue.
    celery_worker_process()
    celery_beat_process()
    wait_until(
        lambda: Event.objects.filter(pk=event.pk, draw_frozen_at__isnull=False).exists(),
        timeout=OPENS_IN_SECONDS + 30,
        message="the pre-queue frozen",
    )
    mine = pseudonym_for(QueueEntry.objects.get(event=event, user=students[0]).public_id)
    first.goto(f"{base}/events/{event.slug}/draw/")
    assert first.inner_text("#draw-mine") == mine and first.is_visible("#draw-mine-listed")
    assert first.inner_text("#draw-seed") != event.draw_seed  # still secret
    first.screenshot(path=str(screenshot_dir / "fair-frozen.png"), full_page=True)
    first.goto(f"{base}/api/events/{event.slug}/draw/")
    (tmp_path / "saved.json").write_text(first.inner_text("body"))  # what a careful student keeps
    assert QueueEntry.objects.filter(event=event, prequeue=True, status="pending").count() == 3

    # The organiser enters the public random value in the admin once it is published.
    organiser = make_user(staff=True)
    organiser.is_superuser = True
    organiser.save()
    admin_page = browser.new_context(locale="id-ID").new_page()
    login_with_session(admin_page, base, organiser)
    admin_page.goto(f"{base}/admin/events/event/{event.pk}/change/")
    admin_page.click("#draw-beacon-link")
    admin_page.wait_for_selector("#draw-beacon-form")
    wait_until(lambda: timezone.now() >= event.draw_beacon_due_at, timeout=BEACON_AFTER_OPENING_SECONDS + 5)
    admin_page.fill("#id_value", "0f3c9b5d2e8a41f7")
    admin_page.screenshot(path=str(screenshot_dir / "fair-beacon-admin.png"), full_page=True)
    admin_page.click("#draw-beacon-form input[type=submit]")
    admin_page.wait_for_url(f"**/admin/events/event/{event.pk}/change/")

    # The next queue run makes the draw and decides the claims.
    wait_until(
        lambda: QueueEntry.objects.filter(event=event, status__in=["completed", "failed"]).count() == 3,
        timeout=40,
        message="the three claims decided",
    )
    event.refresh_from_db()
    assert event.draw_revealed_at is not None and event.draw_beacon_entered_by_id == organiser.pk

    # The reveal: seed and order on the draw page; the script checks every step.
    first.goto(f"{base}/events/{event.slug}/draw/")
    assert first.inner_text("#draw-seed") == event.draw_seed
    assert first.inner_text("#draw-beacon") == "0f3c9b5d2e8a41f7"
    shown = first.eval_on_selector_all("#draw-list li", "items => items.map(li => li.dataset.pseudonym)")
    assert first.inner_text("#draw-mine") == mine and mine in shown
    first.screenshot(path=str(screenshot_dir / "fair-draw.png"), full_page=True)
    first.goto(f"{base}/api/events/{event.slug}/draw/")
    published = json.loads(first.inner_text("body"))
    (tmp_path / "draw.json").write_text(json.dumps(published))
    verified = subprocess.run(
        [
            sys.executable, str(ROOT / "tools" / "verify_draw.py"), str(tmp_path / "draw.json"),
            "--saved", str(tmp_path / "saved.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert [line.split()[1] for line in verified.stdout.splitlines()] == shown
    # The seats went in drawn order: the first two of the draw got them.
    by_pseudonym = {pseudonym_for(e.public_id): e for e in QueueEntry.objects.filter(event=event)}
    assert [by_pseudonym[p].status for p in shown] == ["completed", "completed", "failed"]

    # The third student is on the waiting list and keeps the waiting page open.
    loser = by_pseudonym[shown[2]]
    waiting_page = pages[loser.user_id]
    waiting_page.goto(f"{base}/queue/{loser.public_id}/")
    waiting_page.wait_for_selector("#waitlist-place:not([hidden])")
    assert waiting_page.inner_text("#waitlist-position") == "1"
    assert WaitlistEntry.objects.get(event=event, user_id=loser.user_id).status == "waiting"

    # A ticket holder gives theirs back in the browser ...
    holder = by_pseudonym[shown[0]]
    ticket = Ticket.objects.get(event=event, user_id=holder.user_id, status="active")
    giver = pages[holder.user_id]
    giver.goto(f"{base}/tickets/{ticket.id}/return/")
    giver.click("form.return-form button[type=submit]")
    giver.wait_for_url(f"**/tickets/{ticket.id}/")

    # ... the seat is offered to the next student, live on the page they have open, and by mail.
    offered_at = time.monotonic()
    waiting_page.wait_for_selector("#waitlist-offer:not([hidden])", timeout=20000)
    assert time.monotonic() - offered_at < 20
    offer = WaitlistEntry.objects.get(event=event, user_id=loser.user_id)
    assert offer.status == "offered"
    loser_email = loser.user.email
    wait_until(lambda: any(loser_email in m for m in read_live_mail(live_mail_dir)), timeout=10, message="offer mail")
    waiting_page.screenshot(path=str(screenshot_dir / "waitlist-offer.png"))
    waiting_page.click("#waitlist-offer-link")
    waiting_page.wait_for_selector("#offer-claim")
    waiting_page.click("#offer-claim")
    waiting_page.wait_for_url("**/tickets/*/")
    new_ticket = Ticket.objects.get(event=event, user_id=loser.user_id, status="active")
    assert str(new_ticket.id) in waiting_page.url
    assert new_ticket.redeem_code.replace("-", "") in waiting_page.content().replace("-", "").replace(" ", "")

    # Never more tickets than seats.
    event.refresh_from_db()
    assert Ticket.objects.filter(event=event, status="active").count() == event.capacity
    assert event.remaining == 0
    assert Client().get(f"/api/events/{event.slug}/").json()["draw_revealed"] is True
