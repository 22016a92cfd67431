"""The queue is the only way to a seat: the waiting list opens after it, never around it.

Joining needs a student who may get a seat (verified, no ticket of the event, no claim still
in the queue) and an event sold out through the queue or past its claim window. Freed seats
go to the list only while no claim of the event waits in the queue.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone

from claims.services import claims_decide_batch
from events.models import Event
from queueing.models import QueueEntry
from tickets.models import Ticket
from tickets.services import ticket_return
from tools.testing import bulk_students, issue_ticket
from waitlist.models import WaitlistEntry
from waitlist.services import waitlist_fill, waitlist_fill_all, waitlist_set_joined


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def join(user, event) -> tuple[int, dict]:
    response = as_user(user).post(
        f"/api/events/{event.slug}/waitlist/", {"join": True}, content_type="application/json"
    )
    return response.status_code, response.json()


def claim(user, event) -> tuple[int, dict]:
    response = as_user(user).post(f"/api/events/{event.slug}/claim/")
    return response.status_code, response.json()


def drain() -> None:
    while claims_decide_batch().taken:
        pass


def test_joining_is_refused_to_everyone_the_queue_would_refuse(make_event, make_user):
    early = make_event(capacity=5, opens_in=60)
    open_with_seats = make_event(capacity=5)
    sold = make_event(capacity=1)
    verified, unverified, holder, queued = make_user(), make_user(verified=False), make_user(), make_user()
    issue_ticket(event_id=sold.id, user_id=holder.id)
    QueueEntry.objects.create(user=queued, event=sold)  # a claim the worker has not decided yet

    status, body = join(verified, early)
    assert (status, body["code"]) == (425, "waitlist_not_open") and body["error"]
    assert join(verified, open_with_seats)[0] == 409
    assert join(verified, open_with_seats)[1]["code"] == "waitlist_not_open"
    assert join(unverified, sold)[0] == 403 and join(unverified, sold)[1]["code"] == "not_eligible"
    status, body = join(holder, sold)
    assert (status, body["code"]) == (409, "already_has_ticket")
    assert body["ticket"]["redeem_code"] == Ticket.objects.get(user=holder).redeem_code
    status, body = join(queued, sold)
    assert (status, body["code"]) == (409, "in_queue") and body["url"] == f"/queue/{body['queue_id']}/"
    assert not WaitlistEntry.objects.exists()  # no refusal left a row behind

    status, body = join(verified, sold)
    assert (status, body["status"], body["position"]) == (200, "waiting", 1)
    assert join(verified, sold) == (status, body)  # again: the same place


def test_joining_opens_when_the_claim_window_closes_and_shuts_when_the_event_starts(make_event, student):
    now = timezone.now()
    closed = make_event(capacity=5, claim_opens_at=now - timedelta(hours=2), claim_closes_at=now - timedelta(hours=1))
    started = make_event(
        capacity=1,
        remaining=0,
        claim_opens_at=now - timedelta(hours=3),
        claim_closes_at=now - timedelta(hours=2),
        starts_at=now - timedelta(minutes=1),
    )
    assert join(student, closed)[1]["status"] == "waiting"
    assert join(student, started)[1]["code"] == "waitlist_not_open"


def test_opting_out_is_always_possible_and_opting_back_in_follows_the_rule(make_event, student):
    event = make_event(capacity=5)
    waitlist_set_joined(event_id=event.id, user_id=student.id, joined=False)
    assert WaitlistEntry.objects.get(user=student).status == "left"
    status, body = join(student, event)
    assert (status, body["code"]) == (409, "waitlist_not_open")
    assert WaitlistEntry.objects.get(user=student).status == "left"


@pytest.mark.django_db(transaction=True)
def test_the_attack_pre_opening_unverified_and_holder_never_get_an_offer(make_event, make_user, settings):
    """The reported attack, end to end through the API: no joiner outside the rule is offered a
    seat, whatever the beat's fill does, and seats go only through the queue."""
    event = make_event(capacity=3, opens_in=30)
    early, unverified, holder, fair = make_user(), make_user(verified=False), make_user(), make_user()

    assert join(early, event)[0] == 425
    assert join(unverified, event)[0] == 403
    assert waitlist_fill_all() == 0

    Event.objects.filter(pk=event.pk).update(claim_opens_at=timezone.now() - timedelta(seconds=1))
    cache.clear()
    assert claim(holder, event)[0] == 202
    assert join(early, event)[0] == 409  # open with seats left: claim instead
    assert join(unverified, event)[0] == 403
    drain()
    assert Ticket.objects.get(event=event).user_id == holder.id
    assert join(holder, event)[1]["code"] == "already_has_ticket"
    assert waitlist_fill_all() == 0 and waitlist_fill(event_id=event.id) == 0

    assert not WaitlistEntry.objects.filter(status__in=["waiting", "offered", "claimed"]).exists()
    event.refresh_from_db()
    assert event.remaining == 2  # the free seats wait for claims, not for the list
    assert claim(fair, event)[0] == 202
    drain()
    assert set(Ticket.objects.filter(event=event).values_list("user_id", flat=True)) == {holder.id, fair.id}


@pytest.mark.django_db(transaction=True)
def test_a_seat_given_back_while_claims_wait_in_the_queue_goes_to_the_queue(make_event, settings):
    """During the war, a returned seat goes to the next claim in the queue, not to an offer."""
    event = make_event(capacity=2)
    first, second, third, fourth, listed = bulk_students(5)
    for user in (first, second, third, fourth):
        assert claim(user, event)[0] == 202
    claims_decide_batch(limit=2)  # the first two get the seats; two claims still wait
    event.refresh_from_db()
    assert event.remaining == 0
    status, body = join(listed, event)  # sold out, not queued: may join
    assert (status, body["status"]) == (200, "waiting")

    ticket_return(ticket_id=Ticket.objects.get(user=first).id, user_id=first.id)  # its hook fills
    assert waitlist_fill(event_id=event.id) == 0 and waitlist_fill_all() == 0
    assert WaitlistEntry.objects.get(user=listed).status == "waiting"
    drain()
    entries = {e.user_id: e for e in QueueEntry.objects.filter(event=event)}
    assert entries[third.id].status == "completed"  # the returned seat went to the queue
    assert (entries[fourth.id].status, entries[fourth.id].reason) == ("failed", "sold_out")

    # Once the queue has drained, a seat given back is offered to the list, in its order.
    ticket_return(ticket_id=Ticket.objects.get(user=second).id, user_id=second.id)
    waitlist_fill_all()
    assert WaitlistEntry.objects.get(user=listed).status == "offered"
    assert WaitlistEntry.objects.get(user=fourth).status == "waiting"  # enrolled after `listed`


def test_an_expired_offer_goes_back_to_the_queue_while_claims_wait(sold_out):
    event, holders, users = sold_out(capacity=1, waiting=2)
    ticket_return(ticket_id=Ticket.objects.get(user=holders[0]).id, user_id=holders[0].id)
    assert waitlist_fill(event_id=event.id) == 1
    late = bulk_students(1)[0]
    QueueEntry.objects.create(user=late, event=event)  # a claim queued meanwhile
    from waitlist.services import waitlist_expire_offers

    assert waitlist_expire_offers(now=timezone.now() + timedelta(minutes=16)) == 1
    assert WaitlistEntry.objects.get(user=users[1]).status == "waiting"  # not offered
    event.refresh_from_db()
    assert event.remaining == 1  # back in the pool, for the queued claim


def test_a_waiting_student_who_may_no_longer_get_a_seat_is_passed_over(sold_out, make_user):
    event, holders, users = sold_out(capacity=2, waiting=2)
    Event.objects.filter(pk=event.pk).update(capacity=3, remaining=1)  # the organiser added a seat
    issue_ticket(event_id=event.id, user_id=users[0].id)  # got a ticket elsewhere meanwhile
    ticket_return(ticket_id=Ticket.objects.get(user=holders[0]).id, user_id=holders[0].id)
    assert waitlist_fill(event_id=event.id) == 1
    assert WaitlistEntry.objects.get(user=users[0]).status == "left"
    assert WaitlistEntry.objects.get(user=users[1]).status == "offered"


@pytest.mark.django_db(transaction=True)
def test_simultaneous_joins_by_one_student_give_one_place(make_event):
    """Double clicks on "join" race on real connections: one row each, never a 500."""
    event = make_event(capacity=0)
    students = bulk_students(8)
    per_student = 4
    errors: list[BaseException] = []
    places: dict[int, set] = {s.id: set() for s in students}
    barrier = threading.Barrier(len(students) * per_student)

    def click(user_id: int, joined: bool) -> None:
        try:
            barrier.wait()
            entry = waitlist_set_joined(event_id=event.id, user_id=user_id, joined=joined)
            places[user_id].add(entry.public_id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=click, args=(s.id, True)) for s in students for _ in range(per_student)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(len(p) == 1 for p in places.values()), places
    assert WaitlistEntry.objects.filter(event=event, status="waiting").count() == len(students)


def test_ticking_the_box_again_while_queued_withdraws_the_opt_out_without_a_place(make_event, enqueue):
    """The waiting page's checkbox: unticked then ticked again while the claim waits. No place
    yet (409 in_queue), but the sold-out answer of the claim then enrols the student."""
    event = make_event(capacity=1)
    first, second = bulk_students(2)
    enqueue(first, event)
    enqueue(second, event)
    url = f"/api/events/{event.slug}/waitlist/"
    me = as_user(second)
    assert me.post(url, {"join": False}, content_type="application/json").json()["status"] == "left"
    response = me.post(url, {"join": True}, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (409, "in_queue")
    assert not WaitlistEntry.objects.filter(user=second).exists()
    drain()
    assert QueueEntry.objects.get(user=second).reason == "sold_out"
    assert WaitlistEntry.objects.get(user=second).status == "waiting"
