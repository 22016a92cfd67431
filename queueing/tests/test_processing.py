"""Deciding the queue in-process: FIFO, outcomes, retries, leases, idempotency, cleanup."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from queueing import deciding
from queueing.deciding import queue_decide, queue_take_batch
from queueing.models import ClaimStat, QueueEntry
from queueing.processing import queue_cleanup, queue_process_batch, queue_reap
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def test_fifo_earlier_claims_are_decided_first(make_user, make_event, enqueue):
    event = make_event(capacity=3)
    users = [make_user() for _ in range(5)]
    entries = [enqueue(u, event) for u in users]
    queue_process_batch(limit=2)
    decided = QueueEntry.objects.exclude(status="pending").values_list("id", flat=True)
    assert sorted(decided) == [entries[0].id, entries[1].id]
    queue_process_batch(limit=10)
    statuses = [QueueEntry.objects.get(pk=e.id) for e in entries]
    assert [e.status for e in statuses] == ["completed"] * 3 + ["failed"] * 2
    assert [e.reason for e in statuses[3:]] == ["sold_out", "sold_out"]
    # The tickets were issued in arrival order too.
    issued = list(Ticket.objects.order_by("issued_at").values_list("user_id", flat=True))
    assert issued == [u.id for u in users[:3]]
    assert statuses[0].processed_at <= statuses[1].processed_at <= statuses[2].processed_at


def test_the_decided_claims_counter_rises_after_a_decided_batch(make_user, make_event, enqueue):
    from prometheus_client import REGISTRY

    def counted(result: str, reason: str) -> float:
        labels = {"result": result, "reason": reason}
        return REGISTRY.get_sample_value("ticketwar_claims_decided_total", labels) or 0.0

    event = make_event(capacity=2)
    for _ in range(3):
        enqueue(make_user(), event)
    before = counted("completed", "none"), counted("failed", "sold_out")
    queue_process_batch()
    assert (counted("completed", "none"), counted("failed", "sold_out")) == (before[0] + 2, before[1] + 1)
    enqueue(make_user(), event)  # the event is sold out now: refused in bulk, counted too
    queue_process_batch()
    assert counted("failed", "sold_out") == before[1] + 2


def test_batch_size_is_ten_by_default(make_user, event, enqueue):
    for _ in range(12):
        enqueue(make_user(), event)
    assert queue_process_batch().taken == 10
    assert QueueEntry.objects.filter(status="pending").count() == 2


def test_refusals_carry_a_reason(make_user, make_event, enqueue):
    event = make_event()
    unverified_later = make_user()
    entry = enqueue(unverified_later, event)
    type(unverified_later).objects.filter(pk=unverified_later.pk).update(email_verified_at=None)
    closed_event = make_event()
    late = enqueue(make_user(), closed_event)
    type(closed_event).objects.filter(pk=closed_event.pk).update(
        claim_opens_at=timezone.now() - timedelta(hours=2), claim_closes_at=timezone.now() - timedelta(hours=1)
    )
    queue_process_batch()
    assert QueueEntry.objects.get(pk=entry.id).reason == "not_eligible"
    assert QueueEntry.objects.get(pk=late.id).reason == "claim_closed"
    assert not QueueEntry.objects.filter(status="failed", reason="").exists()


@pytest.fixture
def one_by_one(monkeypatch):
    """Entries go the per-entry path (the fallback) at once: deciding a batch together "fails"
    before issuing anything. The retry tests below then break the issuing itself."""
    monkeypatch.setattr(deciding, "queue_decide_many", lambda entries: ([], entries))


def test_a_failing_entry_does_not_poison_its_batch(make_user, event, enqueue, monkeypatch):
    users = [make_user() for _ in range(4)]
    for u in users:
        enqueue(u, event)
    real_issue = deciding.ticket_issue_many
    bad_user = users[1].id

    def flaky_issue(*, user_ids, **kw):
        if bad_user in user_ids:
            raise RuntimeError("boom")
        return real_issue(user_ids=user_ids, **kw)

    monkeypatch.setattr(deciding, "ticket_issue_many", flaky_issue)
    queue_process_batch()
    rows = {e.user_id: e for e in QueueEntry.objects.all()}
    assert [rows[u.id].status for u in users] == ["completed", "pending", "completed", "completed"]
    assert rows[bad_user].attempts == 1 and "boom" in rows[bad_user].last_error
    assert rows[bad_user].not_before > timezone.now()


def test_transient_error_is_retried_and_then_succeeds(student, event, enqueue, monkeypatch, one_by_one):
    entry = enqueue(student, event)
    real_issue = deciding.ticket_issue_many
    failures = {"left": 2}

    def hiccup(**kw):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return real_issue(**kw)

    monkeypatch.setattr(deciding, "ticket_issue_many", hiccup)
    later = timezone.now()
    for _ in range(3):
        later += timedelta(seconds=5)  # past the backoff
        queue_process_batch(now=later)
    entry.refresh_from_db()
    assert (entry.status, entry.attempts) == ("completed", 3)
    assert Ticket.objects.filter(user=student, event=event).count() == 1


def test_permanent_error_fails_after_exactly_three_attempts(student, event, enqueue, monkeypatch, one_by_one):
    entry = enqueue(student, event)
    calls = []

    def broken(**kw):
        calls.append(kw)
        raise OperationalError("could not serialize access")

    monkeypatch.setattr(deciding, "ticket_issue_many", broken)
    backoffs = []
    later = timezone.now()
    for _ in range(6):
        later += timedelta(seconds=5)
        queue_process_batch(now=later)
        entry.refresh_from_db()
        if entry.not_before:
            backoffs.append(entry.not_before)
    assert len(calls) == 3
    assert (entry.status, entry.attempts, entry.reason) == ("failed", 3, "error")
    assert "could not serialize" in entry.last_error
    event.refresh_from_db()
    assert event.remaining == event.capacity


def test_backoff_keeps_a_retried_entry_out_of_the_next_batch(student, event, enqueue, monkeypatch, one_by_one):
    entry = enqueue(student, event)
    monkeypatch.setattr(deciding, "ticket_issue_many", lambda **kw: (_ for _ in ()).throw(OperationalError("x")))
    queue_process_batch()
    assert queue_take_batch() == []  # not before its backoff
    entry.refresh_from_db()
    assert entry.status == "pending" and entry.not_before > timezone.now()


def test_reaper_returns_expired_leases_and_fails_exhausted_ones(make_user, event, enqueue):
    a, b, fresh = (enqueue(make_user(), event) for _ in range(3))
    queue_take_batch()
    old = timezone.now() - timedelta(seconds=120)
    QueueEntry.objects.filter(pk__in=[a.id, b.id]).update(locked_at=old)
    QueueEntry.objects.filter(pk=b.id).update(attempts=3)
    counts = queue_reap()
    assert counts == {"pending": 1, "failed": 1}
    statuses = {e.id: (e.status, e.reason) for e in QueueEntry.objects.all()}
    assert statuses[a.id] == ("pending", "")
    assert statuses[b.id] == ("failed", "error")
    assert statuses[fresh.id][0] == "processing"  # its lease is still running


def test_a_worker_that_lost_its_lease_leaves_the_entry_alone(student, event, enqueue):
    enqueue(student, event)
    (stale,) = queue_take_batch()
    queue_reap(now=timezone.now() + timedelta(minutes=5))
    (retaken,) = queue_take_batch()
    assert queue_decide(stale) is None
    assert QueueEntry.objects.get().status == "processing"
    assert queue_decide(retaken).status == "completed"
    assert Ticket.objects.count() == 1


def test_decide_is_idempotent_for_a_student_already_holding_an_unlinked_ticket(student, event, enqueue):
    from tools.testing import issue_ticket

    enqueue(student, event)
    (claimed,) = queue_take_batch()
    # The seat was taken but the worker died before linking it (e.g. an older code path).
    ticket = issue_ticket(event_id=event.id, user_id=student.id)
    decision = queue_decide(claimed)
    assert decision.status == "completed" and decision.ticket_id == ticket.id
    assert Ticket.objects.filter(user=student).count() == 1
    assert QueueEntry.objects.get().ticket_id == ticket.id


def test_a_second_entry_of_a_ticket_holder_fails_politely(student, event, enqueue):
    enqueue(student, event)
    queue_process_batch()
    # A claim that slipped past the 409 check while the first entry was being decided.
    second = QueueEntry.objects.create(user=student, event=event)
    queue_process_batch()
    second.refresh_from_db()
    assert (second.status, second.reason) == ("failed", "already_has_ticket")
    assert Ticket.objects.filter(user=student).count() == 1


def test_cleanup_folds_old_decisions_into_claim_stats(make_user, make_event, enqueue):
    event = make_event(capacity=2)
    entries = [enqueue(make_user(), event) for _ in range(4)]
    queue_process_batch()
    old_minute = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=2)
    QueueEntry.objects.filter(pk__in=[e.id for e in entries[:3]]).update(processed_at=old_minute + timedelta(seconds=5))
    recent = enqueue(make_user(), make_event())  # pending: never deleted
    assert queue_cleanup() == 3
    assert queue_cleanup() == 0  # a second run (or a second beat) counts nothing twice
    remaining = set(QueueEntry.objects.values_list("id", flat=True))
    assert remaining == {entries[3].id, recent.id}
    stats = {(s.outcome, s.minute): s.count for s in ClaimStat.objects.filter(event=event)}
    assert stats == {("completed", old_minute): 2, ("sold_out", old_minute): 1}
    assert Ticket.objects.filter(event=event).count() == 2  # tickets stay


def test_cleanup_adds_to_an_existing_minute(make_user, event, enqueue):
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=3)
    ClaimStat.objects.create(event=event, minute=minute, outcome="completed", count=5)
    enqueue(make_user(), event)
    queue_process_batch()
    QueueEntry.objects.update(processed_at=minute)
    queue_cleanup()
    assert ClaimStat.objects.get(event=event, minute=minute, outcome="completed").count == 6


def _plan_that_scans_the_pick_again(cursor) -> None:
    """The planner's view of a queue table analysed while nearly empty (one page, one row: as
    after an ANALYZE between two bursts), and only nested loops without materialising: a pick
    written as a plain subquery then sits on the inner side of the loop and runs once per row of
    ticket_queue (rolled back with the test's transaction)."""
    if connection.pg_version < 180000:
        pytest.skip("pg_restore_relation_stats needs PostgreSQL 18")
    cursor.execute(
        "SELECT pg_restore_relation_stats('schemaname', relnamespace::regnamespace::text, 'relname', relname::text,"
        " 'relpages', 1::integer, 'reltuples', 1::real) FROM pg_class WHERE oid = 'ticket_queue'::regclass"
    )
    cursor.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL enable_material = off")


def test_a_batch_takes_at_most_its_limit_whatever_the_plan(make_user, event, enqueue):
    entries = [enqueue(make_user(), event) for _ in range(12)]
    with connection.cursor() as cursor:
        _plan_that_scans_the_pick_again(cursor)
    leased = queue_take_batch(limit=10)
    assert [c.id for c in leased] == [e.id for e in entries[:10]]
    pending = QueueEntry.objects.filter(status="pending").values_list("id", flat=True)
    assert sorted(pending) == [e.id for e in entries[10:]]


def test_entries_of_a_sold_out_event_are_refused_in_bulk(make_user, make_event, enqueue, monkeypatch):
    event = make_event(capacity=1)
    entries = [enqueue(make_user(), event) for _ in range(4)]
    type(event).objects.filter(pk=event.pk).update(remaining=0)
    calls = []
    monkeypatch.setattr(deciding, "ticket_issue_many", lambda **kw: calls.append(kw))
    result = queue_process_batch()
    assert calls == []  # nobody walked the issuing path only to hear "sold out"
    assert sorted(d.claimed.id for d in result.decisions) == [e.id for e in entries]
    assert set(QueueEntry.objects.values_list("status", "reason")) == {("failed", "sold_out")}
