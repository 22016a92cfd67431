"""Views of the waiting list, the offer and the confirmation; the stock-aware status fields."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from tickets.confirmations import confirmation_request_create
from tickets.models import Ticket
from tools.testing import bulk_students
from waitlist.models import WaitlistEntry


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_waitlist_api_reads_and_toggles(client, student, make_event):
    event = make_event(capacity=0)  # sold out: the list is open
    url = f"/api/events/{event.slug}/waitlist/"
    assert client.get(url).status_code == 401
    me = as_user(student)
    assert me.get(url).json()["status"] is None
    assert me.put(url).status_code == 405
    assert me.post(url, "nope", content_type="application/json").status_code == 400
    assert me.post(url, {"join": "yes"}, content_type="application/json").status_code == 400
    assert me.post(url, {"join": False}, content_type="application/json").json()["status"] == "left"
    body = me.post(url, {"join": True}, content_type="application/json").json()
    assert body["status"] == "waiting" and body["position"] == 1
    assert me.get("/api/events/unknown/waitlist/").status_code == 404


def test_joining_an_open_event_with_free_seats_is_refused(student, event):
    response = as_user(student).post(
        f"/api/events/{event.slug}/waitlist/", {"join": True}, content_type="application/json"
    )
    assert response.status_code == 409 and response.json()["code"] == "waitlist_not_open"
    assert not WaitlistEntry.objects.filter(user=student).exists()


def test_offer_claim_api(client, offered):
    event, users, offer = offered
    url = f"/api/waitlist/{offer.public_id}/claim/"
    assert client.post(url).status_code == 401
    assert as_user(users[0]).get(url).status_code == 405
    assert as_user(users[1]).post(url).status_code == 404  # someone else's offer
    assert as_user(users[0]).post("/api/waitlist/not-a-uuid/claim/").status_code == 404
    response = as_user(users[0]).post(url)
    assert response.status_code == 200
    ticket = Ticket.objects.get(event=event, user=users[0], status="active")
    assert response.json()["ticket"]["url"] == f"/tickets/{ticket.id}/"


def test_expired_offer_answers_410(offered):
    _event, users, offer = offered
    WaitlistEntry.objects.filter(pk=offer.pk).update(offer_expires_at=timezone.now() - timedelta(seconds=1))
    response = as_user(users[0]).post(f"/api/waitlist/{offer.public_id}/claim/")
    assert response.status_code == 410 and "kedaluwarsa" in response.json()["error"]


def test_offer_page(client, offered):
    _event, users, offer = offered
    url = f"/waitlist/{offer.public_id}/"
    assert client.get(url).status_code == 302
    assert as_user(users[1]).get(url).status_code == 404
    page = as_user(users[0]).get(url)
    assert page.status_code == 200 and b'id="offer-claim"' in page.content
    assert as_user(users[0]).post(url).status_code == 405


def test_confirm_page(client, sold_out):
    event, holders, _users = sold_out(capacity=2, waiting=0)
    confirmation_request_create(event_id=event.id, deadline=timezone.now() + timedelta(hours=1))
    ticket = Ticket.objects.get(user=holders[0])
    url = f"/tickets/{ticket.id}/confirm/"
    assert client.get(url).status_code == 302
    # Links in e-mails sent before the page moved under /tickets/ still lead to it.
    old = client.get(f"/waitlist/confirm/{ticket.id}/")
    assert old.status_code == 301 and old["Location"] == url
    assert as_user(holders[1]).get(url).status_code == 404
    me = as_user(holders[0])
    assert b'id="confirm-button"' in me.get(url).content
    assert me.post(url).status_code == 302
    assert b'id="confirm-done"' in me.get(url).content
    assert me.put(url).status_code == 405


def test_status_api_tells_seats_left_against_the_position_honestly(make_event, enqueue, settings):
    settings.WAITLIST_EXPECTED_GIVEBACK_RATE = 0.1
    event = make_event(capacity=10)
    users = bulk_students(14)
    entries = [enqueue(u, event) for u in users]
    first = as_user(users[0]).get(f"/api/queue/{entries[0].public_id}/").json()
    assert first["seats_left"] == 10 and first["outlook"] == "likely" and first["expected_give_backs"] == 1
    edge = as_user(users[10]).get(f"/api/queue/{entries[10].public_id}/").json()
    assert edge["position"] == 11 and edge["outlook"] == "uncertain"
    last = as_user(users[13]).get(f"/api/queue/{entries[13].public_id}/").json()
    assert last["outlook"] == "waiting_list"
    assert last["outlook_message"] == "Anda nomor 14 untuk 10 kursi: Anda akan masuk daftar tunggu."
    page = as_user(users[13]).get(f"/queue/{entries[13].public_id}/").content.decode()
    assert "Anda akan masuk daftar tunggu" in page and 'id="waitlist-join"' in page


def test_admin_pages(admin_client, offered):
    event, _users, _offer = offered
    assert admin_client.get("/admin/waitlist/waitlistentry/").status_code == 200
    assert admin_client.get("/admin/tickets/confirmationrequest/").status_code == 200
    response = admin_client.post(
        "/admin/events/event/", {"action": "ask_ticket_holders_to_confirm", "_selected_action": [event.pk]}
    )
    assert response.status_code == 302 and f"?event={event.pk}" in response["Location"]
    add = "/admin/tickets/confirmationrequest/add/"
    assert admin_client.get(f"{add}?event={event.pk}").status_code == 200
    inline = {"confirmations-TOTAL_FORMS": "0", "confirmations-INITIAL_FORMS": "0"}
    past = timezone.localtime(timezone.now() - timedelta(hours=1))
    bad = admin_client.post(
        add,
        {**inline, "event": event.pk, "deadline_0": past.strftime("%Y-%m-%d"), "deadline_1": past.strftime("%H:%M:%S")},
    )
    assert bad.status_code == 200 and not event.confirmation_requests.exists()
    assert "Batas waktu harus di masa depan" in bad.content.decode()
    soon = timezone.localtime(timezone.now() + timedelta(hours=3))
    ok = admin_client.post(
        add,
        {**inline, "event": event.pk, "deadline_0": soon.strftime("%Y-%m-%d"), "deadline_1": soon.strftime("%H:%M:%S")},
    )
    assert ok.status_code == 302, ok.content[:2000]
    request = event.confirmation_requests.get()
    assert request.confirmations.count() == Ticket.objects.filter(event=event, status="active").count()
    assert admin_client.get(f"/admin/tickets/confirmationrequest/{request.pk}/change/").status_code == 200


def test_event_admin_shows_the_commitment_not_the_seed(admin_client, make_event):
    from events.models import Event

    event = make_event(opens_in=3600, opening_mode=Event.OpeningMode.SHUFFLE_AT_OPEN)
    page = admin_client.get(f"/admin/events/event/{event.pk}/change/").content.decode()
    assert event.draw_commitment in page and event.draw_seed not in page
