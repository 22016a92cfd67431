from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import Event
from tools.testing import issue_ticket


def form_data(event: Event | None = None, **overrides):
    now = timezone.localtime()
    data = {
        "slug": "admin-event",
        "title": "Admin event",
        "speaker": "S",
        "description": "",
        "venue": "V",
        "starts_at_0": (now + timedelta(days=2)).strftime("%Y-%m-%d"),
        "starts_at_1": "10:00:00",
        "claim_opens_at_0": now.strftime("%Y-%m-%d"),
        "claim_opens_at_1": "00:00:00",
        "claim_closes_at_0": (now + timedelta(days=1)).strftime("%Y-%m-%d"),
        "claim_closes_at_1": "00:00:00",
        "capacity": "10",
        "status": "published",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_admin_creates_event_through_the_service(admin_client):
    response = admin_client.post("/admin/events/event/add/", form_data())
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = Event.objects.get(slug="admin-event")
    assert (event.capacity, event.remaining, event.status) == (10, 10, "published")


@pytest.mark.django_db
def test_admin_window_order_is_a_form_error(admin_client):
    now = timezone.localtime()
    late = (now + timedelta(days=3)).strftime("%Y-%m-%d")
    response = admin_client.post("/admin/events/event/add/", form_data(claim_closes_at_0=late))
    assert response.status_code == 200
    assert "claim_closes_at" in response.context["adminform"].form.errors
    early = (now - timedelta(days=3)).strftime("%Y-%m-%d")
    response = admin_client.post("/admin/events/event/add/", form_data(claim_closes_at_0=early))
    assert response.status_code == 200
    assert "claim_closes_at" in response.context["adminform"].form.errors
    assert not Event.objects.filter(slug="admin-event").exists()


@pytest.mark.django_db
def test_admin_refuses_capacity_below_issued(admin_client, make_event, student, other_student):
    event = make_event(capacity=10, slug="cap-event")
    issue_ticket(event_id=event.pk, user_id=student.pk)
    issue_ticket(event_id=event.pk, user_id=other_student.pk)
    url = f"/admin/events/event/{event.pk}/change/"
    response = admin_client.post(url, form_data(slug="cap-event", capacity="1"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "2" in str(errors["capacity"])
    response = admin_client.post(url, form_data(slug="cap-event", capacity="4"))
    assert response.status_code == 302
    event.refresh_from_db()
    assert (event.capacity, event.remaining) == (4, 2)


@pytest.mark.django_db
def test_admin_list_shows_counts_and_actions(admin_client, make_event, student, staff):
    event = make_event(capacity=3)
    ticket = issue_ticket(event_id=event.pk, user_id=student.pk)
    ticket.admitted_at = timezone.now()
    ticket.admitted_by = staff
    ticket.save()
    response = admin_client.get("/admin/events/event/")
    assert response.status_code == 200
    draft = make_event(status="draft")
    admin_client.post("/admin/events/event/", {"action": "publish_events", "_selected_action": [draft.pk], "index": 0})
    draft.refresh_from_db()
    assert draft.status == "published"
    admin_client.post("/admin/events/event/", {"action": "cancel_events", "_selected_action": [draft.pk]})
    draft.refresh_from_db()
    assert draft.status == "cancelled"
    response = admin_client.post(
        "/admin/events/event/", {"action": "export_attendees_csv", "_selected_action": [event.pk]}, follow=True
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["event", "nim", "full_name", "email", "redeem_code", "issued_at", "admitted_at", "admitted_by"]
    assert rows[1][1] == student.nim
    assert rows[1][4] == ticket.redeem_code
    assert rows[1][7] == staff.username


@pytest.mark.django_db
def test_admin_counts_annotation(make_event, student, other_student):
    from events.selectors import event_list_with_counts

    event = make_event(capacity=3)
    issue_ticket(event_id=event.pk, user_id=student.pk)
    issue_ticket(event_id=event.pk, user_id=other_student.pk)
    row = event_list_with_counts().get(pk=event.pk)
    assert (row.issued_count, row.admitted_count) == (2, 0)


@pytest.mark.django_db
def test_admin_refused_to_students(client, student):
    client.force_login(student)
    response = client.get("/admin/events/event/")
    assert response.status_code == 302
