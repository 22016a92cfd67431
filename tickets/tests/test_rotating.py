"""Rotating QR codes: 30 s windows from a per-ticket secret; the door takes current and previous."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tickets.checkin import ticket_check_in
from tickets.codes import qr_payload_for
from tickets.rotating import WINDOW_SECONDS, rotating_payload, ticket_id_from_rotating
from tools.testing import door_open_times


@pytest.fixture
def rotating_ticket(make_ticket, make_event, student):
    return make_ticket(user=student, event=make_event(rotating_qr=True, **door_open_times()))


def test_payload_changes_every_window_and_is_bound_to_the_ticket(rotating_ticket, ticket):
    now = timezone.now()
    first = rotating_payload(rotating_ticket.id, now)
    assert re.fullmatch(r"TWR\.[0-9a-f]{32}\.[0-9a-f]{16}", first)
    assert rotating_payload(rotating_ticket.id, now + timedelta(seconds=WINDOW_SECONDS)) != first
    assert rotating_payload(ticket.id, now) != first
    assert ticket_id_from_rotating(first, now) == rotating_ticket.id
    assert ticket_id_from_rotating(first, now + timedelta(seconds=WINDOW_SECONDS)) == rotating_ticket.id
    assert ticket_id_from_rotating(first, now + timedelta(seconds=2 * WINDOW_SECONDS)) is None
    forged = first[:-1] + ("0" if first[-1] != "0" else "1")
    assert ticket_id_from_rotating(forged, now) is None
    other = f"TWR.{ticket.id.hex}.{first.rsplit('.', 1)[1]}"  # a code moved to another ticket
    assert ticket_id_from_rotating(other, now) is None


def test_door_accepts_current_and_previous_window_only(rotating_ticket, staff):
    now = timezone.now()
    old = rotating_payload(rotating_ticket.id, now - timedelta(seconds=2 * WINDOW_SECONDS))
    assert (
        ticket_check_in(code=old, staff_user=staff, event_slug=rotating_ticket.event.slug, now=now).result == "invalid"
    )
    previous = rotating_payload(rotating_ticket.id, now - timedelta(seconds=WINDOW_SECONDS))
    assert (
        ticket_check_in(code=previous, staff_user=staff, event_slug=rotating_ticket.event.slug, now=now).result
        == "admitted"
    )
    current = rotating_payload(rotating_ticket.id, now)
    assert (
        ticket_check_in(code=current, staff_user=staff, event_slug=rotating_ticket.event.slug, now=now).result
        == "already_admitted"
    )


def test_fixed_qr_is_refused_for_a_rotating_event(rotating_ticket, staff):
    slug = rotating_ticket.event.slug
    assert ticket_check_in(code=qr_payload_for(rotating_ticket.id), staff_user=staff, event_slug=slug).result == (
        "invalid"
    )


@pytest.mark.parametrize("shape", ["{}", "{}-{}"])
def test_the_redeem_code_of_a_rotating_event_needs_an_identity_check(rotating_ticket, staff, student, shape):
    """The redeem code (and its barcode) is fixed, like a screenshot: it admits only after staff
    compared the holder's name and NIM with the student ID card."""
    code = rotating_ticket.redeem_code
    typed = shape.format(code[:4], code[4:]) if shape.count("{}") == 2 else code
    slug = rotating_ticket.event.slug
    first = ticket_check_in(code=typed, staff_user=staff, event_slug=slug)
    assert first.result == "needs_identity_check"
    assert first.as_dict()["ticket"]["nim"] == student.nim and first.as_dict()["admitted_at"] is None
    rotating_ticket.refresh_from_db()
    assert rotating_ticket.admitted_at is None
    checked = ticket_check_in(code=typed, staff_user=staff, event_slug=slug, identity_checked=True)
    assert checked.result == "admitted"
    # Once in, the fixed code says so (no identity check needed to learn that).
    assert ticket_check_in(code=typed, staff_user=staff, event_slug=slug).result == "already_admitted"


def test_the_rotating_code_needs_no_identity_check(rotating_ticket, staff):
    payload = rotating_payload(rotating_ticket.id, timezone.now())
    slug = rotating_ticket.event.slug
    assert ticket_check_in(code=payload, staff_user=staff, event_slug=slug).result == "admitted"


def test_checkin_api_identity_check_round_trip(client, rotating_ticket, staff):
    client.force_login(staff)
    body = {"code": rotating_ticket.redeem_code, "event": rotating_ticket.event.slug}
    post = lambda data: client.post("/api/checkin/", json.dumps(data), content_type="application/json")  # noqa: E731
    assert post(body).json()["result"] == "needs_identity_check"
    assert post(body | {"identity_checked": "yes"}).status_code == 400
    assert post(body | {"identity_checked": False}).json()["result"] == "needs_identity_check"
    assert post(body | {"identity_checked": True}).json()["result"] == "admitted"


def test_the_ticket_page_says_the_redeem_code_needs_the_student_id(rotating_ticket, ticket, student):
    me = as_client(student)
    note = "only with your student ID card"
    english = {"HTTP_ACCEPT_LANGUAGE": "en"}
    assert note in me.get(f"/tickets/{rotating_ticket.id}/", **english).content.decode()
    assert note not in me.get(f"/tickets/{ticket.id}/", **english).content.decode()
    assert "kartu mahasiswa" in me.get(f"/tickets/{rotating_ticket.id}/").content.decode()


def test_rotating_payload_is_refused_for_a_fixed_event(ticket, staff):
    assert (
        ticket_check_in(
            code=rotating_payload(ticket.id, timezone.now()), staff_user=staff, event_slug=ticket.event.slug
        ).result
        == "invalid"
    )
    assert (
        ticket_check_in(code=qr_payload_for(ticket.id), staff_user=staff, event_slug=ticket.event.slug).result
        == "admitted"
    )


def test_qr_endpoint_is_owner_only(client, rotating_ticket, ticket, student, other_student):
    url = f"/api/tickets/{rotating_ticket.id}/qr/"
    assert client.get(url).status_code == 401
    assert as_client(other_student).get(url).status_code == 404
    me = as_client(student)
    assert me.post(url).status_code == 405
    body = me.get(url).json()
    assert body["payload"] == rotating_payload(rotating_ticket.id, timezone.now()) or body["refresh_in"] <= 1
    assert body["svg"].startswith("<svg") and 1 <= body["refresh_in"] <= WINDOW_SECONDS
    assert me.get(f"/api/tickets/{ticket.id}/qr/").status_code == 409  # a fixed-QR event
    page = me.get(f"/tickets/{rotating_ticket.id}/").content.decode()
    assert f'data-rotating-url="{url}"' in page and "rotating_qr.js" in page


def as_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client
