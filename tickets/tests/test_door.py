"""The door beyond one online scan: retries (nonce), offline scans synced later (first scan wins,
exactly one admission), the student card, the door list and its deltas, the door's figures."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.roles import DOOR_STAFF
from tickets.checkin import CheckIn, Scan, SyncedScan, door_sync, ticket_check_in
from tickets.codes import qr_payload_for
from tickets.doorlist import door_figures, door_list
from tickets.models import DoorScan, Ticket
from tickets.services import ticket_issue_many, ticket_return
from tools.testing import bulk_students, door_open_times, race_values

pytestmark = pytest.mark.django_db


def post_json(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


def ms(when) -> int:
    return int(when.timestamp() * 1000)


def synced(ticket, nonce: str, at, code: str | None = None) -> SyncedScan:
    return SyncedScan(nonce=nonce, code=code or ticket.redeem_code, scanned_at=at)


def sync(staff, event, scans, device: str, **kwargs):
    return door_sync(
        event_slug=event.slug, staff_user=staff, scans=scans, device_id=f"id-{device}", device_name=device, **kwargs
    )


# --- a scan sent twice (nonce) -----------------------------------------------------------------


def test_a_scan_sent_again_with_its_nonce_is_applied_once(client, staff, ticket):
    client.force_login(staff)
    body = {"code": ticket.redeem_code, "event": ticket.event.slug, "nonce": "n-1", "device_name": "pintu1"}
    first = post_json(client, "/api/checkin/", body).json()
    again = post_json(client, "/api/checkin/", body).json()
    assert first["result"] == again["result"] == "admitted"
    assert again["ticket"]["admitted_device"] == "pintu1"
    assert DoorScan.objects.filter(nonce="n-1").count() == 1
    # Without a nonce, the same code again is a second scan: already admitted.
    body.pop("nonce")
    assert post_json(client, "/api/checkin/", body).json()["result"] == "already_admitted"


def test_an_online_scan_that_timed_out_and_is_synced_again_is_no_conflict(staff, ticket):
    """The phone gave up waiting (the server had admitted), admitted offline with the same nonce,
    and uploads that scan later: the server recognises it, no conflict."""
    online = ticket_check_in(
        code=ticket.redeem_code, staff_user=staff, event_slug=ticket.event.slug, scan=Scan(nonce="n-2")
    )
    assert online.result == CheckIn.ADMITTED
    [answer] = sync(staff, ticket.event, [synced(ticket, "n-2", timezone.now())], "pintu1")
    assert answer.result == CheckIn.ADMITTED and not answer.conflict
    assert DoorScan.objects.filter(ticket=ticket).count() == 1


# --- offline scans synced later ------------------------------------------------------------------


def test_two_phones_offline_first_scan_wins_whatever_order_they_sync_in(staff, door_staff, ticket):
    now = timezone.now()
    early, late = now - timedelta(minutes=3), now - timedelta(minutes=1)
    # The later scan's phone gets its connection back first.
    [second] = sync(door_staff, ticket.event, [synced(ticket, "late", late)], "pintu2")
    assert second.result == CheckIn.ADMITTED
    [first] = sync(staff, ticket.event, [synced(ticket, "early", early)], "pintu1")
    assert first.result == CheckIn.ADMITTED and not first.conflict

    ticket.refresh_from_db()
    assert ticket.admitted_at == early and ticket.admitted_device == "pintu1" and ticket.admitted_by == staff
    assert DoorScan.objects.filter(ticket=ticket, result="admitted").count() == 1
    displaced = DoorScan.objects.get(nonce="late")
    assert displaced.result == "already_admitted" and displaced.conflict
    # The phone that made the later scan hears of it in its next delta.
    feed = door_list(event=ticket.event, since=now - timedelta(minutes=5), device_id="id-pintu2")["conflicts"]
    assert [(c["nonce"], c["admitted_by"]) for c in feed] == [("late", "pintu1")]
    assert door_list(event=ticket.event, since=now, device_id="id-pintu1")["conflicts"] == []
    # Sent again (a retry), nothing changes, and the retry learns the truth.
    [again] = sync(door_staff, ticket.event, [synced(ticket, "late", late)], "pintu2")
    assert again.result == CheckIn.ALREADY_ADMITTED and again.conflict
    assert DoorScan.objects.filter(ticket=ticket).count() == 2


def test_a_batch_is_applied_in_scan_time_order(staff, ticket, make_ticket):
    other = make_ticket(event=ticket.event)
    now = timezone.now()
    scans = [
        synced(ticket, "b", now - timedelta(seconds=10)),
        synced(other, "c", now - timedelta(seconds=5)),
        synced(ticket, "a", now - timedelta(seconds=30)),
    ]
    answers = {answer.nonce: answer for answer in sync(staff, ticket.event, scans, "pintu1")}
    assert answers["a"].result == CheckIn.ADMITTED
    assert answers["b"].result == CheckIn.ALREADY_ADMITTED and answers["b"].conflict
    assert answers["c"].result == CheckIn.ADMITTED
    assert answers["b"].as_dict()["ticket"]["admitted_at"] == (now - timedelta(seconds=30)).isoformat()


def test_an_online_admission_is_never_displaced_by_a_later_offline_scan(staff, door_staff, ticket):
    ticket_check_in(code=ticket.redeem_code, staff_user=staff, event_slug=ticket.event.slug)
    [late] = sync(door_staff, ticket.event, [synced(ticket, "x", timezone.now())], "pintu2")
    assert late.result == CheckIn.ALREADY_ADMITTED and late.conflict
    assert Ticket.objects.get(pk=ticket.pk).admitted_by == staff


def test_a_phone_clock_far_off_is_corrected_by_the_batch_s_own_clock(client, staff, ticket):
    client.force_login(staff)
    now = timezone.now()
    phone_now = now - timedelta(hours=1)  # the phone's clock is an hour behind
    body = {
        "device_id": "p1",
        "device_name": "pintu1",
        "sent_at": ms(phone_now),
        "scans": [{"nonce": "n", "code": ticket.redeem_code, "scanned_at": ms(phone_now - timedelta(seconds=40))}],
    }
    answer = post_json(client, f"/api/door/{ticket.event.slug}/sync/", body).json()["results"][0]
    assert answer["result"] == "admitted"
    ticket.refresh_from_db()
    assert abs((ticket.admitted_at - (now - timedelta(seconds=40))).total_seconds()) < 5


def test_a_synced_scan_made_while_the_door_was_closed_is_a_conflict(staff, ticket):
    before = ticket.event.starts_at - timedelta(hours=3)  # the door opens 2 h before the start
    [answer] = sync(staff, ticket.event, [synced(ticket, "n", before)], "pintu1")
    assert answer.result == CheckIn.INVALID and answer.reason == "outside_door_window" and answer.conflict
    assert Ticket.objects.get(pk=ticket.pk).admitted_at is None


def test_a_ticket_given_back_before_the_sync_is_a_conflict_not_an_admission(staff, student, ticket):
    ticket_return(ticket_id=ticket.id, user_id=student.id)
    [answer] = sync(staff, ticket.event, [synced(ticket, "n", timezone.now())], "pintu1")
    assert answer.result == CheckIn.INVALID and answer.reason == "returned" and answer.conflict


@pytest.mark.slow
def test_two_phones_syncing_the_same_tickets_at_once_admit_each_exactly_once(transactional_db, make_user, make_event):
    event = make_event(**door_open_times())
    students = bulk_students(30)
    tickets = list(ticket_issue_many(event_id=event.id, user_ids=[s.id for s in students]).values())
    phones = [make_user(roles=(DOOR_STAFF,)) for _ in range(2)]
    now = timezone.now()

    def upload(index):
        scans = [
            synced(t, f"{index}-{n}", now - timedelta(seconds=60 - n - index * 0.5)) for n, t in enumerate(tickets)
        ]
        return sync(phones[index], event, scans, f"pintu{index}")

    answers = race_values([lambda: upload(0), lambda: upload(1)])
    assert sum(a.result == CheckIn.ADMITTED and not a.conflict for batch in answers for a in batch) >= len(tickets)
    assert DoorScan.objects.filter(event=event, result="admitted").count() == len(tickets)
    assert Ticket.objects.filter(event=event, admitted_at__isnull=False).count() == len(tickets)
    # Phone 0 scanned each ticket half a second before phone 1: its scans hold every admission.
    assert set(Ticket.objects.filter(event=event).values_list("admitted_device", flat=True)) == {"pintu0"}
    assert DoorScan.objects.filter(event=event, conflict=True, device_name="pintu1").count() == len(tickets)


def test_unknown_codes_in_a_sync_spend_the_guessing_budget_like_online_scans(client, staff, ticket, settings):
    """A phone cannot guess redeem codes offline and sync the guesses to get round the guard."""
    settings.RATELIMIT_CHECKIN_INVALID = "2/m"
    client.force_login(staff)
    now = timezone.now()
    url = f"/api/door/{ticket.event.slug}/sync/"
    guesses = [{"nonce": f"g{i}", "code": f"TW1.guess.{i}", "scanned_at": ms(now)} for i in range(2)]
    answer = post_json(client, url, {"device_id": "p1", "sent_at": ms(now), "scans": guesses})
    assert [r["result"] for r in answer.json()["results"]] == ["invalid", "invalid"]
    refused = post_json(client, url, {"device_id": "p1", "sent_at": ms(now), "scans": []})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    online = post_json(client, "/api/checkin/", {"code": ticket.redeem_code, "event": ticket.event.slug})
    assert online.status_code == 429


def test_sync_refuses_malformed_batches(client, staff, ticket):
    client.force_login(staff)
    url = f"/api/door/{ticket.event.slug}/sync/"
    good = {"nonce": "n", "code": ticket.redeem_code, "scanned_at": ms(timezone.now())}
    for body in (
        {"device_id": "p", "sent_at": ms(timezone.now()), "scans": "nope"},
        {"device_id": "p", "sent_at": ms(timezone.now()), "scans": [{**good, "nonce": "bad nonce!"}]},
        {"device_id": "p", "sent_at": ms(timezone.now()), "scans": [{**good, "scanned_at": "yesterday"}]},
        {"device_id": "p", "sent_at": "now", "scans": [good]},
        {"sent_at": ms(timezone.now()), "scans": [good]},
        {"device_id": "p", "sent_at": ms(timezone.now()), "scans": [good] * 1001},
    ):
        response = post_json(client, url, body)
        assert response.status_code == 400, body
    assert post_json(client, "/api/door/no-such-event/sync/", {"device_id": "p"}).status_code == 400
    response = post_json(client, "/api/door/no-such-event/sync/", {"device_id": "p", "sent_at": 1, "scans": []})
    assert response.status_code == 404
    assert not DoorScan.objects.exists()


# --- the student card ---------------------------------------------------------------------------


def test_the_student_card_admits_its_holder_s_ticket_where_the_event_accepts_it(
    staff, student, make_event, make_ticket
):
    accepting = make_event(door_accepts_student_card=True, **door_open_times())
    ticket = make_ticket(user=student, event=accepting)
    answer = ticket_check_in(code=student.nim, staff_user=staff, event_slug=accepting.slug)
    assert answer.result == CheckIn.ADMITTED and answer.ticket == ticket
    assert ticket_check_in(code=student.nim, staff_user=staff, event_slug=accepting.slug).result == (
        CheckIn.ALREADY_ADMITTED
    )
    plain = make_event(**door_open_times())
    make_ticket(user=student, event=plain)
    refused = ticket_check_in(code=student.nim, staff_user=staff, event_slug=plain.slug)
    assert (refused.result, refused.reason) == (CheckIn.INVALID, "card_not_accepted")


def test_a_student_card_without_a_ticket_of_this_event_is_refused(
    staff, student, other_student, make_event, make_ticket
):
    accepting = make_event(door_accepts_student_card=True, **door_open_times())
    make_ticket(user=student)  # a ticket of another event
    answer = ticket_check_in(code=student.nim, staff_user=staff, event_slug=accepting.slug)
    assert (answer.result, answer.reason) == (CheckIn.INVALID, "card_no_ticket")


# --- the door list --------------------------------------------------------------------------------


def test_the_door_list_holds_the_event_s_active_tickets_and_deltas_follow_changes(
    client, door_staff, staff, student, make_event, make_ticket
):
    event = make_event(**door_open_times())
    mine, given_back, admitted = (
        make_ticket(user=student, event=event),
        make_ticket(event=event),
        make_ticket(event=event),
    )
    make_ticket()  # another event's ticket
    ticket_check_in(code=admitted.redeem_code, staff_user=staff, event_slug=event.slug, scan=Scan(device_name="pintu9"))
    ticket_return(ticket_id=given_back.id, user_id=given_back.user_id)
    client.force_login(door_staff)
    body = client.get(f"/api/door/{event.slug}/list/").json()
    assert body["full"] and body["fields"] == ["id", "code", "nim", "name", "admitted_at", "admitted_by"]
    rows = {row[1]: row for row in body["tickets"]}
    assert set(rows) == {mine.redeem_code, admitted.redeem_code}
    assert rows[mine.redeem_code] == [mine.id.hex[:16], mine.redeem_code, student.nim, student.full_name, 0, ""]
    assert rows[admitted.redeem_code][4] == int(Ticket.objects.get(pk=admitted.pk).admitted_at.timestamp())
    assert rows[admitted.redeem_code][5] == "pintu9"

    # Nothing changed: a delta a minute later is empty; then one admission and one give-back.
    later = client.get(f"/api/door/{event.slug}/list/", {"since": str(int(body["cursor"]) + 60_000)}).json()
    assert later["tickets"] == [] and later["gone"] == [] and not later["full"]
    cursor = body["cursor"]
    ticket_check_in(code=qr_payload_for(mine.id), staff_user=staff, event_slug=event.slug)
    delta = client.get(f"/api/door/{event.slug}/list/", {"since": cursor}).json()
    assert mine.redeem_code in {row[1] for row in delta["tickets"]}
    ticket_return_target = make_ticket(event=event)
    ticket_return(ticket_id=ticket_return_target.id, user_id=ticket_return_target.user_id)
    delta = client.get(f"/api/door/{event.slug}/list/", {"since": delta["cursor"]}).json()
    assert ticket_return_target.id.hex[:16] in delta["gone"]


def test_a_ticket_issued_long_ago_and_given_back_now_leaves_the_phones_door_lists(client, door_staff, ticket):
    Ticket.objects.filter(pk=ticket.pk).update(changed_at=timezone.now() - timedelta(hours=2))
    client.force_login(door_staff)
    url = f"/api/door/{ticket.event.slug}/list/"
    cursor = client.get(url).json()["cursor"]
    ticket_return(ticket_id=ticket.id, user_id=ticket.user_id)
    assert client.get(url, {"since": cursor}).json()["gone"] == [ticket.id.hex[:16]]


def test_the_door_list_of_500_tickets_is_well_under_100_kb(client, door_staff, make_event):
    event = make_event(capacity=500, **door_open_times())
    students = bulk_students(500)
    ticket_issue_many(event_id=event.id, user_ids=[s.id for s in students])
    client.force_login(door_staff)
    response = client.get(f"/api/door/{event.slug}/list/")
    assert len(response.json()["tickets"]) == 500
    assert len(response.content) < 60_000, len(response.content)


def test_the_door_list_and_sync_answer_unknown_events_with_404(client, door_staff, make_event):
    client.force_login(door_staff)
    draft = make_event(status="draft", **door_open_times())
    for slug in ("no-such-event", draft.slug):
        assert client.get(f"/api/door/{slug}/list/").json()["code"] == "unknown_event"


# --- the door's figures -------------------------------------------------------------------------


def test_door_figures_count_admissions_per_phone_waiting_scans_and_conflicts(
    client, staff, door_staff, make_event, make_ticket
):
    event = make_event(**door_open_times())
    tickets = [make_ticket(event=event) for _ in range(4)]
    now = timezone.now()
    online = Scan(device_id="a", device_name="pintu1")
    earlier = now - timedelta(seconds=10)
    ticket_check_in(code=tickets[0].redeem_code, staff_user=staff, event_slug=event.slug, scan=online, now=earlier)
    sync(door_staff, event, [synced(tickets[1], "x", now), synced(tickets[0], "y", now)], "pintu2", waiting=7)
    figures = door_figures(event=event)
    assert (figures["issued"], figures["admitted"], figures["arrivals_last_minute"]) == (4, 2, 2)
    assert figures["waiting_to_sync"] == 7 and figures["conflicts"] == 1
    phones = {phone["name"]: phone for phone in figures["phones"]}
    assert phones["pintu1"]["admitted"] == 1 and phones["pintu2"]["admitted"] == 1
    assert phones["pintu2"]["conflicts"] == 1 and phones["pintu2"]["waiting"] == 7
    [conflict] = figures["recent_conflicts"]
    assert conflict["device"] == "pintu2" and conflict["admitted_by"] == "pintu1"
    # The door phones read the same figures with their list; the dashboard's metrics too.
    client.force_login(door_staff)
    assert client.get(f"/api/door/{event.slug}/list/").json()["figures"]["conflicts"] == 1
