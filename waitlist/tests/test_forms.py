"""The claim, the waiting-list choice and the offer claim as plain forms (no JavaScript).

Each is a POST with a CSRF token answered by a redirect (to the next page, or back to its own page,
which says the refusal in words once), through the same services and rate-limit budgets as the
JSON API.
"""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from queueing.models import QueueEntry
from tickets.models import Ticket
from tools.testing import issue_ticket
from waitlist.models import WaitlistEntry


def as_user(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def test_claim_form_queues_and_redirects_to_the_waiting_page(client, student, event):
    url = f"/events/{event.slug}/claim/"
    response = client.post(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    me = as_user(student)
    assert me.get(url).status_code == 405
    response = me.post(url)
    entry = QueueEntry.objects.get(event=event, user=student)
    assert response.status_code == 302 and response["Location"] == f"/queue/{entry.public_id}/"
    # Pressed again: the same place, not a second one.
    assert me.post(url)["Location"] == f"/queue/{entry.public_id}/"
    assert QueueEntry.objects.filter(event=event, user=student).count() == 1


def test_claim_form_needs_the_csrf_token(student, event):
    me = as_user(student, enforce_csrf_checks=True)
    assert me.post(f"/events/{event.slug}/claim/").status_code == 403
    page = me.get(f"/events/{event.slug}/").content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    assert me.post(f"/events/{event.slug}/claim/", {"csrfmiddlewaretoken": token}).status_code == 302


def test_a_refused_claim_goes_back_to_the_event_page_which_says_why_once(student, make_event, settings):
    """Post/redirect/get: the refusal is said on the event page after the redirect, once; a reload
    neither says it again nor posts the claim again."""
    settings.RATELIMIT_CLAIM = "10/m"
    sold_out = make_event(capacity=1, remaining=0)
    me = as_user(student)
    response = me.post(f"/events/{sold_out.slug}/claim/")
    assert response.status_code == 302 and response["Location"] == f"/events/{sold_out.slug}/"
    html = me.get(response["Location"]).content.decode()
    assert html.count("Tiket untuk acara ini sudah habis diklaim.") == 1
    assert 'id="claim-message" class="claim-message" role="status">Tiket untuk' in html
    assert "Tiket untuk acara ini sudah habis diklaim." not in me.get(f"/events/{sold_out.slug}/").content.decode()
    english = as_user(student, HTTP_ACCEPT_LANGUAGE="en")
    english.post(f"/events/{sold_out.slug}/claim/")
    assert "All tickets for this event have been claimed." in english.get(f"/events/{sold_out.slug}/").content.decode()
    not_open = make_event(opens_in=3600)
    response = me.post(f"/events/{not_open.slug}/claim/", follow=True)
    assert response.redirect_chain == [(f"/events/{not_open.slug}/", 302)]
    assert "Klaim belum dibuka." in response.content.decode()
    assert me.post("/events/no-such-event/claim/").status_code == 404


def test_a_ticket_holder_claiming_again_is_shown_the_ticket_once(student, event):
    ticket = issue_ticket(event_id=event.id, user_id=student.id)
    response = as_user(student).post(f"/events/{event.slug}/claim/", follow=True)
    assert response.redirect_chain == [(f"/events/{event.slug}/", 302)]
    html = response.content.decode()
    # The notice with the link, and not the same sentence again in a red box beside it.
    assert f'href="/tickets/{ticket.id}/"' in html
    assert html.count("Anda sudah punya tiket untuk acara ini.") == 1


def test_the_form_and_the_api_share_one_claim_budget(student, event, settings):
    settings.RATELIMIT_CLAIM = "1/h"
    me = as_user(student)
    assert me.post(f"/events/{event.slug}/claim/").status_code == 302
    response = me.post(f"/events/{event.slug}/claim/")
    assert response.status_code == 302 and response["Location"] == f"/events/{event.slug}/"
    html = me.get(response["Location"]).content.decode()
    assert html.count("Terlalu banyak permintaan. Mohon tunggu") == 1 and 'id="claim-message"' in html
    assert me.post(f"/api/events/{event.slug}/claim/", content_type="application/json").status_code == 429


def test_over_the_claim_budget_a_ticket_holder_still_hears_about_the_ticket(student, other_student, event, settings):
    """The form and the API: the ticket, not "wait 55 s" (a second tab after the first one won)."""
    settings.RATELIMIT_CLAIM = "1/h"
    ticket = issue_ticket(event_id=event.id, user_id=student.id)
    me = as_user(student)
    api = f"/api/events/{event.slug}/claim/"
    assert me.post(api, content_type="application/json").status_code == 409  # the budget's one claim
    response = me.post(api, content_type="application/json")
    assert response.status_code == 409
    assert (
        response.json()["code"] == "already_has_ticket" and response.json()["ticket"]["url"] == f"/tickets/{ticket.id}/"
    )
    response = me.post(f"/events/{event.slug}/claim/", follow=True)
    html = response.content.decode()
    assert response.redirect_chain == [(f"/events/{event.slug}/", 302)] and f'href="/tickets/{ticket.id}/"' in html
    assert "Terlalu banyak permintaan" not in html
    # Anyone else over the budget is still told to wait.
    other = as_user(other_student)
    assert other.post(api, content_type="application/json").status_code == 202
    assert other.post(api, content_type="application/json").status_code == 429


def test_waitlist_choice_form(client, student, sold_out):
    event, _holders, _waiting = sold_out(capacity=1, waiting=0)
    url = f"/events/{event.slug}/waitlist/"
    assert client.post(url).status_code == 302  # to the login page
    me = as_user(student)
    assert me.get(url).status_code == 405
    response = me.post(url, {"next": "/queue/abc/"})  # the box unticked: nothing sent for it
    assert response.status_code == 302 and response["Location"] == "/queue/abc/"
    assert WaitlistEntry.objects.get(event=event, user=student).status == "left"
    response = me.post(url, {"join": "1", "next": "https://evil.example/"})
    assert response["Location"] == f"/events/{event.slug}/"  # never off-site
    assert WaitlistEntry.objects.get(event=event, user=student).status == "waiting"


def test_waitlist_choice_form_refused_goes_back_to_the_event_page_which_says_why(student, event):
    """While seats are left the list is closed: the form goes back to the page, which says it in words."""
    me = as_user(student)
    response = me.post(f"/events/{event.slug}/waitlist/", {"join": "1", "next": f"/events/{event.slug}/"})
    assert response.status_code == 302 and response["Location"] == f"/events/{event.slug}/"
    page = me.get(response["Location"])
    assert page["Content-Type"].startswith("text/html")
    assert page.content.decode().count("Daftar tunggu dibuka setelah tiket habis") == 1
    assert not WaitlistEntry.objects.filter(event=event, user=student, status="waiting").exists()


def test_offer_claim_form(client, offered):
    event, users, offer = offered
    url = f"/waitlist/{offer.public_id}/claim/"
    page = as_user(users[0]).get(f"/waitlist/{offer.public_id}/").content.decode()
    assert f'action="{url}"' in page and 'type="submit"' in page
    assert client.post(url).status_code == 302
    response = as_user(users[1]).post(url)
    assert response.status_code == 404  # someone else's offer
    response = as_user(users[0]).post(url)
    ticket = Ticket.objects.get(event=event, user=users[0], status="active")
    assert response.status_code == 302 and response["Location"] == f"/tickets/{ticket.id}/"
    assert as_user(users[0]).post(url)["Location"] == f"/tickets/{ticket.id}/"  # pressed twice: one ticket


def test_an_expired_offer_form_shows_the_offer_page_with_the_reason(offered):
    _event, users, offer = offered
    WaitlistEntry.objects.filter(pk=offer.pk).update(offer_expires_at=timezone.now() - timedelta(seconds=1))
    response = as_user(users[0]).post(f"/waitlist/{offer.public_id}/claim/")
    assert response.status_code == 410
    assert "Tawaran ini sudah kedaluwarsa" in response.content.decode()


def test_the_waiting_page_reloads_itself_without_scripts_until_decided(student, event, enqueue):
    entry = enqueue(student, event)
    html = as_user(student).get(f"/queue/{entry.public_id}/").content.decode()
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html
    # Screen readers hear the outcome and the place change, not the wait counting down each second.
    assert 'id="queue-status" role="status"' in html and 'id="queue-position" aria-live="polite"' in html
    assert "aria-live" not in html.split('id="queue-eta"')[1].split("</dd>")[0]
    assert 'id="queue" data-status="pending">' in html  # no aria-live on the whole card
    assert 'id="waitlist-form"' in html and 'name="join" value="1"' in html
    ticket = issue_ticket(event_id=event.id, user_id=student.id)
    QueueEntry.objects.filter(pk=entry.pk).update(status="completed", ticket=ticket)
    html = as_user(student).get(f"/queue/{entry.public_id}/").content.decode()
    assert 'http-equiv="refresh"' not in html
    # A won claim shows no waiting-list box at all (and so no ticked checkbox).
    assert 'id="waitlist-join"' not in html and 'id="waitlist"' not in html
