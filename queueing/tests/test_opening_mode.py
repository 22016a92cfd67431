"""The opening mode of an event is fixed once claims wait in its pre-queue: changing it would
strand them (a first-come event never draws, and the batch scan never takes a pre-queue entry)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from events import services
from events.exceptions import OpeningModeLocked
from events.models import Event
from events.tests.test_admin import form_data
from queueing.models import QueueEntry

pytestmark = pytest.mark.django_db


def _shuffled(make_event) -> Event:
    now = timezone.localtime()
    return make_event(
        slug="mode-event",
        capacity=10,
        opening_mode=Event.OpeningMode.SHUFFLE_AT_OPEN,
        claim_opens_at=now + timedelta(days=1),
        claim_closes_at=now + timedelta(days=2),
        starts_at=now + timedelta(days=3),
    )


def _form(event: Event, **overrides) -> dict:
    local = {
        name: timezone.localtime(getattr(event, name)) for name in ("starts_at", "claim_opens_at", "claim_closes_at")
    }
    fields = {f"{name}_0": value.strftime("%Y-%m-%d") for name, value in local.items()}
    fields |= {f"{name}_1": value.strftime("%H:%M:%S") for name, value in local.items()}
    return form_data(slug=event.slug, opening_mode=event.opening_mode, **fields) | overrides


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
    services.event_update(event_id=event.pk, opening_mode="shuffle_at_open")
    # A pre-queue claim that was decided (failed here) no longer holds the mode.
    entry = enqueue(student, Event.objects.get(pk=event.pk))
    QueueEntry.objects.filter(pk=entry.pk).update(status="failed", reason="event_unavailable")
    assert services.event_update(event_id=event.pk, opening_mode="fifo").opening_mode == "fifo"
