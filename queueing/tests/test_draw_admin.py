"""The organiser's side of the draw, in the admin: entering the public random value once, after
the freeze, when it is due; what the admin shows on the day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from events.models import Event
from queueing.draw import draw_due, draw_freeze, pseudonym_for
from queueing.tests.test_draw import claim_as, published, shuffled_fields, verify
from tools.testing import bulk_students

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen(make_event):
    """A shuffled event of five pre-queue claims, frozen at opening, its value due a minute later."""
    event = make_event(capacity=3, **shuffled_fields())
    for user in bulk_students(5):
        claim_as(user, event.slug)
    opens = timezone.now() - timedelta(seconds=30)
    Event.objects.filter(pk=event.pk).update(claim_opens_at=opens, draw_beacon_due_at=opens + timedelta(minutes=1))
    assert draw_freeze(event_id=event.pk, now=opens + timedelta(seconds=1))
    event.refresh_from_db()
    return event


def beacon_url(event: Event) -> str:
    return f"/admin/events/event/{event.pk}/draw-value/"


def test_the_organiser_enters_the_value_once_it_is_due_and_the_draw_follows(admin_client, frozen):
    change = admin_client.get(f"/admin/events/event/{frozen.pk}/change/").content.decode()
    assert 'id="draw-beacon-link"' in change and frozen.draw_seed not in change
    page = admin_client.get(beacon_url(frozen)).content.decode()
    assert frozen.draw_beacon_source in page and frozen.draw_freeze_hash in page
    assert "Nilai acak publik" in page  # Indonesian first

    # A minute early: refused, in Indonesian, nothing recorded.
    response = admin_client.post(beacon_url(frozen), {"value": "too early"})
    assert response.status_code == 200 and "belum diterbitkan" in response.content.decode()
    frozen.refresh_from_db()
    assert frozen.draw_beacon == ""

    Event.objects.filter(pk=frozen.pk).update(draw_beacon_due_at=timezone.now().replace(microsecond=0))
    response = admin_client.post(beacon_url(frozen), {"value": "  8f1e2d  "})
    assert response.status_code == 302 and response.url.endswith(f"/admin/events/event/{frozen.pk}/change/")
    frozen.refresh_from_db()
    organiser = admin_client.get("/admin/").wsgi_request.user
    assert (frozen.draw_beacon, frozen.draw_beacon_entered_by_id) == ("8f1e2d", organiser.pk)
    assert frozen.draw_beacon_entered_at >= frozen.draw_frozen_at
    # Once only.
    again = admin_client.post(beacon_url(frozen), {"value": "another"})
    assert again.status_code == 200 and "sudah dimasukkan" in again.content.decode()
    assert draw_due() == [frozen.pk]
    frozen.refresh_from_db()
    assert frozen.draw_revealed_at is not None
    assert frozen.draw_seed in admin_client.get(f"/admin/events/event/{frozen.pk}/change/").content.decode()


def test_before_the_freeze_there_is_nothing_to_enter(admin_client, make_event):
    event = make_event(**shuffled_fields())
    assert 'id="draw-beacon-link"' not in admin_client.get(f"/admin/events/event/{event.pk}/change/").content.decode()
    response = admin_client.post(beacon_url(event), {"value": "v"})
    assert response.status_code == 200 and "belum dibekukan" in response.content.decode()
    event.refresh_from_db()
    assert event.draw_beacon == ""


def test_the_event_list_warns_when_a_due_value_is_not_entered(admin_client, frozen):
    assert "menunggu nilai acak publiknya" not in admin_client.get("/admin/events/event/").content.decode()
    Event.objects.filter(pk=frozen.pk).update(draw_beacon_due_at=timezone.now() - timedelta(seconds=1))
    listing = admin_client.get("/admin/events/event/").content.decode()
    assert "menunggu nilai acak publiknya" in listing and beacon_url(frozen) in listing


def test_only_organisers_who_may_change_the_event_enter_the_value(make_user, frozen):
    Event.objects.filter(pk=frozen.pk).update(draw_beacon_due_at=timezone.now().replace(microsecond=0))
    assert Client().get(beacon_url(frozen)).status_code == 302  # to the admin's login
    door = Client()
    door.force_login(make_user(staff=True))
    assert door.post(beacon_url(frozen), {"value": "v"}).status_code == 403
    frozen.refresh_from_db()
    assert frozen.draw_beacon == ""


def test_a_source_named_only_after_the_freeze_is_recorded_and_shown_to_everyone(admin_client, make_event, tmp_path):
    """An event that named no source before its freeze (made before the field existed) is still
    drawn, every claim decided; the published data show the late source to anyone who checks."""
    event = make_event(capacity=3, opening_mode=Event.OpeningMode.SHUFFLE_AT_OPEN, opens_in=3600)
    users = bulk_students(3)
    ids = [claim_as(user, event.slug).json()["queue_id"] for user in users]
    Event.objects.filter(pk=event.pk).update(claim_opens_at=timezone.now() - timedelta(seconds=1))
    draw_freeze(event_id=event.pk)
    assert admin_client.post(beacon_url(event), {"value": "v"}).status_code == 200  # the source is asked for
    response = admin_client.post(beacon_url(event), {"value": "v", "source": "drand quicknet round 1"})
    assert response.status_code == 302
    draw_due()
    data = published(event)
    assert sorted(data["order"]) == sorted(pseudonym_for(q) for q in ids)
    checked = verify(tmp_path, data)
    assert checked.returncode == 1 and "match the freeze hash" in checked.stderr
