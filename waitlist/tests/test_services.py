"""Second chances: joining the list, offers, claims, expiry, confirmations; seats always add up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from claims.services import claims_decide_batch
from events.models import Event
from queueing.models import QueueEntry
from tickets.confirmations import confirmation_release_due, confirmation_request_create, ticket_confirm
from tickets.exceptions import AlreadyHasTicket, ConfirmationNotOpen, DeadlineInPast
from tickets.models import Ticket
from tickets.services import ticket_return
from tools.testing import bulk_students, issue_ticket
from waitlist.exceptions import NoOffer, OfferExpired, OfferNotFound
from waitlist.models import WaitlistEntry
from waitlist.services import (
    waitlist_claim,
    waitlist_expire_offers,
    waitlist_fill,
    waitlist_fill_all,
    waitlist_set_joined,
)


def seats_add_up(event: Event) -> None:
    event.refresh_from_db()
    active = Ticket.objects.filter(event=event, status="active").count()
    offered = WaitlistEntry.objects.filter(event=event, status="offered").count()
    assert active + offered + event.remaining == event.capacity
    assert active <= event.capacity


def statuses(event: Event) -> list[str]:
    return list(WaitlistEntry.objects.filter(event=event).order_by("id").values_list("status", flat=True))


def test_sold_out_claims_join_the_list_in_queue_order_except_opt_outs(make_event, enqueue):
    event = make_event(capacity=2)
    users = bulk_students(6)
    waitlist_set_joined(event_id=event.id, user_id=users[4].id, joined=False)  # the checkbox
    entries = [enqueue(u, event) for u in users]
    while claims_decide_batch().taken:
        pass
    assert [QueueEntry.objects.get(pk=e.pk).reason for e in entries] == ["", ""] + ["sold_out"] * 4
    listed = list(WaitlistEntry.objects.filter(event=event).order_by("id"))
    waiting = [w for w in listed if w.status == "waiting"]
    assert [w.user_id for w in waiting] == [users[2].id, users[3].id, users[5].id]
    assert waiting[0].queue_public_id == entries[2].public_id
    assert WaitlistEntry.objects.get(user=users[4]).status == "left"


def test_claim_refused_as_sold_out_at_once_says_where_on_the_list(make_event):
    event = make_event(capacity=1)
    first, second = bulk_students(2)
    issue_ticket(event_id=event.id, user_id=first.id)
    client = Client()
    client.force_login(second)
    response = client.post(f"/api/events/{event.slug}/claim/")
    assert response.status_code == 410
    body = response.json()
    assert body["error"] and body["waitlist"]["status"] == "waiting" and body["waitlist"]["position"] == 1


def test_opting_back_in_goes_to_the_end(make_event):
    event = make_event(capacity=0)
    a, b = bulk_students(2)
    waitlist_set_joined(event_id=event.id, user_id=a.id, joined=True)
    waitlist_set_joined(event_id=event.id, user_id=b.id, joined=True)
    waitlist_set_joined(event_id=event.id, user_id=a.id, joined=False)
    waitlist_set_joined(event_id=event.id, user_id=a.id, joined=True)
    order = list(
        WaitlistEntry.objects.filter(event=event, status="waiting").order_by("id").values_list("user_id", flat=True)
    )
    assert order == [b.id, a.id]


def test_a_returned_ticket_is_offered_to_the_next_student(sold_out, django_capture_on_commit_callbacks, settings):
    settings.WAITLIST_OFFER_MINUTES = 15
    event, holders, users = sold_out(capacity=2, waiting=3)
    ticket = Ticket.objects.get(event=event, user=holders[0])
    with django_capture_on_commit_callbacks(execute=True):
        ticket_return(ticket_id=ticket.id, user_id=holders[0].id)
    assert statuses(event) == ["offered", "waiting", "waiting"]
    offer = WaitlistEntry.objects.get(user=users[0])
    assert timedelta(minutes=14) < offer.offer_expires_at - timezone.now() <= timedelta(minutes=15)
    seats_add_up(event)
    assert event.remaining == 0  # the freed seat is held for the offer, not free for anyone
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [users[0].email]
    assert f"/waitlist/{offer.public_id}/" in mail.outbox[0].body


def test_claiming_the_offer_turns_the_held_seat_into_a_ticket(sold_out):
    event, holders, users = sold_out(capacity=1, waiting=2)
    ticket_return(ticket_id=Ticket.objects.get(user=holders[0]).id, user_id=holders[0].id)
    assert waitlist_fill(event_id=event.id) == 1
    offer = WaitlistEntry.objects.get(user=users[0])
    with pytest.raises(OfferNotFound):
        waitlist_claim(public_id=offer.public_id, user_id=users[1].id)  # someone else's offer
    with pytest.raises(NoOffer):
        waitlist_claim(public_id=WaitlistEntry.objects.get(user=users[1]).public_id, user_id=users[1].id)
    ticket = waitlist_claim(public_id=offer.public_id, user_id=users[0].id)
    assert ticket.user_id == users[0].id and ticket.status == "active"
    assert waitlist_claim(public_id=offer.public_id, user_id=users[0].id) == ticket  # a double click
    offer.refresh_from_db()
    assert offer.status == "claimed" and offer.ticket_id == ticket.id
    seats_add_up(event)
    assert event.remaining == 0


def test_an_unclaimed_offer_passes_to_the_next_then_back_to_the_pool(sold_out):
    event, holders, users = sold_out(capacity=1, waiting=2)
    ticket_return(ticket_id=Ticket.objects.get(user=holders[0]).id, user_id=holders[0].id)
    waitlist_fill(event_id=event.id)
    later = timezone.now() + timedelta(minutes=16)
    assert waitlist_expire_offers(now=later) == 1
    assert statuses(event) == ["expired", "offered"]
    with pytest.raises(OfferExpired):
        waitlist_claim(public_id=WaitlistEntry.objects.get(user=users[0]).public_id, user_id=users[0].id)
    seats_add_up(event)
    assert waitlist_expire_offers(now=later + timedelta(minutes=16)) == 1
    assert statuses(event) == ["expired", "expired"]
    seats_add_up(event)
    assert event.remaining == 1  # nobody left on the list: the seat is free again


def test_an_offer_past_its_window_cannot_be_claimed_even_before_the_sweep(sold_out):
    event, holders, users = sold_out(capacity=1, waiting=1)
    ticket_return(ticket_id=Ticket.objects.get(user=holders[0]).id, user_id=holders[0].id)
    waitlist_fill(event_id=event.id)
    offer = WaitlistEntry.objects.get(user=users[0])
    with pytest.raises(OfferExpired):
        waitlist_claim(public_id=offer.public_id, user_id=users[0].id, now=timezone.now() + timedelta(minutes=20))


def test_student_who_got_a_ticket_elsewhere_cannot_claim_twice(sold_out):
    event, holders, users = sold_out(capacity=2, waiting=1)
    ticket_return(ticket_id=Ticket.objects.get(user=holders[0]).id, user_id=holders[0].id)
    waitlist_fill(event_id=event.id)
    Event.objects.filter(pk=event.pk).update(remaining=1, capacity=3)  # the organiser added a seat
    issue_ticket(event_id=event.id, user_id=users[0].id)
    with pytest.raises(AlreadyHasTicket):
        waitlist_claim(public_id=WaitlistEntry.objects.get(user=users[0]).public_id, user_id=users[0].id)


def test_no_offers_once_the_event_has_started(sold_out):
    event, holders, _users = sold_out(capacity=1, waiting=1)
    ticket_return(ticket_id=Ticket.objects.get(user=holders[0]).id, user_id=holders[0].id)
    assert waitlist_fill(event_id=event.id, now=event.starts_at + timedelta(minutes=1)) == 0
    assert statuses(event) == ["waiting"]
    assert waitlist_fill_all() == 1


def test_confirmation_releases_unconfirmed_seats_to_the_list(sold_out, django_capture_on_commit_callbacks):
    event, holders, _users = sold_out(capacity=3, waiting=2)
    with pytest.raises(DeadlineInPast):
        confirmation_request_create(event_id=event.id, deadline=timezone.now() - timedelta(minutes=1))
    deadline = timezone.now() + timedelta(hours=2)
    request = confirmation_request_create(event_id=event.id, deadline=deadline)
    assert request.confirmations.count() == 3
    tickets = {t.user_id: t for t in Ticket.objects.filter(event=event)}
    assert ticket_confirm(ticket_id=tickets[holders[0].id].id, user_id=holders[0].id) == 1
    with pytest.raises(ConfirmationNotOpen):
        ticket_confirm(ticket_id=tickets[holders[1].id].id, user_id=holders[0].id)  # not theirs
    ticket_return(ticket_id=tickets[holders[2].id].id, user_id=holders[2].id)  # gave it back already
    waitlist_fill(event_id=event.id)
    assert confirmation_release_due(now=deadline - timedelta(seconds=1)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert confirmation_release_due(now=deadline + timedelta(seconds=1)) == 1
    assert confirmation_release_due(now=deadline + timedelta(seconds=2)) == 0  # exactly once
    request.refresh_from_db()
    assert request.closed_at is not None and request.released == 1
    assert Ticket.objects.get(pk=tickets[holders[0].id].pk).status == "active"
    assert Ticket.objects.get(pk=tickets[holders[1].id].pk).status == "returned"
    assert statuses(event) == ["offered", "offered"]
    seats_add_up(event)


def test_confirmation_request_mails_every_holder(sold_out):
    from tickets.tasks import mail_confirmation_request

    event, holders, _users = sold_out(capacity=2, waiting=0)
    request = confirmation_request_create(event_id=event.id, deadline=timezone.now() + timedelta(hours=1))
    assert mail_confirmation_request(request.pk) == 2
    assert sorted(m.to[0] for m in mail.outbox) == sorted(h.email for h in holders)
    links = {f"/tickets/{t.id}/confirm/" for t in Ticket.objects.filter(event=event)}
    assert all(any(link in m.body for link in links) for m in mail.outbox)
    # In Indonesian, the deadline in WIB (not a UTC timestamp).
    assert mail.outbox[0].body.startswith("Mohon konfirmasi bahwa Anda akan menghadiri")
    assert " WIB" in mail.outbox[0].body and "+00:00" not in mail.outbox[0].body


def test_joining_answers_as_the_row_reads(sold_out, django_assert_num_queries):
    """``waitlist_join`` (one statement, the one way onto a list) says what ``waitlist_place`` says."""
    from waitlist.selectors import waitlist_place
    from waitlist.services import waitlist_join

    event, _holders, waiting = sold_out(capacity=1, waiting=2)
    newcomer = bulk_students(1)[0]

    def place_of(user) -> dict:
        return waitlist_place(WaitlistEntry.objects.get(event=event, user=user))

    def join(user) -> dict:
        return waitlist_place(waitlist_join(students=[(event.id, user.id, None)])[(event.id, user.id)])

    with django_assert_num_queries(1):
        joined = join(newcomer)
    assert joined == place_of(newcomer) and joined["position"] == 3 and joined["status"] == "waiting"
    with django_assert_num_queries(1):
        again = join(newcomer)  # already there: same row, same place
    assert again == joined and WaitlistEntry.objects.filter(event=event, user=newcomer).count() == 1
    # An offer in hand is reported as such, without a position.
    WaitlistEntry.objects.filter(event=event, user=waiting[0]).update(
        status="offered", offered_at=timezone.now(), offer_expires_at=timezone.now() + timedelta(minutes=10)
    )
    offered = join(waiting[0])
    assert offered == place_of(waiting[0]) and offered["position"] is None and offered["offer_expires_at"]
    assert join(newcomer)["position"] == 2  # one fewer waiting ahead
    # A student who opted out is not put back: their row stays as it is.
    waitlist_set_joined(event_id=event.id, user_id=waiting[1].id, joined=False)
    assert join(waiting[1])["status"] == "left"
    assert WaitlistEntry.objects.get(event=event, user=waiting[1]).status == "left"


def test_many_students_join_in_the_given_order(sold_out):
    from waitlist.services import waitlist_join

    event, _holders, waiting = sold_out(capacity=1, waiting=1)
    crowd = bulk_students(3)
    listed = waitlist_join(students=[(event.id, u.id, None) for u in crowd])
    assert [listed[(event.id, u.id)].waiting_ahead for u in crowd] == [1, 2, 3]
    ordered = WaitlistEntry.objects.filter(event=event, status="waiting").order_by("id")
    assert [e.user_id for e in ordered] == [waiting[0].id] + [u.id for u in crowd]
