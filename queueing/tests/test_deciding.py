"""Deciding a batch together (queueing.deciding): outcomes, leases, fallback, races."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import Event
from queueing.deciding import queue_decide, queue_decide_many, queue_take_batch
from queueing.models import LIVE_STATUSES, QueueEntry
from queueing.processing import queue_process_batch, queue_reap
from tickets.models import Ticket
from tools.testing import TicketCommittedMeanwhile, bulk_students, issue_ticket, race_values
from waitlist.models import WaitlistEntry


def outcomes(entries) -> list[tuple[str, str]]:
    rows = {e.id: e for e in QueueEntry.objects.filter(pk__in=[e.id for e in entries])}
    return [(rows[e.id].status, rows[e.id].reason) for e in entries]


def remaining(event) -> int:
    return Event.objects.get(pk=event.pk).remaining


@pytest.mark.django_db
def test_fewer_seats_than_claims_earliest_claims_win(make_user, make_event, enqueue):
    event = make_event(capacity=4)
    users = [make_user() for _ in range(10)]
    entries = [enqueue(u, event) for u in users]

    result = queue_process_batch()

    assert outcomes(entries) == [("completed", "")] * 4 + [("failed", "sold_out")] * 6
    tickets = {t.user_id: t.id for t in Ticket.objects.filter(event=event)}
    assert set(tickets) == {u.id for u in users[:4]}
    for entry in QueueEntry.objects.filter(status="completed"):
        assert entry.ticket_id == tickets[entry.user_id]
        assert entry.locked_at is None and entry.processed_at is not None
    assert remaining(event) == 0
    # The decisions returned (pushes) say the same as the table, one per entry.
    assert {d.claimed.id: (d.status, d.reason, d.ticket_id) for d in result.decisions} == {
        e.id: (e.status, e.reason, e.ticket_id) for e in QueueEntry.objects.all()
    }
    # The queue knows nothing of the waiting list (the claims app puts the sold-out on it).
    assert not WaitlistEntry.objects.filter(event=event).exists()


@pytest.mark.django_db
def test_holders_unverified_and_linked_entries_in_one_batch(make_user, make_event, enqueue):
    event = make_event(capacity=10)
    unlinked_holder, another, repeat, unverified, plain, relinked = (make_user() for _ in range(6))
    first_of_repeat = enqueue(repeat, event)
    queue_process_batch()  # repeat's ticket is linked to that first entry
    entries = [enqueue(u, event) for u in (unlinked_holder, another, unverified, plain, relinked)]
    second_of_repeat = QueueEntry.objects.create(user=repeat, event=event)  # slipped past the 409
    type(unverified).objects.filter(pk=unverified.pk).update(email_verified_at=None)
    # The seat was taken but the decision was lost (e.g. an older code path): no entry links it.
    lost = issue_ticket(event_id=event.id, user_id=unlinked_holder.id)
    claimed = queue_take_batch()
    # The decision was written into the row but not finished: the row already names its ticket.
    already = issue_ticket(event_id=event.id, user_id=relinked.id)
    QueueEntry.objects.filter(pk=entries[4].id).update(ticket_id=already.id)
    before = remaining(event)

    decisions, left = queue_decide_many(claimed)

    assert left == []
    assert outcomes([*entries, second_of_repeat]) == [
        ("completed", ""),
        ("completed", ""),
        ("failed", "not_eligible"),
        ("completed", ""),
        ("completed", ""),
        ("failed", "already_has_ticket"),
    ]
    linked = dict(QueueEntry.objects.filter(status="completed").values_list("user_id", "ticket_id"))
    assert linked[unlinked_holder.id] == lost.id
    assert linked[relinked.id] == already.id
    assert QueueEntry.objects.get(pk=first_of_repeat.id).ticket_id == linked[repeat.id]
    assert remaining(event) == before - 2  # another and plain: nobody got a second seat
    per_user = Counter(Ticket.objects.filter(event=event).values_list("user_id", flat=True))
    assert set(per_user.values()) == {1} and unverified.id not in per_user
    assert {d.claimed.id: d.status for d in decisions} == {
        c.id: s for c, (s, _) in zip(claimed, outcomes(claimed), strict=True)
    }


@pytest.mark.django_db
def test_rows_whose_lease_is_no_longer_ours_are_left_alone(make_user, event, enqueue):
    entries = [enqueue(make_user(), event) for _ in range(3)]
    stale = queue_take_batch()
    # The reaper gave one row to another worker, which took it under its own lease.
    QueueEntry.objects.filter(pk=entries[1].id).update(locked_at=timezone.now() - timedelta(minutes=5))
    queue_reap()
    (retaken,) = queue_take_batch()

    decisions, left = queue_decide_many(stale)

    assert left == [] and sorted(d.claimed.id for d in decisions) == [entries[0].id, entries[2].id]
    row = QueueEntry.objects.get(pk=entries[1].id)
    assert (row.status, row.locked_at, row.ticket_id) == ("processing", retaken.locked_at, None)
    assert not Ticket.objects.filter(user_id=entries[1].user_id).exists()
    assert queue_decide(retaken).status == "completed"
    assert Ticket.objects.filter(event=event).count() == 3
    # A whole stale group: nothing decided, nothing left for the fallback.
    assert queue_decide_many(stale) == ([], [])


@pytest.mark.django_db
def test_a_batch_takes_the_same_few_queries_whatever_its_size(make_user, make_event, enqueue):
    counts = []
    for size in (3, 10):
        event = make_event(capacity=50)
        for _ in range(size):
            enqueue(make_user(), event)
        with CaptureQueriesContext(connection) as queries:
            assert queue_process_batch().taken == size
        counts.append(len(queries))
    # Take, read the events, and one transaction: lock the rows, the event, the students,
    # take the seats, insert the tickets, record the outcomes (+ its savepoint in a test).
    assert counts[0] == counts[1] <= 10, counts


@pytest.mark.django_db
def test_a_database_error_in_the_batch_sends_its_entries_one_by_one(make_user, make_event, enqueue):
    event = make_event(capacity=10)
    users = [make_user() for _ in range(4)]
    entries = [enqueue(u, event) for u in users]
    bad = users[1].id
    with connection.cursor() as cursor:
        # A real error from the database for one student's ticket, in both paths.
        cursor.execute(
            "CREATE FUNCTION test_refuse_ticket() RETURNS trigger AS $$ BEGIN"
            f" IF NEW.user_id = {int(bad)} THEN RAISE EXCEPTION 'boom from the database'; END IF;"
            " RETURN NEW; END $$ LANGUAGE plpgsql;"
            " CREATE TRIGGER test_refuse_ticket BEFORE INSERT ON tickets_ticket"
            " FOR EACH ROW EXECUTE FUNCTION test_refuse_ticket();"
        )

    queue_process_batch()

    assert [s for s, _ in outcomes(entries)] == ["completed", "pending", "completed", "completed"]
    failed = QueueEntry.objects.get(pk=entries[1].id)
    assert failed.attempts == 1 and "boom from the database" in failed.last_error
    assert failed.not_before > timezone.now()
    # The batch's seats were rolled back; the one-by-one path took exactly one per ticket.
    assert remaining(event) == 7
    assert Ticket.objects.filter(event=event).count() == 3


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_ticket_committed_during_the_batch_rolls_it_back_and_the_fallback_decides(
    make_user, make_event, enqueue, caplog
):
    event = make_event(capacity=10)
    first, late, last = make_user(), make_user(), make_user()
    entries = [enqueue(u, event) for u in (first, late, last)]
    # Between the batch's check and its INSERT, another connection gives ``late`` a ticket.
    other = TicketCommittedMeanwhile(event_id=event.id, user_id=late.id)
    other.start()
    kind, result = other.commit_during(queue_process_batch)
    assert kind == "ok", result
    fallback = [r for r in caplog.records if "not decided together" in r.getMessage()]
    assert len(fallback) == 1 and fallback[0].exc_info[0] is IntegrityError
    assert outcomes(entries) == [("completed", "")] * 3
    held = Ticket.objects.get(event=event, user=late)
    assert QueueEntry.objects.get(pk=entries[1].id).ticket_id == held.id
    assert Ticket.objects.filter(event=event).count() == 3
    # The batch's three seats went back; the one-by-one path took two (late's came from elsewhere).
    assert remaining(event) == 8
    assert sorted(d.claimed.id for d in result.decisions) == sorted(e.id for e in entries)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_workers_racing_on_300_claims_for_100_seats(make_event, decided_log):
    event = make_event(capacity=100)
    students = bulk_students(300)
    QueueEntry.objects.bulk_create([QueueEntry(user=s, event=event) for s in students])

    def drain() -> list:
        decisions = []
        while (result := queue_process_batch()).taken:
            decisions.extend(result.decisions)
        return decisions

    decided = [d for decisions in race_values([drain] * 6) for d in decisions]
    assert sorted(d.claimed.id for d in decided) == sorted(QueueEntry.objects.values_list("id", flat=True))
    assert not QueueEntry.objects.filter(status__in=LIVE_STATUSES).exists()
    tickets = dict(Ticket.objects.filter(event=event, status="active").values_list("id", "user_id"))
    assert len(tickets) == 100 and len(set(tickets.values())) == 100
    completed = QueueEntry.objects.filter(status="completed")
    assert {(e.ticket_id, e.user_id) for e in completed} == set(tickets.items())
    assert Counter(QueueEntry.objects.filter(status="failed").values_list("reason", flat=True)) == {"sold_out": 200}
    assert remaining(event) == 0
    entry_ids = [entry_id for entry_id, _ in decided_log()]
    assert len(entry_ids) == len(set(entry_ids)) == 300  # each entry decided exactly once
