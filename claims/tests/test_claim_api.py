"""The claim endpoint, the status API and the waiting page: every answer of the contract."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from queueing.models import QueueEntry
from queueing.processing import queue_process_batch

CLAIM = "/api/events/{}/claim/"


def claim(client: Client, slug: str):
    return client.post(CLAIM.format(slug), content_type="application/json")


@pytest.fixture
def logged_in(client, student):
    client.force_login(student)
    return client


def test_claim_queues_the_student(logged_in, student, event):
    response = claim(logged_in, event.slug)
    assert response.status_code == 202
    body = response.json()
    assert set(body) >= {"queue_id", "status", "position", "eta_seconds"}
    assert body["status"] == "pending" and body["position"] == 1 and body["eta_seconds"] >= 0
    entry = QueueEntry.objects.get(public_id=body["queue_id"])
    assert (entry.user_id, entry.event_id, entry.status) == (student.id, event.id, "pending")


def test_claiming_again_returns_the_same_entry(logged_in, event):
    first = claim(logged_in, event.slug).json()
    again = claim(logged_in, event.slug)
    assert again.status_code == 200
    assert again.json()["queue_id"] == first["queue_id"]
    assert QueueEntry.objects.count() == 1


def test_position_counts_live_entries_ahead_in_the_same_event(client, make_user, make_event, event, enqueue):
    other_event = make_event()
    for _ in range(3):
        enqueue(make_user(), event)
    enqueue(make_user(), other_event)
    user = make_user()
    client.force_login(user)
    assert claim(client, event.slug).json()["position"] == 4


def test_already_holding_a_ticket_is_409_with_the_ticket(logged_in, student, event):
    from tools.testing import issue_ticket

    ticket = issue_ticket(event_id=event.id, user_id=student.id)
    response = claim(logged_in, event.slug)
    assert response.status_code == 409
    body = response.json()
    assert body["error"] and body["ticket"]["redeem_code"] == ticket.redeem_code
    assert body["ticket"]["url"] == f"/tickets/{ticket.id}/"
    assert not QueueEntry.objects.exists()


def test_sold_out_is_410_at_once_without_queueing(logged_in, make_event):
    sold = make_event(capacity=1, remaining=0)
    response = claim(logged_in, sold.slug)
    assert response.status_code == 410
    assert response.json()["error"] == "Tiket untuk acara ini sudah habis diklaim."
    assert not QueueEntry.objects.exists()


def test_sold_out_while_waiting_still_returns_the_entry(logged_in, event):
    first = claim(logged_in, event.slug).json()
    type(event).objects.filter(pk=event.pk).update(remaining=0)
    again = claim(logged_in, event.slug)
    assert again.status_code == 200 and again.json()["queue_id"] == first["queue_id"]


def test_closed_window_is_410(logged_in, make_event):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    closed = make_event(
        claim_opens_at=now - timedelta(days=2), claim_closes_at=now - timedelta(days=1), starts_at=now + timedelta(1)
    )
    response = claim(logged_in, closed.slug)
    assert response.status_code == 410 and response.json()["error"]


def test_not_open_yet_is_425_with_countdown(logged_in, make_event):
    later = make_event(opens_in=120)
    response = claim(logged_in, later.slug)
    assert response.status_code == 425
    body = response.json()
    assert body["error"] and 100 <= body["opens_in"] <= 120
    assert not QueueEntry.objects.exists()


def test_anonymous_is_401(client, event):
    response = claim(client, event.slug)
    assert response.status_code == 401 and response.json()["error"]


def test_unverified_student_is_403(client, make_user, event):
    client.force_login(make_user(verified=False))
    response = claim(client, event.slug)
    assert response.status_code == 403 and response.json()["error"]


def test_staff_is_not_a_student_403(client, staff, event):
    client.force_login(staff)
    assert claim(client, event.slug).status_code == 403


def test_unknown_or_draft_event_is_404(logged_in, make_event):
    assert claim(logged_in, "no-such-event").status_code == 404
    assert claim(logged_in, make_event(status="draft").slug).status_code == 404
    assert claim(logged_in, "%20weird..slug").status_code == 404


def test_wrong_method_is_405(logged_in, event):
    response = logged_in.get(CLAIM.format(event.slug))
    assert response.status_code == 405 and response["Allow"] == "POST" and response.json()["error"]


def test_claim_without_csrf_token_is_refused(student, event):
    client = Client(enforce_csrf_checks=True)
    client.force_login(student)
    assert claim(client, event.slug).status_code == 403
    assert not QueueEntry.objects.exists()


def test_claim_query_count_is_pinned(logged_in, event, django_assert_max_num_queries):
    claim(logged_in, event.slug)  # warm the session and user caches like a real burst
    QueueEntry.objects.all().delete()
    # The event, then one statement: ticket check + INSERT + place in line. (A third only if
    # the drain rate for the ETA has to be measured: no worker has published one here.)
    with django_assert_max_num_queries(3):
        assert claim(logged_in, event.slug).status_code == 202
    with django_assert_max_num_queries(6):
        assert claim(logged_in, event.slug).status_code == 200


def test_drain_rate_measured_on_the_web_side_is_shared_briefly(db, django_assert_num_queries):
    from common.redis import get_client
    from queueing.selectors import (
        DRAIN_RATE_FALLBACK_TTL,
        DRAIN_RATE_KEY,
        DRAIN_RATE_MEMO_SECONDS,
        PRIOR_DRAIN_RATE,
        _drain_rate_memo,
        drain_rate,
    )

    redis = get_client()
    redis.delete(DRAIN_RATE_KEY)
    with django_assert_num_queries(1):
        assert drain_rate() == PRIOR_DRAIN_RATE  # nothing decided yet: the prior
    assert 0 < redis.ttl(DRAIN_RATE_KEY) <= DRAIN_RATE_FALLBACK_TTL
    with django_assert_num_queries(0):
        assert drain_rate() == PRIOR_DRAIN_RATE
    redis.set(DRAIN_RATE_KEY, "123.0")  # what a worker publishes wins (once this process's memo is a second old)
    _drain_rate_memo[0] -= DRAIN_RATE_MEMO_SECONDS
    assert drain_rate() == 123.0


# --- status API --------------------------------------------------------------------------


def test_status_api_for_the_owner_then_the_ticket(logged_in, event):
    queue_id = claim(logged_in, event.slug).json()["queue_id"]
    body = logged_in.get(f"/api/queue/{queue_id}/").json()
    assert body["status"] == "pending" and body["position"] == 1 and body["ticket"] is None
    assert set(body) >= {"queue_id", "status", "position", "eta_seconds", "attempts", "reason", "ticket"}
    queue_process_batch()
    body = logged_in.get(f"/api/queue/{queue_id}/").json()
    assert body["status"] == "completed" and body["position"] is None and body["attempts"] == 1
    assert body["ticket"]["redeem_code"] and body["ticket"]["event"] == event.slug
    assert body["ticket"]["url"].startswith("/tickets/") and body["ticket"]["code"]


def test_status_api_gives_the_reason_of_a_refusal(client, make_user, make_event):
    event = make_event(capacity=1)
    first, second = make_user(), make_user()
    ids = []
    for user in (first, second):
        client.force_login(user)
        ids.append(claim(client, event.slug).json()["queue_id"])
    queue_process_batch()
    body = client.get(f"/api/queue/{ids[1]}/").json()
    assert body["status"] == "failed" and body["reason_code"] == "sold_out"
    assert "habis diklaim" in body["reason"] and body["ticket"] is None


def test_status_api_is_owner_only(client, logged_in, other_student, event):
    queue_id = claim(logged_in, event.slug).json()["queue_id"]
    other = Client()
    other.force_login(other_student)
    response = other.get(f"/api/queue/{queue_id}/")
    assert response.status_code == 404 and response.json()["error"]
    assert Client().get(f"/api/queue/{queue_id}/").status_code == 401
    assert logged_in.get(f"/api/queue/{uuid.uuid4()}/").status_code == 404
    assert logged_in.get("/api/queue/not-a-uuid/").status_code == 404
    assert logged_in.post(f"/api/queue/{queue_id}/").status_code == 405


# --- waiting page --------------------------------------------------------------------------


def test_waiting_page_for_the_owner_only(logged_in, other_student, event):
    queue_id = claim(logged_in, event.slug).json()["queue_id"]
    page = logged_in.get(f"/queue/{queue_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="queue-position"' in html and "js/queue.js" in html and "<script>" not in html
    other = Client()
    other.force_login(other_student)
    assert other.get(f"/queue/{queue_id}/").status_code == 404
    assert logged_in.get("/queue/nope/").status_code == 404
    anonymous = Client().get(f"/queue/{queue_id}/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert logged_in.post(f"/queue/{queue_id}/").status_code == 405


def test_waiting_page_shows_the_ticket_once_decided(logged_in, event):
    queue_id = claim(logged_in, event.slug).json()["queue_id"]
    queue_process_batch()
    html = logged_in.get(f"/queue/{queue_id}/").content.decode()
    entry = QueueEntry.objects.select_related("ticket").get(public_id=queue_id)
    assert entry.ticket.redeem_code in html


def test_the_early_checks_follow_the_organisers_edits(client, make_user, event, django_capture_on_commit_callbacks):
    """The claim reads the event from the cache; an edit or a cancellation reaches it at once."""
    from datetime import timedelta

    from django.utils import timezone

    from events.services import event_cancel, event_update

    client.force_login(make_user())
    assert claim(client, event.slug).status_code == 202  # the event row is now cached
    later = timezone.now() + timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        event_update(event_id=event.id, claim_opens_at=later)
    client.force_login(make_user())
    response = claim(client, event.slug)
    assert response.status_code == 425 and response.json()["opens_in"] > 3000
    with django_capture_on_commit_callbacks(execute=True):
        event_cancel(event_id=event.id)
    client.force_login(make_user())
    assert claim(client, event.slug).status_code == 404
    assert QueueEntry.objects.filter(event=event).count() == 1
