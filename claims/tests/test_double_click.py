"""A double (or triple) click never gives a student a second queue entry.

The measured failure: the enqueue statement checked "holds a ticket" in its snapshot while the
student's first entry was completed, its ticket committed, in between (READ COMMITTED); the
partial unique index then no longer saw a live entry and a second entry went in, to be refused
``already_has_ticket`` and shown as "No ticket this time" to a ticket holder.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import connection
from django.test import Client

from claims.services import claim_submit
from queueing.models import QueueEntry
from queueing.processing import queue_process_batch
from queueing.selectors import entry_as_dict
from tickets.exceptions import AlreadyHasTicket
from tickets.models import Ticket
from tickets.selectors import format_redeem_code
from tools.testing import bulk_students, issue_ticket

ROUNDS = 8
STUDENTS = 120
CLICKS = 4
CLICKERS = 9
WORKERS = 2


def _race_one_event(event, students) -> dict[int, list]:
    """Every student clicks CLICKS times at once (on CLICKERS connections) while WORKERS real
    batch loops decide entries on their own connections. Returns each student's answers."""
    bursts = [[s] * CLICKS for s in students]
    random.shuffle(bursts)
    jobs = [s for burst in bursts for s in burst]
    answers: dict[int, list] = {s.id: [] for s in students}
    errors: list[BaseException] = []
    lock = threading.Lock()
    clicking = threading.Event()
    clicking.set()

    def clicker() -> None:
        try:
            while True:
                with lock:
                    if not jobs:
                        return
                    user = jobs.pop()
                try:
                    entry, created = claim_submit(user=user, event_slug=event.slug)
                    answers[user.id].append(("queued" if created else "again", entry.id))
                except AlreadyHasTicket as refusal:
                    answers[user.id].append(("holder", refusal.extra.get("ticket", {}).get("redeem_code")))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def worker() -> None:
        try:
            while queue_process_batch(limit=5).taken or clicking.is_set():
                time.sleep(0.001)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker) for _ in range(WORKERS)]
    clickers = [threading.Thread(target=clicker) for _ in range(CLICKERS)]
    for t in workers + clickers:
        t.start()
    for t in clickers:
        t.join()
    clicking.clear()
    for t in workers:
        t.join()
    assert not errors, errors
    while queue_process_batch().taken:
        pass
    return answers


@pytest.mark.django_db(transaction=True)
def test_clicks_at_once_racing_the_worker_give_each_student_one_entry(make_event):
    slipped = []
    for _round in range(ROUNDS):
        event = make_event(capacity=STUDENTS)
        students = bulk_students(STUDENTS)
        answers = _race_one_event(event, students)
        entries: dict[int, list[QueueEntry]] = {}
        for entry in QueueEntry.objects.filter(event=event).select_related("ticket__event"):
            entries.setdefault(entry.user_id, []).append(entry)
        tickets = dict(Ticket.objects.filter(event=event, status="active").values_list("user_id", "redeem_code"))
        for student in students:
            mine = entries[student.id]
            if len(mine) != 1:
                slipped.append((student.id, [(e.status, e.reason) for e in mine]))
                continue
            (entry,) = mine
            assert (entry.status, entry.ticket.redeem_code) == ("completed", tickets[student.id])
            kinds = [kind for kind, _ in answers[student.id]]
            assert kinds.count("queued") == 1, answers[student.id]
            for kind, value in answers[student.id]:
                assert value == (entry.id if kind != "holder" else tickets[student.id]), answers[student.id]
            # Whatever entry the student looks at, it shows their ticket.
            assert entry_as_dict(entry)["ticket"]["redeem_code"] == tickets[student.id]
    assert not slipped, f"{len(slipped)} students got a second entry: {slipped[:5]}"


def test_a_ticket_holder_never_reads_no_ticket_on_an_entry_that_slipped_through(make_event, student, enqueue, client):
    """Defence in depth: an entry refused ``already_has_ticket`` while its student holds an
    active ticket of the event answers with that ticket, on the API and on the waiting page."""
    event = make_event(capacity=5)
    first = enqueue(student, event)
    queue_process_batch()
    second = QueueEntry.objects.create(user=student, event=event)  # as if it slipped past the 409
    queue_process_batch()
    second.refresh_from_db()
    assert (second.status, second.reason) == ("failed", "already_has_ticket")
    ticket = Ticket.objects.get(user=student, event=event)
    assert QueueEntry.objects.get(pk=first.pk).ticket_id == ticket.id

    me = Client()
    me.force_login(student)
    body = me.get(f"/api/queue/{second.public_id}/").json()
    assert body["status"] == "completed" and body["reason"] is None
    assert body["ticket"]["redeem_code"] == ticket.redeem_code
    page = me.get(f"/queue/{second.public_id}/", headers={"Accept-Language": "en"}).content.decode()
    assert 'id="queue-status" role="status">You got a ticket!</p>' in page and 'data-status="completed"' in page
    assert f'id="queue-redeem">{format_redeem_code(ticket.redeem_code)}</strong>' in page

    # Someone who does not hold a ticket still reads the refusal.
    other = bulk_students(1)[0]
    issue_ticket(event_id=event.id, user_id=other.id)
    Ticket.objects.filter(user=other).update(status="returned")
    lone = QueueEntry.objects.create(user=other, event=event, status="failed", reason="already_has_ticket")
    assert entry_as_dict(lone)["status"] == "failed"
