from __future__ import annotations

from datetime import datetime

import pytest
from django.urls import reverse

KEYS = {
    "slug",
    "title",
    "speaker",
    "venue",
    "starts_at",
    "claim_opens_at",
    "claim_closes_at",
    "capacity",
    "remaining",
    "status",
}


@pytest.mark.django_db
def test_list_shape_hides_drafts(client, make_event):
    published = make_event(capacity=5)
    make_event(status="draft")
    cancelled = make_event(status="cancelled")
    response = client.get("/api/events/")
    assert response.status_code == 200
    body = response.json()
    assert [item["slug"] for item in body] == [published.slug, cancelled.slug]
    for item in body:
        assert set(item) == KEYS
        for key in ("starts_at", "claim_opens_at", "claim_closes_at"):
            parsed = datetime.fromisoformat(item[key])
            assert parsed.utcoffset() is not None
            assert item[key].endswith("+07:00")
    assert body[0]["status"] == "open"
    assert body[0]["capacity"] == 5
    assert body[0]["remaining"] == 5
    assert body[1]["status"] == "cancelled"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"opens_in": 3600}, "not_open"),
        ({"remaining": 0}, "sold_out"),
        ({"status": "cancelled"}, "cancelled"),
    ],
)
def test_detail_status(client, make_event, fields, status):
    event = make_event(**fields)
    response = client.get(f"/api/events/{event.slug}/")
    assert response.status_code == 200
    assert response.json()["status"] == status
    assert response.json()["slug"] == event.slug


@pytest.mark.django_db
def test_closed_status(client, make_event):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    event = make_event(claim_opens_at=now - timedelta(days=2), claim_closes_at=now - timedelta(days=1), starts_at=now)
    assert client.get(f"/api/events/{event.slug}/").json()["status"] == "closed"


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["does-not-exist", "bad%20slug", "a" * 81, "%3Cscript%3E", "..", "ü"])
def test_detail_404_is_json(client, slug):
    response = client.get(f"/api/events/{slug}/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


@pytest.mark.django_db
def test_draft_is_404(client, make_event):
    event = make_event(status="draft")
    assert client.get(f"/api/events/{event.slug}/").status_code == 404
    assert client.get(reverse("claims:event", args=[event.slug])).status_code == 404


@pytest.mark.django_db
def test_wrong_method_is_json_405(client, event, student):
    client.force_login(student)
    for url in ("/api/events/", f"/api/events/{event.slug}/"):
        response = client.post(url)
        assert response.status_code == 405
        assert response.json()["error"]


@pytest.mark.django_db
def test_payloads_take_one_query(make_event, django_assert_num_queries):
    from events import selectors

    event = make_event()
    make_event()
    with django_assert_num_queries(1):
        assert selectors.event_public_payload(event.slug)["slug"] == event.slug
    with django_assert_num_queries(1):
        assert len(selectors.events_public_payload()) == 2
    with django_assert_num_queries(0):
        assert selectors.event_public_payload("x" * 81) is None
