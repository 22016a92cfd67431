"""The ticket in the pocket, server side: the printable page (no JavaScript needed), no print for a
given-back ticket, the ticket pages' service worker and whose saved pages a phone may keep."""

from __future__ import annotations

import re

import pytest

from tickets.selectors import pocket_account
from tickets.services import ticket_return
from tools.testing import door_open_times

pytestmark = pytest.mark.django_db


def _print_link(html: str) -> str | None:
    found = re.search(r'<a[^>]*href="([^"]*/print/)"[^>]*data-print', html)
    return found.group(1) if found else None


def test_print_is_a_plain_link_to_a_page_that_prints_without_javascript(client, ticket, student):
    client.force_login(student)
    html = client.get(f"/tickets/{ticket.id}/").content.decode()
    assert _print_link(html) == f"/tickets/{ticket.id}/print/"
    assert "<button" not in html.split('class="ticket-actions')[1].split("</div>")[0]  # nothing that needs a script

    response = client.get(_print_link(html))
    assert response.status_code == 200
    page = response.content.decode()
    assert f"{ticket.redeem_code[:4]}-{ticket.redeem_code[4:]}" in page
    assert 'class="ticket-qr"' in page and 'class="ticket-barcode"' in page
    assert "Ctrl+P" in page  # says how to print when there is no script to do it
    assert "no-store" in response["Cache-Control"]


def test_a_given_back_ticket_offers_no_print(client, ticket, student):
    ticket_return(ticket_id=ticket.id, user_id=student.id)
    client.force_login(student)
    html = client.get(f"/tickets/{ticket.id}/").content.decode()
    assert _print_link(html) is None and "/print/" not in html
    response = client.get(f"/tickets/{ticket.id}/print/")
    assert response.status_code == 410
    page = response.content.decode()
    assert "Tidak ada yang dicetak" in page
    assert ticket.redeem_code[:4] not in page and 'class="ticket-qr"' not in page


def test_a_rotating_qr_ticket_prints_its_redeem_code_not_a_qr_that_stops_working(
    client, student, make_ticket, make_event
):
    ticket = make_ticket(user=student, event=make_event(rotating_qr=True, **door_open_times()))
    client.force_login(student)
    page = client.get(f"/tickets/{ticket.id}/print/").content.decode()
    assert 'class="ticket-qr"' not in page and "data-rotating-url" not in page
    assert f"{ticket.redeem_code[:4]}-{ticket.redeem_code[4:]}" in page
    assert "kartu mahasiswa" in page


def test_the_print_page_is_the_holders_only(client, ticket, other_student):
    assert client.get(f"/tickets/{ticket.id}/print/")["Location"].startswith("/accounts/login/")
    client.force_login(other_student)
    assert client.get(f"/tickets/{ticket.id}/print/").status_code == 404
    assert client.post(f"/tickets/{ticket.id}/print/").status_code == 405


def test_the_service_worker_is_served_under_the_ticket_pages_and_never_cached(client):
    response = client.get("/tickets/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cache-Control"] == "no-cache"
    body = response.content.decode()
    assert "/tickets/" in body and "X-Pocket-Account" in body and "/static/" in body
    assert client.post("/tickets/sw.js").status_code == 405


def test_ticket_pages_name_their_account_and_stay_out_of_the_http_cache(client, ticket, student, other_student):
    client.force_login(student)
    for path in (f"/tickets/{ticket.id}/", "/tickets/"):
        response = client.get(path)
        assert response["X-Pocket-Account"] == pocket_account(student)
        assert "no-store" in response["Cache-Control"]  # not served back after a log-out
        html = response.content.decode()
        assert f'data-pocket-account="{pocket_account(student)}"' in html
        assert 'data-pocket-worker="/tickets/sw.js"' in html and 'data-pocket-scope="/tickets/"' in html
    assert pocket_account(student) != pocket_account(other_student)
    assert str(student.pk) != pocket_account(student) and len(pocket_account(student)) == 20


def test_other_pages_name_the_account_so_saved_pages_of_others_are_deleted(client, student, staff, event):
    page = f"/events/{event.slug}/"
    assert 'data-pocket-account=""' in client.get(page).content.decode()  # logged out: delete all
    client.force_login(staff)
    assert 'data-pocket-account=""' in client.get(page).content.decode()  # no student: delete all
    client.force_login(student)
    html = client.get(page).content.decode()
    assert f'data-pocket-account="{pocket_account(student)}"' in html
    assert "js/pocket.js" in html and "data-pocket-save" not in html  # cleans, saves nothing
