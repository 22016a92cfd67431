"""The opening mode of an event is fixed once claims wait in its pre-queue: changing it would
strand them (a first-come event never draws, and the batch scan never takes a pre-queue entry).
A shuffled opening names its public random value before opening, and the freeze fixes it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from events import services
from events.exceptions import DrawLocked, DrawSettingsInvalid, OpeningModeLocked
from events.models import Event
from events.tests.test_admin import form_data
from queueing.draw import draw_freeze
from queueing.models import QueueEntry

pytestmark = pytest.mark.django_db


SOURCE = "drand quicknet round 12345678, its randomness field"
TIMES = ("starts_at", "claim_opens_at", "claim_closes_at", "draw_beacon_due_at")


def _shuffled(make_event) -> Event:
    now = timezone.localtime().replace(microsecond=0)
    return make_event(
        slug="mode-event",
        capacity=10,
        opening_mode=Event.OpeningMode.SHUFFLE_AT_OPEN,
        claim_opens_at=now + timedelta(days=1),
        claim_closes_at=now + timedelta(days=2),
        starts_at=now + timedelta(days=3),
        draw_beacon_source=SOURCE,
        draw_beacon_due_at=now + timedelta(days=1, minutes=2),
    )


def _form(event: Event, **overrides) -> dict:
    local = {name: timezone.localtime(getattr(event, name)) for name in TIMES if getattr(event, name)}
    fields = {f"{name}_0": value.strftime("%Y-%m-%d") for name, value in local.items()}
    fields |= {f"{name}_1": value.strftime("%H:%M:%S") for name, value in local.items()}
    data = form_data(slug=event.slug, opening_mode=event.opening_mode, draw_beacon_source=event.draw_beacon_source)
    return data | fields | overrides


def test_admin_refuses_to_change_the_mode_once_the_pre_queue_has_claims(admin_client, make_event, student, enqueue):
    event = _shuffled(make_event)
    entry = enqueue(student, event)
    assert entry.prequeue
    url = f"/admin/events/event/{event.pk}/change/"

    response = admin_client.post(url, _form(event, opening_mode="fifo"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "pra-antrean" in str(errors["opening_mode"])  # Indonesian by default
    event.refresh_from_db()
    assert event.opening_mode == "shuffle_at_open"

    # Other edits still go through, the mode left as it is.
    response = admin_client.post(url, _form(event, title="Renamed"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    event.refresh_from_db()
    assert (event.title, event.opening_mode) == ("Renamed", "shuffle_at_open")

    with pytest.raises(OpeningModeLocked):
        services.event_update(event_id=event.pk, opening_mode="fifo")
    event.refresh_from_db()
    assert event.opening_mode == "shuffle_at_open"


def test_the_mode_may_change_while_nobody_waits_in_the_pre_queue(admin_client, make_event, student, enqueue):
    event = _shuffled(make_event)
    url = f"/admin/events/event/{event.pk}/change/"
    response = admin_client.post(url, _form(event, opening_mode="fifo"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    event.refresh_from_db()
    assert event.opening_mode == "fifo"
    services.event_update(
        event_id=event.pk,
        opening_mode="shuffle_at_open",
        draw_beacon_source=SOURCE,
        draw_beacon_due_at=event.claim_opens_at + timedelta(minutes=2),
    )
    # A pre-queue claim that was decided (failed here) no longer holds the mode.
    entry = enqueue(student, Event.objects.get(pk=event.pk))
    QueueEntry.objects.filter(pk=entry.pk).update(status="failed", reason="event_unavailable")
    assert services.event_update(event_id=event.pk, opening_mode="fifo").opening_mode == "fifo"


def test_a_shuffled_opening_names_its_public_value_before_opening(admin_client, make_event):
    event = _shuffled(make_event)
    url = f"/admin/events/event/{event.pk}/change/"
    response = admin_client.post(
        url, _form(event, draw_beacon_source="", draw_beacon_due_at_0="", draw_beacon_due_at_1="")
    )
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"draw_beacon_source", "draw_beacon_due_at"}
    opens = timezone.localtime(event.claim_opens_at)
    early = {"draw_beacon_due_at_0": opens.strftime("%Y-%m-%d"), "draw_beacon_due_at_1": opens.strftime("%H:%M:%S")}
    response = admin_client.post(url, _form(event, **early))
    assert "draw_beacon_due_at" in response.context["adminform"].form.errors
    with pytest.raises(DrawSettingsInvalid):
        services.event_update(event_id=event.pk, draw_beacon_due_at=event.claim_opens_at)
    with pytest.raises(DrawSettingsInvalid):
        services.event_update(event_id=event.pk, draw_beacon_source=" ")
    # A first-come event needs none of it.
    fifo = {"opening_mode": "fifo", "draw_beacon_source": "", "draw_beacon_due_at_0": "", "draw_beacon_due_at_1": ""}
    assert admin_client.post(url, _form(event, **fifo)).status_code == 302


def test_the_freeze_fixes_the_public_values_source_and_time(admin_client, make_event, student, enqueue):
    event = _shuffled(make_event)
    enqueue(student, event)
    Event.objects.filter(pk=event.pk).update(claim_opens_at=timezone.now() - timedelta(seconds=1))
    assert draw_freeze(event_id=event.pk)
    event.refresh_from_db()
    url = f"/admin/events/event/{event.pk}/change/"
    response = admin_client.post(url, _form(event, draw_beacon_source="drand quicknet round 99999999"))
    assert "draw_beacon_source" in response.context["adminform"].form.errors
    for change in ({"draw_beacon_source": "another"}, {"draw_beacon_due_at": event.draw_beacon_due_at + timedelta(1)}):
        with pytest.raises(DrawLocked):
            services.event_update(event_id=event.pk, **change)
    # Everything else still changes (the title, say).
    assert admin_client.post(url, _form(event, title="Renamed")).status_code == 302
    event.refresh_from_db()
    assert (event.title, event.draw_beacon_source) == ("Renamed", SOURCE)
