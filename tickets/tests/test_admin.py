"""TicketAdmin: find tickets by code or NIM, filter by admission, never add or edit codes."""

from __future__ import annotations

import pytest

from tickets.checkin import ticket_check_in
from tickets.codes import qr_payload_for

pytestmark = pytest.mark.django_db


def test_search_by_redeem_code_and_nim(admin_client, make_ticket, student):
    mine = make_ticket(user=student)
    other = make_ticket()
    for query in (mine.redeem_code, student.nim):
        html = admin_client.get("/admin/tickets/ticket/", {"q": query}).content.decode()
        assert f"{mine.redeem_code[:4]}-{mine.redeem_code[4:]}" in html
        assert f"/admin/tickets/ticket/{mine.id}/" in html and f"/admin/tickets/ticket/{other.id}/" not in html


def test_filter_by_admission(admin_client, make_ticket, staff):
    admitted, waiting = make_ticket(), make_ticket()
    ticket_check_in(code=admitted.redeem_code, staff_user=staff, event_slug=admitted.event.slug)
    html = admin_client.get("/admin/tickets/ticket/", {"admitted": "yes"}).content.decode()
    assert f"/admin/tickets/ticket/{admitted.id}/" in html and f"/admin/tickets/ticket/{waiting.id}/" not in html
    html = admin_client.get("/admin/tickets/ticket/", {"admitted": "no", "event__id__exact": waiting.event_id})
    assert f"/admin/tickets/ticket/{waiting.id}/" in html.content.decode()


def test_codes_are_read_only_and_tickets_cannot_be_added_or_deleted(admin_client, ticket):
    page = admin_client.get(f"/admin/tickets/ticket/{ticket.id}/change/").content.decode()
    assert qr_payload_for(ticket.id) in page
    assert 'name="redeem_code"' not in page and 'name="status"' not in page
    assert admin_client.get("/admin/tickets/ticket/add/").status_code == 403
    assert admin_client.get(f"/admin/tickets/ticket/{ticket.id}/delete/").status_code == 403
    original = ticket.redeem_code
    forged = "ACDEFGHJ" if original != "ACDEFGHJ" else "ACDEFGHK"
    admin_client.post(f"/admin/tickets/ticket/{ticket.id}/change/", {"redeem_code": forged, "status": "returned"})
    ticket.refresh_from_db()
    assert ticket.status == "active" and ticket.redeem_code == original


def test_the_ticket_says_whether_its_e_mail_went_out(admin_client, ticket):
    from tickets.delivery import ticket_mail_send

    page = admin_client.get(f"/admin/tickets/ticket/{ticket.id}/change/").content.decode()
    assert "belum dikirim" in page
    ticket_mail_send(ticket_id=ticket.id)
    page = admin_client.get(f"/admin/tickets/ticket/{ticket.id}/change/").content.decode()
    assert "dikirim " in page and "belum dikirim" not in page
