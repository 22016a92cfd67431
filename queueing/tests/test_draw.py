"""Fair opening: the pre-queue, the committed seed, the draw and its public verification."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from events.models import Event
from queueing.deciding import queue_take_batch
from queueing.draw import draw_open, draw_open_due, draw_order, pseudonym_for
from queueing.models import QueueEntry
from queueing.processing import queue_process_batch
from queueing.selectors import entry_position
from tools.testing import bulk_students, race_values

ROOT = Path(__file__).resolve().parents[2]
CLAIM = "/api/events/{}/claim/"


def claim_as(user, slug: str):
    client = Client()
    client.force_login(user)
    return client.post(CLAIM.format(slug), content_type="application/json")


@pytest.fixture
def shuffled(make_event):
    return make_event(capacity=100, opens_in=3600, opening_mode=Event.OpeningMode.SHUFFLE_AT_OPEN)


def _open_now(event: Event) -> None:
    Event.objects.filter(pk=event.pk).update(claim_opens_at=timezone.now() - timedelta(seconds=1))


def test_fifo_event_still_answers_425_before_opening(student, make_event):
    event = make_event(opens_in=3600)
    response = claim_as(student, event.slug)
    assert response.status_code == 425
    assert response.json()["opens_in"] > 0
    assert not QueueEntry.objects.exists()


def test_early_claim_joins_the_prequeue_without_a_position(student, shuffled):
    response = claim_as(student, shuffled.slug)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending" and body["position"] is None and body["eta_seconds"] is None
    entry = QueueEntry.objects.get(public_id=body["queue_id"])
    assert entry.prequeue is True and entry.sort_key == entry.id
    # Pressing again (or refreshing) gives the same entry back, nothing more.
    again = claim_as(student, shuffled.slug)
    assert again.status_code == 200 and again.json()["queue_id"] == body["queue_id"]
    assert QueueEntry.objects.filter(event=shuffled).count() == 1
    status = Client()
    status.force_login(student)
    assert status.get(f"/api/queue/{entry.public_id}/").json()["prequeue"] is True


def test_processor_leaves_the_prequeue_alone_before_opening(shuffled):
    for user in bulk_students(5):
        claim_as(user, shuffled.slug)
    assert draw_open_due() == []
    assert queue_process_batch().taken == 0
    assert QueueEntry.objects.filter(prequeue=True, status="pending").count() == 5


def test_commitment_is_public_before_opening_and_the_seed_is_not(client, shuffled):
    commitment = hashlib.sha256(shuffled.draw_seed.encode()).hexdigest()
    detail = client.get(f"/api/events/{shuffled.slug}/").json()
    assert detail["opening_mode"] == "shuffle_at_open" and detail["draw_commitment"] == commitment
    draw = client.get(f"/api/events/{shuffled.slug}/draw/").json()
    assert draw["commitment"] == commitment and draw["seed"] is None and draw["entries"] == []
    page = client.get(f"/events/{shuffled.slug}/").content.decode()
    assert commitment in page and shuffled.draw_seed not in page
    draw_page = client.get(f"/events/{shuffled.slug}/draw/").content.decode()
    assert commitment in draw_page and shuffled.draw_seed not in draw_page


def test_every_event_gets_its_own_seed(make_event):
    seeds = {make_event().draw_seed for _ in range(5)}
    assert len(seeds) == 5 and all(len(seed) == 64 for seed in seeds)


def test_draw_ranks_the_prequeue_first_in_seeded_order_then_fifo(client, shuffled, tmp_path):
    early = bulk_students(12)
    for user in early:
        assert claim_as(user, shuffled.slug).status_code == 202
    _open_now(shuffled)
    # Arrives after opening but before the draw: FIFO behind the pre-queue, and not taken yet.
    late = bulk_students(2)
    late_ids = [claim_as(user, shuffled.slug).json()["queue_id"] for user in late]
    assert queue_take_batch() == []

    assert draw_open_due() == [shuffled.id]
    shuffled.refresh_from_db()
    assert shuffled.draw_revealed_at is not None

    entries = list(QueueEntry.objects.filter(event=shuffled).order_by("sort_key", "id"))
    pseudonyms = [pseudonym_for(e.public_id) for e in entries[:12]]
    assert pseudonyms == draw_order(shuffled.draw_seed, pseudonyms) == shuffled.draw_entries
    assert [str(e.public_id) for e in entries[12:]] == late_ids
    assert not any(e.prequeue for e in entries)
    # The position follows the drawn order; the batch scan takes that same order.
    assert [entry_position(entry_id=e.id, event_id=shuffled.id) for e in entries] == list(range(1, 15))
    taken = queue_take_batch(limit=14)
    assert [c.id for c in taken] == [e.id for e in entries]

    # Anyone can recompute the order from the published data with the script in the repo.
    draw = client.get(f"/api/events/{shuffled.slug}/draw/").json()
    assert draw["seed"] == shuffled.draw_seed
    assert hashlib.sha256(draw["seed"].encode()).hexdigest() == draw["commitment"]
    path = tmp_path / "draw.json"
    path.write_text(json.dumps(draw))
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "verify_draw.py"), str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    printed = [line.split()[1] for line in result.stdout.splitlines()]
    assert printed == pseudonyms
    # A tampered order is caught.
    draw["entries"] = list(reversed(draw["entries"]))
    path.write_text(json.dumps(draw))
    bad = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "verify_draw.py"), str(path)], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1 and "MISMATCH" in bad.stderr


def test_each_student_sees_their_own_pseudonym(shuffled):
    users = bulk_students(3)
    ids = [claim_as(user, shuffled.slug).json()["queue_id"] for user in users]
    _open_now(shuffled)
    draw_open_due()
    client = Client()
    client.force_login(users[1])
    page = client.get(f"/events/{shuffled.slug}/draw/").content.decode()
    mine = pseudonym_for(ids[1])
    assert f'id="draw-mine">{mine}<' in page
    assert page.count("← ") == 1
    shuffled.refresh_from_db()
    assert shuffled.draw_seed in page


def test_draw_is_idempotent(shuffled):
    for user in bulk_students(4):
        claim_as(user, shuffled.slug)
    _open_now(shuffled)
    assert draw_open(event_id=shuffled.id) is True
    keys = list(QueueEntry.objects.order_by("id").values_list("sort_key", flat=True))
    assert draw_open(event_id=shuffled.id) is False
    assert draw_open_due() == []
    assert list(QueueEntry.objects.order_by("id").values_list("sort_key", flat=True)) == keys


def test_draw_before_opening_does_nothing(shuffled):
    assert draw_open(event_id=shuffled.id) is False
    shuffled.refresh_from_db()
    assert shuffled.draw_revealed_at is None


@pytest.mark.django_db(transaction=True)
def test_draw_happens_exactly_once_under_concurrency(make_event):
    event = make_event(capacity=50, opens_in=3600, opening_mode=Event.OpeningMode.SHUFFLE_AT_OPEN)
    for user in bulk_students(20):
        claim_as(user, event.slug)
    _open_now(event)
    results = race_values([lambda: draw_open(event_id=event.id)] * 6)
    assert sorted(results) == [False] * 5 + [True]
    event.refresh_from_db()
    keys = sorted(QueueEntry.objects.filter(event=event).values_list("sort_key", flat=True))
    assert keys == list(range(-20, 0))
    assert len(event.draw_entries) == 20


def test_draw_api_and_page_answer_404_and_405(client, make_event):
    assert client.get("/api/events/nope/draw/").status_code == 404
    assert client.get("/events/nope/draw/").status_code == 404
    draft = make_event(status="draft")
    assert client.get(f"/api/events/{draft.slug}/draw/").status_code == 404
    event = make_event()
    response = client.post(f"/api/events/{event.slug}/draw/")
    assert response.status_code == 405 and response.json()["error"]
    assert client.get(f"/events/{event.slug}/draw/").status_code == 200


def test_prequeue_does_not_count_as_queue_delay(shuffled):
    from monitoring.health import check_queue
    from queueing.selectors import queue_delay_seconds

    for user in bulk_students(3):
        claim_as(user, shuffled.slug)
    QueueEntry.objects.update(created_at=timezone.now() - timedelta(minutes=30))  # pressed long ago
    assert queue_delay_seconds() == 0.0
    assert check_queue()["oldest_pending_seconds"] == 0
    opens_at = timezone.now() - timedelta(seconds=1)
    Event.objects.filter(pk=shuffled.pk).update(claim_opens_at=opens_at)
    draw_open_due()
    # Drawn entries wait from the opening, not from when they pressed.
    assert set(QueueEntry.objects.values_list("created_at", flat=True)) == {opens_at}
    assert queue_delay_seconds() < 10
