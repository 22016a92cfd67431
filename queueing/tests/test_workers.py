"""The queue against real Celery worker (and beat) processes on the real database and Redis."""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from claims.tasks import process_queue
from common.errors import DomainError
from events.models import Event
from queueing.models import LIVE_STATUSES, QueueEntry
from tickets.models import Ticket
from tools.stack import kill
from tools.testing import bulk_students, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def fire_claims(jobs, *, threads: int = 32) -> list:
    """Run ``claim_submit`` for every (user, slug) from many threads, each its own connection."""
    from claims.services import claim_submit

    def one(job):
        user, slug = job
        try:
            entry, created = claim_submit(user=user, event_slug=slug)
            return ("queued" if created else "again", entry.id)
        except DomainError as refusal:
            return (refusal.code, refusal.message)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, jobs))


def all_decided():
    return not QueueEntry.objects.filter(status__in=LIVE_STATUSES).exists()


def assert_ledger(event: Event, *, seats: int) -> None:
    event.refresh_from_db()
    tickets = Ticket.objects.filter(event=event, status="active")
    assert tickets.count() == seats
    assert tickets.values("user_id").distinct().count() == seats
    assert event.remaining == 0
    entries = QueueEntry.objects.filter(event=event)
    assert not entries.filter(status__in=LIVE_STATUSES).exists()
    completed = entries.filter(status="completed")
    assert completed.count() == seats
    assert set(completed.values_list("ticket_id", flat=True)) == set(tickets.values_list("id", flat=True))
    assert not entries.filter(status="failed", reason="").exists()


def test_race_600_students_500_seats_several_claims_each(celery_worker_process):
    event = Event.objects.create(**_event_fields(capacity=500))
    students = bulk_students(600)
    celery_worker_process(concurrency=2)
    jobs = [(s, event.slug) for s in students for _ in range(3)]
    random.Random(4).shuffle(jobs)
    started = time.monotonic()
    outcomes = fire_claims(jobs)
    wait_until(all_decided, timeout=60, interval=0.2, message="queue not drained")
    elapsed = time.monotonic() - started
    assert_ledger(event, seats=500)
    kinds = Counter(kind for kind, _ in outcomes)
    assert set(kinds) <= {"queued", "again", "already_has_ticket", "sold_out"}
    # Every student got in the queue at least once, unless every click of theirs came after the
    # last seat was gone (then each was a 410 at once, never queued: by design).
    by_student: dict[int, set[str]] = {}
    for (student, _slug), (kind, _detail) in zip(jobs, outcomes, strict=True):
        by_student.setdefault(student.id, set()).add(kind)
    assert len(by_student) == 600
    for kinds_of_one in by_student.values():
        assert "queued" in kinds_of_one or kinds_of_one == {"sold_out"}, kinds_of_one
    assert kinds["queued"] >= 500  # at least as many claims queued as there were seats
    for kind, detail in outcomes:
        if kind not in ("queued", "again"):
            assert isinstance(detail, str) and detail  # every refusal is a sentence
    # No student ever held two live entries, and nobody got two tickets.
    per_student = Counter(QueueEntry.objects.filter(status="completed").values_list("user_id", flat=True))
    assert max(per_student.values()) == 1
    assert elapsed < 60


def test_worker_killed_mid_batch_loses_and_doubles_nothing(
    short_lease, celery_worker_process, celery_beat_process, settings
):
    event = Event.objects.create(**_event_fields(capacity=300))
    students = bulk_students(400)
    for s in students:
        QueueEntry.objects.create(user=s, event=event)
    left_in_processing = 0
    for _round in range(5):
        worker = celery_worker_process(concurrency=1)
        process_queue.apply_async()
        # Tight poll: catch the worker while it holds a taken batch, then kill it outright.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if QueueEntry.objects.filter(status="processing").exists():
                break
            time.sleep(0.002)
        kill(worker)  # the worker and its pool at once: no goodbye, no ack, no rollback by us
        left_in_processing = QueueEntry.objects.filter(status="processing").count()
        if left_in_processing:
            break
    assert left_in_processing > 0, "never caught a worker mid-batch"
    # A new worker alone does not touch leased rows; the beat's reaper hands them back.
    celery_worker_process(concurrency=2)
    celery_beat_process()
    wait_until(all_decided, timeout=45, interval=0.2, message="killed worker's batch not recovered")
    assert_ledger(event, seats=300)
    assert QueueEntry.objects.filter(event=event).count() == 400
    assert QueueEntry.objects.filter(status="failed", reason="sold_out").count() == 100
    assert QueueEntry.objects.filter(last_error__contains="lease expired").exists()


def test_two_workers_two_beats_no_duplicate_ticket_no_double_decision(
    celery_worker_process, celery_beat_process, decided_log
):
    event = Event.objects.create(**_event_fields(capacity=300))
    students = bulk_students(400)
    celery_worker_process(concurrency=2)
    celery_worker_process(concurrency=2)
    celery_beat_process()
    celery_beat_process()
    outcomes = fire_claims([(s, event.slug) for s in students for _ in range(2)], threads=24)
    wait_until(all_decided, timeout=60, interval=0.2, message="queue not drained")
    time.sleep(2.5)  # one more round of duplicated ticks must change nothing
    assert_ledger(event, seats=300)
    log = decided_log()
    ids = [entry_id for entry_id, _status in log]
    assert len(ids) == len(set(ids)) == QueueEntry.objects.filter(event=event).count()
    assert Counter(kind for kind, _ in outcomes)["queued"] >= 400


def test_fifo_with_a_real_worker(celery_worker_process):
    event = Event.objects.create(**_event_fields(capacity=30))
    students = bulk_students(50)
    ids = [QueueEntry.objects.create(user=s, event=event).id for s in students]
    celery_worker_process(concurrency=1)
    from queueing.services import queue_kick

    queue_kick()
    wait_until(all_decided, timeout=30, interval=0.2, message="queue not drained")
    completed = set(QueueEntry.objects.filter(status="completed").values_list("id", flat=True))
    assert completed == set(ids[:30])


def test_a_claim_is_decided_within_seconds_not_ticks(celery_worker_process, make_user, enqueue):
    """No beat runs here: the claim itself wakes the worker."""
    event = Event.objects.create(**_event_fields(capacity=5))
    celery_worker_process(concurrency=1)
    wait_until(lambda: _worker_answers(), timeout=30, message="worker not ready")
    started = time.monotonic()
    entry = enqueue(make_user(), event)
    wait_until(all_decided, timeout=10, interval=0.05, message="claim not decided")
    assert time.monotonic() - started < 2
    entry.refresh_from_db()
    assert entry.status == "completed"


def _worker_answers() -> bool:
    from ticketwar.celery import app

    try:
        return bool(app.control.ping(timeout=0.5))
    except Exception:
        return False


@pytest.fixture
def short_lease(monkeypatch, settings):
    """A 2-second lease for the worker and beat subprocesses (set before they start)."""
    monkeypatch.setenv("QUEUE_LEASE_SECONDS", "2")
    settings.QUEUE_LEASE_SECONDS = 2


def _event_fields(*, capacity: int) -> dict:
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    return {
        "slug": f"war-{time.monotonic_ns()}",
        "title": "Kuliah Umum",
        "speaker": "Speaker",
        "venue": "Aula",
        "claim_opens_at": now - timedelta(minutes=1),
        "claim_closes_at": now + timedelta(days=1),
        "starts_at": now + timedelta(days=2),
        "capacity": capacity,
        "remaining": capacity,
        "status": "published",
    }
