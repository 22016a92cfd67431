"""Never more tickets than seats: give-backs, fills, offer claims and expiry sweeps racing on
real connections (one per thread) against the real database."""

from __future__ import annotations

import contextlib
import random
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tickets.exceptions import TicketError
from tickets.models import Ticket
from tickets.services import ticket_return
from waitlist.exceptions import WaitlistError
from waitlist.models import WaitlistEntry
from waitlist.services import waitlist_claim, waitlist_expire_offers, waitlist_fill

pytestmark = pytest.mark.django_db(transaction=True)


def _run_all(jobs, *, threads: int = 8) -> list[BaseException]:
    errors: list[BaseException] = []
    lock = threading.Lock()
    pending = list(jobs)
    barrier = threading.Barrier(threads)

    def worker():
        try:
            barrier.wait()
            while True:
                with lock:
                    if not pending:
                        return
                    job = pending.pop()
                try:
                    job()
                except (TicketError, WaitlistError):
                    pass  # a refusal is a fine answer; only unexpected errors count
                except BaseException as exc:
                    errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return errors


def test_give_backs_offers_claims_and_expiry_never_oversell(sold_out):
    event, _holders, _users = sold_out(capacity=10, waiting=30)
    tickets = list(Ticket.objects.filter(event=event).values_list("id", "user_id"))
    rng = random.Random(8)
    soon = timezone.now() + timedelta(minutes=30)

    def give_back(ticket_id, user_id):
        return lambda: ticket_return(ticket_id=ticket_id, user_id=user_id)

    def fill():
        waitlist_fill(event_id=event.id)

    def claim_any():
        offers = list(WaitlistEntry.objects.filter(event=event, status="offered").values_list("public_id", "user_id"))
        for public_id, user_id in offers:
            with contextlib.suppress(TicketError, WaitlistError):
                waitlist_claim(public_id=public_id, user_id=user_id)

    def expire():
        waitlist_expire_offers(now=soon)

    for _round in range(3):
        jobs = [give_back(t, u) for t, u in tickets] + [fill] * 12 + [claim_any] * 12 + [expire] * 4
        rng.shuffle(jobs)
        assert _run_all(jobs) == []
        event.refresh_from_db()
        active = Ticket.objects.filter(event=event, status="active").count()
        offered = WaitlistEntry.objects.filter(event=event, status="offered").count()
        assert active + offered + event.remaining == event.capacity
        assert active <= event.capacity
        tickets = list(Ticket.objects.filter(event=event, status="active").values_list("id", "user_id"))

    # Every claimed offer holds exactly one ticket, and no student holds two.
    claimed = WaitlistEntry.objects.filter(event=event, status="claimed")
    assert claimed.count() > 0
    assert claimed.count() == Ticket.objects.filter(waitlist_entry__in=claimed).count()
    per_user = Ticket.objects.filter(event=event, status="active").values_list("user_id", flat=True)
    assert len(list(per_user)) == len(set(per_user))


def test_one_offer_claimed_by_many_clicks_makes_one_ticket(sold_out):
    event, holders, users = sold_out(capacity=1, waiting=1)
    ticket_return(ticket_id=Ticket.objects.get(user=holders[0]).id, user_id=holders[0].id)
    waitlist_fill(event_id=event.id)
    offer = WaitlistEntry.objects.get(user=users[0])
    later = timezone.now() + timedelta(minutes=14, seconds=59)
    jobs = [lambda: waitlist_claim(public_id=offer.public_id, user_id=users[0].id, now=later)] * 10
    jobs += [lambda: waitlist_expire_offers(now=later)] * 4
    assert _run_all(jobs, threads=6) == []
    assert Ticket.objects.filter(event=event, user=users[0], status="active").count() == 1
    event.refresh_from_db()
    assert event.remaining == 0
