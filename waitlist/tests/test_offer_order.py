"""Freed seats are offered strictly in waiting-list order, whoever fills the list and however
many fill it at once: give-backs (each fills after its commit), the beat's sweep, explicit fills
and expiring offers passed on, from several real processes with several connections each.

The database itself records the order: a trigger (created by the test, dropped after it) logs
every entry that becomes ``offered``, with a sequence number taken in the statement that makes
the offer.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from tickets.models import Ticket
from tickets.services import ticket_return
from tools.testing import ROOT, subprocess_env
from waitlist.models import WaitlistEntry
from waitlist.services import waitlist_fill

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROCESSES = 4

_LOG_SQL = """
CREATE TABLE test_offer_log (seq bigserial PRIMARY KEY, entry_id bigint NOT NULL);
CREATE FUNCTION test_offer_log_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_offer_log (entry_id) VALUES (NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER test_offer_log AFTER UPDATE OF status ON waitlist_waitlistentry
    FOR EACH ROW WHEN (NEW.status = 'offered' AND OLD.status <> 'offered') EXECUTE FUNCTION test_offer_log_row();
"""

_DROP_SQL = """
DROP TRIGGER IF EXISTS test_offer_log ON waitlist_waitlistentry;
DROP FUNCTION IF EXISTS test_offer_log_row();
DROP TABLE IF EXISTS test_offer_log;
"""


@pytest.fixture
def offer_log():
    """The ids of entries offered a seat, in the order the offers were made (sequence order)."""
    with connection.cursor() as cursor:
        cursor.execute(_DROP_SQL + _LOG_SQL)

    def read() -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT entry_id FROM test_offer_log ORDER BY seq")
            return [row[0] for row in cursor.fetchall()]

    yield read
    with connection.cursor() as cursor:
        cursor.execute(_DROP_SQL)


def race_in_processes(jobs: list[list], tmp_path) -> list[str]:
    """Deal ``jobs`` to ``PROCESSES`` processes that start at the same instant; their errors."""
    env = subprocess_env(connection.settings_dict, EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    start_at = time.time() + 6  # every interpreter loads Django before then, even on a busy machine
    processes = []
    for n in range(PROCESSES):
        path = tmp_path / f"jobs-{n}.json"
        path.write_text(json.dumps(jobs[n::PROCESSES]))
        command = [sys.executable, "-m", "waitlist.tests.offer_race", str(start_at), str(path)]
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True))
    errors: list[str] = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0, out
        errors += json.loads(out.strip().splitlines()[-1])["errors"]
    return errors


def test_offers_go_out_in_list_order_under_give_backs_sweeps_and_expiries(sold_out, offer_log, tmp_path):
    event, _holders, _users = sold_out(capacity=16, waiting=60)
    tickets = list(Ticket.objects.filter(event=event).order_by("user_id").values_list("id", "user_id"))
    # Four offers already out, all due to expire during the race: their seats pass on.
    for ticket_id, user_id in tickets[:4]:
        ticket_return(ticket_id=ticket_id, user_id=user_id)
    expire_after = settings.WAITLIST_OFFER_MINUTES * 60 + 1
    jobs = [["give_back", str(t), u] for t, u in tickets[4:]]
    jobs += [["fill", event.id]] * 12 + [["expire", expire_after]] * 8 + [["sweep"]] * 4
    random.Random(5).shuffle(jobs)

    assert race_in_processes(jobs, tmp_path) == []
    waitlist_fill(event_id=event.id)  # the sweep's next run: nothing may be left to fix

    order = list(WaitlistEntry.objects.filter(event=event).order_by("id").values_list("id", flat=True))
    offered = offer_log()
    assert len(offered) >= 16 + 4  # every seat offered, the four expired ones passed on
    assert len(set(offered)) == len(offered), "a student was offered a seat twice"
    # Exactly in list order: the k-th offer went to the k-th student on the list.
    assert offered == order[: len(offered)]
    event.refresh_from_db()
    active = Ticket.objects.filter(event=event, status="active").count()
    live_offers = WaitlistEntry.objects.filter(event=event, status="offered").count()
    assert active + live_offers + event.remaining == event.capacity
    assert event.remaining == 0  # students still wait: no seat is left unoffered
