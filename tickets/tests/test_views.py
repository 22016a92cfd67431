"""Ticket pages, the give-back flow, /api/me/tickets/, /api/checkin/ and /scan/."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.roles import DOOR_STAFF
from events.models import Event
from tickets.checkin import ticket_check_in
from tickets.codes import qr_payload_for
from tickets.models import Ticket
from tickets.services import ticket_return
from tools.testing import door_open_times, issue_ticket

pytestmark = pytest.mark.django_db


def post_json(client, url, data, **extra):
    body = data if isinstance(data, (str, bytes)) else json.dumps(data)
    return client.post(url, body, content_type="application/json", **extra)


# --- ticket page ------------------------------------------------------------------------


def test_ticket_page_shows_codes_event_and_status_to_its_owner(client, ticket, student, event):
    client.force_login(student)
    response = client.get(f"/tickets/{ticket.id}/")
    assert response.status_code == 200
    html = response.content.decode()
    grouped = f"{ticket.redeem_code[:4]}-{ticket.redeem_code[4:]}"
    assert grouped in html
    assert 'class="ticket-qr"' in html and 'class="ticket-barcode"' in html
    assert event.title in html and event.speaker in html and event.venue in html
    assert "WIB" in html
    assert timezone.localtime(event.starts_at).strftime("%H:%M") in html
    assert f"/tickets/{ticket.id}/return/" in html
    assert "<script>" not in html and "onclick" not in html


def test_ticket_page_shows_admission_and_return(client, ticket, student, staff, make_ticket, event):
    client.force_login(student)
    ticket_check_in(code=ticket.redeem_code, staff_user=staff, event_slug=ticket.event.slug)
    html = client.get(f"/tickets/{ticket.id}/").content.decode()
    assert 'data-ticket-status="admitted"' in html
    assert f"/tickets/{ticket.id}/return/" not in html
    ticket_return(ticket_id=(second := make_ticket(user=student)).id, user_id=student.id)
    html = client.get(f"/tickets/{second.id}/").content.decode()
    assert 'data-ticket-status="returned"' in html
    assert 'class="ticket-qr"' not in html


def test_someone_elses_ticket_is_404(client, ticket, other_student, staff):
    for user in (other_student, staff):
        client.force_login(user)
        assert client.get(f"/tickets/{ticket.id}/").status_code == 404
        assert client.get(f"/tickets/{ticket.id}/return/").status_code == 404
        assert client.post(f"/tickets/{ticket.id}/return/").status_code == 404
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.ACTIVE


def test_unknown_ticket_is_404(client, student):
    client.force_login(student)
    assert client.get(f"/tickets/{uuid.uuid4()}/").status_code == 404
    assert client.get("/tickets/not-a-uuid/").status_code == 404


def test_anonymous_is_sent_to_login(client, ticket):
    for url in ("/tickets/", f"/tickets/{ticket.id}/", f"/tickets/{ticket.id}/return/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_wrong_methods_on_pages(client, ticket, student):
    client.force_login(student)
    assert client.post("/tickets/").status_code == 405
    assert client.post(f"/tickets/{ticket.id}/").status_code == 405
    assert client.delete(f"/tickets/{ticket.id}/return/").status_code == 405


def test_my_tickets_lists_only_mine(client, student, make_ticket, make_event):
    mine = [make_ticket(user=student, event=make_event(title=f"Mine {i}")) for i in range(2)]
    theirs = make_ticket(event=make_event(title="Not mine"))
    client.force_login(student)
    html = client.get("/tickets/").content.decode()
    for ticket in mine:
        assert f"/tickets/{ticket.id}/" in html
    assert f"/tickets/{theirs.id}/" not in html and "Not mine" not in html


# --- give back ----------------------------------------------------------------------------


def test_give_back_asks_first_then_returns_the_seat(client, ticket, student, event):
    client.force_login(student)
    confirm = client.get(f"/tickets/{ticket.id}/return/")
    assert confirm.status_code == 200
    assert 'method="post"' in confirm.content.decode()
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.ACTIVE

    response = client.post(f"/tickets/{ticket.id}/return/", follow=True)
    assert response.redirect_chain[-1][0] == f"/tickets/{ticket.id}/"
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.RETURNED
    assert Event.objects.get(pk=event.pk).remaining == 500
    assert any(m.level_tag == "success" for m in response.context["messages"])

    again = client.post(f"/tickets/{ticket.id}/return/", follow=True, headers={"Accept-Language": "en"})
    assert [m.message for m in again.context["messages"]] == ["This ticket has already been given back."]
    assert Event.objects.get(pk=event.pk).remaining == 500


def test_give_back_after_admission_says_why(client, ticket, student, staff, event):
    ticket_check_in(code=ticket.redeem_code, staff_user=staff, event_slug=ticket.event.slug)
    client.force_login(student)
    page = client.get(f"/tickets/{ticket.id}/return/", headers={"Accept-Language": "en"}).content.decode()
    assert "can no longer be given back" in page
    response = client.post(f"/tickets/{ticket.id}/return/", follow=True)
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert Event.objects.get(pk=event.pk).remaining == 499


def test_give_back_needs_csrf(ticket, student):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(student)
    assert client.post(f"/tickets/{ticket.id}/return/").status_code == 403
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.ACTIVE


# --- GET /api/me/tickets/ --------------------------------------------------------------------


def test_api_my_tickets(client, student, make_ticket, make_event, django_assert_max_num_queries):
    tickets = [make_ticket(user=student, event=make_event()) for _ in range(5)]
    make_ticket()  # someone else's
    client.force_login(student)
    client.get("/api/me/tickets/")  # warm the session cache
    # Session + user + one query for all tickets with their events, however many tickets.
    with django_assert_max_num_queries(3):
        response = client.get("/api/me/tickets/")
    assert response.status_code == 200
    data = response.json()
    assert [item["redeem_code"] for item in data] == [t.redeem_code for t in reversed(tickets)]
    first = data[0]
    assert first["code"] == qr_payload_for(tickets[-1].id)
    assert first["url"] == f"/tickets/{tickets[-1].id}/"
    assert first["event"] == tickets[-1].event.slug
    assert first["status"] == "active"


def test_api_my_tickets_anonymous_and_wrong_method(client, student):
    response = client.get("/api/me/tickets/")
    assert response.status_code == 401 and "error" in response.json()
    client.force_login(student)
    response = client.post("/api/me/tickets/")
    assert response.status_code == 405 and "error" in response.json()
    assert client.get("/api/me/tickets/").json() == []


# --- POST /api/checkin/ -------------------------------------------------------------------------


def test_checkin_api_admits_then_already_admitted(client, ticket, staff, student):
    client.force_login(staff)
    first = post_json(client, "/api/checkin/", {"code": qr_payload_for(ticket.id), "event": ticket.event.slug})
    assert first.status_code == 200
    body = first.json()
    assert body["result"] == "admitted"
    assert body["ticket"]["nim"] == student.nim and body["ticket"]["holder_name"] == student.full_name
    assert body["admitted_at"] == body["ticket"]["admitted_at"]
    second = post_json(client, "/api/checkin/", {"code": ticket.redeem_code.lower(), "event": ticket.event.slug})
    assert second.json()["result"] == "already_admitted"
    assert second.json()["ticket"]["admitted_by"] == staff.full_name


def test_checkin_api_wrong_event_and_invalid(client, ticket, staff, make_event):
    client.force_login(staff)
    other = make_event(**door_open_times())
    assert (
        post_json(client, "/api/checkin/", {"code": ticket.redeem_code, "event": other.slug}).json()["result"]
        == "wrong_event"
    )
    unknown = "ACDE-FGHJ" if ticket.redeem_code != "ACDEFGHJ" else "X"
    invalid = post_json(client, "/api/checkin/", {"code": unknown, "event": ticket.event.slug})
    assert invalid.status_code == 200
    assert invalid.json() == {
        "result": "invalid",
        "reason": "unknown",
        "conflict": False,
        "ticket": None,
        "admitted_at": None,
    }


def test_checkin_api_refuses_anonymous_students_and_wrong_methods(client, ticket, student):
    body = {"code": ticket.redeem_code, "event": ticket.event.slug}
    response = post_json(client, "/api/checkin/", body)
    assert response.status_code == 401 and "error" in response.json()
    client.force_login(student)
    response = post_json(client, "/api/checkin/", body)
    assert response.status_code == 403 and "error" in response.json()
    response = client.get("/api/checkin/")
    assert response.status_code == 405 and "error" in response.json()
    assert Ticket.objects.get(pk=ticket.pk).admitted_at is None


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json",
        "[1, 2]",
        '"ACDEFGHJ"',
        "{}",
        '{"code": ""}',
        '{"code": "   "}',
        '{"code": 12345678}',
        '{"code": null}',
        json.dumps({"code": "ACDEFGHJ", "event": ["x"]}),
        b"\xff\xfe\x00garbage",
    ],
)
def test_checkin_api_malformed_bodies_are_400(client, staff, body):
    client.force_login(staff)
    response = post_json(client, "/api/checkin/", body)
    assert response.status_code == 400, response.content
    assert isinstance(response.json()["error"], str)
    # A body that is no JSON object is the shared parser's bad_json (common/body.py).
    assert response.json()["code"] in {"bad_request", "bad_json"}


@pytest.mark.parametrize("sent", [None, "", "missing"])
def test_checkin_api_without_an_event_is_400_event_required(client, staff, ticket, sent):
    """The door is bound to one event: a code alone (the old "any event") is refused."""
    client.force_login(staff)
    body = {"code": ticket.redeem_code} if sent == "missing" else {"code": ticket.redeem_code, "event": sent}
    response = post_json(client, "/api/checkin/", body, headers={"Accept-Language": "en"})
    assert response.status_code == 400
    assert response.json()["code"] == "event_required"
    assert "event" in response.json()["error"]
    assert Ticket.objects.get(pk=ticket.pk).admitted_at is None


def test_checkin_api_unknown_or_unpublished_event_is_404(client, staff, ticket, make_event):
    client.force_login(staff)
    draft = make_event(status="draft", **door_open_times())
    for slug in ("no-such-event", draft.slug):
        response = post_json(client, "/api/checkin/", {"code": ticket.redeem_code, "event": slug})
        assert response.status_code == 404 and response.json()["code"] == "unknown_event"
    assert Ticket.objects.get(pk=ticket.pk).admitted_at is None


def test_a_ticket_for_next_weeks_event_is_wrong_event_at_todays_door(client, staff, student, event, make_event):
    """Today's door admits today's tickets only: next week's ticket is not let in here."""
    now = timezone.now()
    next_week = make_event(
        claim_opens_at=now - timedelta(minutes=1),
        claim_closes_at=now + timedelta(days=6),
        starts_at=now + timedelta(days=7),
    )
    from tools.testing import issue_ticket

    later = issue_ticket(event_id=next_week.id, user_id=student.id)
    client.force_login(staff)
    response = post_json(client, "/api/checkin/", {"code": later.redeem_code, "event": event.slug})
    assert response.status_code == 200 and response.json()["result"] == "wrong_event"
    assert response.json()["ticket"]["event"] == next_week.slug
    # And at next week's door today, the door is not open yet.
    response = post_json(
        client, "/api/checkin/", {"code": later.redeem_code, "event": next_week.slug}, headers={"Accept-Language": "en"}
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "outside_door_window" and "opens at" in body["error"]
    assert body["door_opens_at"] and body["door_closes_at"]
    assert Ticket.objects.get(pk=later.pk).admitted_at is None


@pytest.mark.parametrize(
    ("starts_in", "open_"),
    [
        (timedelta(hours=2, minutes=1), False),  # before the door opens (2 h before the start)
        (timedelta(hours=1, minutes=59), True),
        (timedelta(hours=-5, minutes=-59), True),
        (timedelta(hours=-6, minutes=-1), False),  # the door closed 6 h after the start
    ],
)
def test_the_door_window_runs_from_two_hours_before_to_six_hours_after_the_start(
    client, staff, student, make_event, starts_in, open_
):
    event = make_event(**door_open_times())
    ticket = issue_ticket(event_id=event.id, user_id=student.id)
    now = timezone.now()
    Event.objects.filter(pk=event.pk).update(
        starts_at=now + starts_in,
        claim_opens_at=min(now, now + starts_in) - timedelta(days=1),
        claim_closes_at=min(now, now + starts_in) - timedelta(hours=12),
    )
    client.force_login(staff)
    response = post_json(client, "/api/checkin/", {"code": ticket.redeem_code, "event": event.slug})
    if open_:
        assert response.status_code == 200 and response.json()["result"] == "admitted"
    else:
        assert response.status_code == 409 and response.json()["code"] == "outside_door_window"
        assert Ticket.objects.get(pk=ticket.pk).admitted_at is None


def test_checkin_api_oversized_body_is_413(client, staff):
    client.force_login(staff)
    response = post_json(client, "/api/checkin/", json.dumps({"code": "A" * 10_000}))
    assert response.status_code == 413, response.content
    assert response.json()["code"] == "too_large"


@pytest.mark.parametrize("code", ["ÄÖÜ-ßéñ😀", "TW1.ab.cd", "\u0000ACDEFGHJ", "TW1." + "f" * 150, "<script>"])
def test_checkin_api_odd_codes_are_invalid_not_500(client, staff, event, code):
    client.force_login(staff)
    response = post_json(client, "/api/checkin/", {"code": code, "event": event.slug})
    assert response.status_code == 200
    assert response.json()["result"] == "invalid"


def test_checkin_api_limits_guessing_per_staff_user(client, ticket, staff, make_user, settings):
    settings.RATELIMIT_CHECKIN_INVALID = "5/m"
    client.force_login(staff)
    guesses = [
        g for g in ("ACDEFGHJ", "ACDEFGHK", "ACDEFGHM", "ACDEFGHN", "ACDEFGHP", "ACDEFGHQ") if g != ticket.redeem_code
    ]
    guesses = guesses[:5]
    for guess in guesses:
        assert post_json(client, "/api/checkin/", {"code": guess, "event": ticket.event.slug}).json()["result"] == (
            "invalid"
        )
    blocked = post_json(client, "/api/checkin/", {"code": ticket.redeem_code, "event": ticket.event.slug})
    assert blocked.status_code == 429
    assert blocked.json()["error"] and 1 <= blocked.json()["retry_after"] <= 60
    assert 1 <= int(blocked["Retry-After"]) <= 60
    assert Ticket.objects.get(pk=ticket.pk).admitted_at is None

    # Another staff member at another door is not affected.
    client.force_login(make_user(roles=(DOOR_STAFF,)))
    body = {"code": ticket.redeem_code, "event": ticket.event.slug}
    assert post_json(client, "/api/checkin/", body).json()["result"] == "admitted"


def test_checkin_api_genuine_scans_do_not_count_towards_the_limit(client, staff, make_ticket, settings):
    settings.RATELIMIT_CHECKIN_INVALID = "2/m"
    client.force_login(staff)
    for _ in range(4):
        ticket = make_ticket()
        body = {"code": ticket.redeem_code, "event": ticket.event.slug}
        assert post_json(client, "/api/checkin/", body).json()["result"] == "admitted"
        assert post_json(client, "/api/checkin/", body).json()["result"] == ("already_admitted")


# --- /scan/ ----------------------------------------------------------------------------------------


def test_scan_page_preselects_the_event_on_now_not_the_mornings_one(client, staff, make_event):
    """At 13:30 the 08:00 talk is still within its door hours, but the 13:00 talk is the one on."""
    now = timezone.now()
    past_window = {"claim_opens_at": now - timedelta(days=2), "claim_closes_at": now - timedelta(days=1)}
    morning = make_event(title="Morning", starts_at=now - timedelta(hours=5, minutes=30), **past_window)
    afternoon = make_event(title="Afternoon", starts_at=now - timedelta(minutes=30), **past_window)
    make_event(title="Next week", starts_at=now + timedelta(days=7), claim_closes_at=now + timedelta(days=6))
    long_over = make_event(title="Yesterday", starts_at=now - timedelta(days=1), **past_window)
    client.force_login(staff)
    html = client.get("/scan/").content.decode()
    assert f'value="{afternoon.slug}" data-opens' in html
    assert f'<option value="{afternoon.slug}"' in html and " selected>Afternoon" in html
    assert " selected>Morning" not in html and f'value="{morning.slug}"' in html
    assert long_over.slug not in html  # its door closed: not offered
    assert 'value=""' not in html  # no "any event" choice any more


def test_scan_page_without_an_open_door_preselects_the_next_and_offers_no_any_event(client, staff, make_event):
    now = timezone.now()
    soon = make_event(title="Tomorrow", starts_at=now + timedelta(days=1), claim_closes_at=now + timedelta(hours=20))
    client.force_login(staff)
    html = client.get("/scan/").content.decode()
    assert " selected>Tomorrow" in html and f'value="{soon.slug}"' in html
    assert "Any event" not in html and "Semua acara" not in html


def test_scan_page_for_staff_lists_published_events(client, staff, make_event):
    published = make_event(title="Open lecture")
    draft = make_event(title="Secret draft", status="draft")
    client.force_login(staff)
    response = client.get("/scan/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'value="{published.slug}"' in html and draft.slug not in html
    assert "vendor/qr-scanner/qr-scanner.min.js" in html
    assert 'type="module"' in html and "<script>" not in html


def test_scan_page_anonymous_goes_to_the_login_page_door_staff_can_use(client):
    # Door staff have no admin access (not is_staff): the admin's login would refuse them.
    response = client.get("/scan/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/scan/"


def test_scan_page_refuses_students_with_a_sentence(client, student):
    client.force_login(student)
    response = client.get("/scan/", headers={"Accept-Language": "en"})
    assert response.status_code == 403
    assert "for door staff only" in response.content.decode()
    indonesian = client.get("/scan/", headers={"Accept-Language": "id"})
    assert "hanya untuk panitia pintu" in indonesian.content.decode()


def test_scan_page_wrong_method(client, staff):
    client.force_login(staff)
    assert client.post("/scan/").status_code == 405


def test_event_start_hides_give_back(client, student, make_event, make_ticket):
    now = timezone.now()
    event = make_event(
        claim_opens_at=now - timedelta(days=2),
        claim_closes_at=now - timedelta(hours=2),
        starts_at=now + timedelta(days=1),
    )
    ticket = Ticket.objects.create(event=event, user=student, redeem_code="ACDEFGHJ")
    Event.objects.filter(pk=event.pk).update(starts_at=now - timedelta(minutes=5))
    client.force_login(student)
    assert f"/tickets/{ticket.id}/return/" not in client.get(f"/tickets/{ticket.id}/").content.decode()
    client.post(f"/tickets/{ticket.id}/return/")
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.ACTIVE


def test_checkin_keeps_working_while_redis_is_unavailable(client, staff, ticket, settings):
    """With the Redis breaker open the door keeps admitting, and guessing stays bounded: invalid
    scans are counted in this process's memory, as every exact budget is while Redis is away."""
    from common.redis import redis_breaker

    settings.RATELIMIT_CHECKIN_INVALID = "2/m"
    client.force_login(staff)
    breaker = redis_breaker()
    try:
        while breaker.state != "open":
            breaker.record_failure()
        body = {"code": ticket.redeem_code, "event": ticket.event.slug}
        assert post_json(client, "/api/checkin/", body).json()["result"] == "admitted"
        forged = {"code": "TW1.forged.code", "event": ticket.event.slug}
        for _ in range(2):
            assert post_json(client, "/api/checkin/", forged).json()["result"] == "invalid"
        assert post_json(client, "/api/checkin/", forged).status_code == 429
    finally:
        breaker.reset()
