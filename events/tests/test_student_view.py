"""The event page knows who is looking: a ticket holder, an unverified student, staff, a visitor."""

from __future__ import annotations

import pytest
from django.test import Client

from tools.testing import issue_ticket


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_a_ticket_holder_sees_the_ticket_instead_of_the_claim_button(student, event):
    ticket = issue_ticket(event_id=event.id, user_id=student.id)
    html = as_user(student).get(f"/events/{event.slug}/").content.decode()
    assert 'id="claim-button"' not in html
    assert 'id="have-ticket"' in html and f'href="/tickets/{ticket.id}/"' in html
    assert "Anda sudah punya tiket untuk acara ini." in html


@pytest.mark.django_db
def test_an_unverified_student_sees_why_and_how_to_resend_not_a_button(make_user, event):
    unverified = make_user(verified=False)
    html = as_user(unverified).get(f"/events/{event.slug}/").content.decode()
    assert 'id="claim-button"' not in html
    assert 'id="verify-first"' in html and 'href="/accounts/verify/' in html


@pytest.mark.django_db
def test_a_verified_student_gets_the_claim_form(student, event):
    html = as_user(student).get(f"/events/{event.slug}/").content.decode()
    assert f'<form method="post" action="/events/{event.slug}/claim/" id="claim-form"' in html
    assert 'type="submit" class="primary claim-button" id="claim-button"' in html
    assert 'aria-live="polite"' not in html.split('id="countdown"')[0].split('class="card claim-box"')[1]


@pytest.mark.django_db
def test_a_visitor_gets_the_way_to_log_in_and_back_not_a_claim_button(client, event):
    html = client.get(f"/events/{event.slug}/").content.decode()
    assert 'id="claim-button"' not in html and 'id="claim-form"' not in html
    back_here = f"/accounts/login/?next=/events/{event.slug}/"
    assert f'id="log-in-button" href="{back_here}"' in html
    assert f'href="{back_here}" id="nav-log-in"' in html  # the header's "Masuk" too
    # From the login page itself the header's link does not point back at the login page.
    login = client.get(back_here).content.decode()
    assert 'href="/accounts/login/" id="nav-log-in"' in login


@pytest.mark.django_db
def test_event_cards_say_when_claiming_opens(client, make_event):
    later = make_event(opens_in=3600, title="Nanti")
    make_event(title="Sekarang")
    html = client.get("/").content.decode()
    card = html.split("Nanti")[1].split("</article>")[0]
    assert 'class="claim-opens"' in card and "Klaim dibuka " in card and "WIB" in card
    assert html.count('class="claim-opens"') == 1
    assert later.claim_opens_at.astimezone().strftime("%Y") in card
