"""Fair opening: the pre-queue, the committed seed, the freeze, the public random value, the
draw and its verification from published data alone (tools/verify_draw.py, run as a student
would run it)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from events.models import Event
from queueing import draw
from queueing.deciding import queue_take_batch
from queueing.draw import draw_due, draw_enter_beacon, draw_freeze, draw_make, pseudonym_for
from queueing.exceptions import BadBeacon, BeaconAlreadyEntered, BeaconNotDue, NotFrozen
from queueing.models import QueueEntry
from queueing.processing import queue_process_batch
from queueing.selectors import entry_position
from tickets.models import Ticket
from tools.testing import bulk_students, race_values, wait_for_lock_wait

ROOT = Path(__file__).resolve().parents[2]
CLAIM = "/api/events/{}/claim/"


def claim_as(user, slug: str):
    client = Client()
    client.force_login(user)
    return client.post(CLAIM.format(slug), content_type="application/json")


def shuffled_fields(opens_in: float = 3600) -> dict:
    opens = timezone.now() + timedelta(seconds=opens_in)
    return {
        "opens_in": opens_in,
        "opening_mode": Event.OpeningMode.SHUFFLE_AT_OPEN,
        "draw_beacon_source": "drand quicknet round 12345678, its randomness field",
        "draw_beacon_due_at": opens + timedelta(minutes=1),
    }


@pytest.fixture
def shuffled(make_event):
    return make_event(capacity=100, **shuffled_fields())


def open_now(event: Event) -> None:
    """The window opened two seconds ago; the public value was published a second later."""
    due = (timezone.now() - timedelta(seconds=1)).replace(microsecond=0)  # published to the second
    opens = due - timedelta(seconds=1)
    Event.objects.filter(pk=event.pk).update(claim_opens_at=opens, draw_beacon_due_at=due)
    event.claim_opens_at = opens


def freeze(event: Event) -> list[int]:
    """The first queue run after opening (before the value was due, as on the day)."""
    return draw_due(now=event.claim_opens_at + timedelta(milliseconds=500))


def published(event: Event) -> dict:
    response = Client().get(f"/api/events/{event.slug}/draw/")
    assert response.status_code == 200
    return response.json()


def verify(tmp_path, data: dict, *args: str) -> subprocess.CompletedProcess:
    """tools/verify_draw.py on ``data`` saved to a file, as a student runs it."""
    path = tmp_path / f"draw-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(data))
    command = [sys.executable, str(ROOT / "tools" / "verify_draw.py"), str(path), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=tmp_path)  #


def save(tmp_path, data: dict, name: str = "saved.json") -> str:
    (tmp_path / name).write_text(json.dumps(data))
    return str(tmp_path / name)


# --- before opening --------------------------------------------------------------------------


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


def test_before_opening_only_the_commitment_and_the_value_to_come_are_public(client, shuffled):
    for user in bulk_students(5):
        claim_as(user, shuffled.slug)
    assert draw_due() == []
    assert queue_process_batch().taken == 0
    commitment = hashlib.sha256(shuffled.draw_seed.encode()).hexdigest()
    detail = client.get(f"/api/events/{shuffled.slug}/").json()
    assert detail["opening_mode"] == "shuffle_at_open" and detail["draw_commitment"] == commitment
    assert detail["draw_frozen"] is False and detail["draw_revealed"] is False
    data = published(shuffled)
    assert data["commitment"] == commitment and data["beacon_source"] == shuffled.draw_beacon_source
    assert data["frozen_at"] is None and data["entries"] == [] and data["seed"] is None and data["order"] == []
    page = client.get(f"/events/{shuffled.slug}/").content.decode()
    assert commitment in page and shuffled.draw_seed not in page
    draw_page = client.get(f"/events/{shuffled.slug}/draw/").content.decode()
    assert commitment in draw_page and shuffled.draw_beacon_source in draw_page
    assert shuffled.draw_seed not in draw_page


def test_every_event_gets_its_own_seed(make_event):
    seeds = {make_event().draw_seed for _ in range(5)}
    assert len(seeds) == 5 and all(len(seed) == 64 for seed in seeds)


# --- the whole flow, checked as a student checks it ----------------------------------------------


def test_freeze_then_public_value_then_draw_each_step_checked_from_published_data(client, shuffled, tmp_path):
    early = bulk_students(12)
    queue_ids = [claim_as(user, shuffled.slug).json()["queue_id"] for user in early]
    open_now(shuffled)
    late = bulk_students(2)
    late_ids = [claim_as(user, shuffled.slug).json()["queue_id"] for user in late]
    assert queue_take_batch() == []  # nothing is decided before the freeze

    # Opening: the freeze publishes the sorted pseudonyms and their hash, not the seed.
    assert freeze(shuffled) == [shuffled.id]
    frozen = published(shuffled)
    assert frozen["entries"] == sorted(pseudonym_for(q) for q in queue_ids)
    assert frozen["freeze_hash"] and frozen["seed"] is None and frozen["order"] == [] and frozen["beacon"] is None
    assert shuffled.draw_seed not in json.dumps(frozen)
    saved = save(tmp_path, frozen)
    early_check = verify(tmp_path, frozen, "--queue-id", queue_ids[0])
    assert early_check.returncode == 3, early_check.stderr  # checked so far, not drawn yet
    assert "MISMATCH" not in early_check.stderr and "in the frozen list" in early_check.stderr
    page = Client()
    page.force_login(early[0])
    html = page.get(f"/events/{shuffled.slug}/draw/").content.decode()
    assert frozen["freeze_hash"] in html and 'id="draw-mine-listed"' in html

    # The public value comes in; the next queue run makes the draw.
    draw_enter_beacon(event_id=shuffled.id, value=" 5e0ab7c1d2 ", user_id=None)
    assert draw_due() == [shuffled.id]
    shuffled.refresh_from_db()
    data = published(shuffled)
    assert data["beacon"] == "5e0ab7c1d2" and data["seed"] == shuffled.draw_seed
    # The server's order is the rule's: the same function the script reimplements (twins below).
    assert data["order"] == draw.draw_order(
        seed=shuffled.draw_seed, freeze_hash=frozen["freeze_hash"], beacon="5e0ab7c1d2", entries=frozen["entries"]
    )
    entries = list(QueueEntry.objects.filter(event=shuffled).order_by("sort_key", "id"))
    assert [pseudonym_for(e.public_id) for e in entries[:12]] == data["order"]
    assert [str(e.public_id) for e in entries[12:]] == late_ids
    assert not any(e.prequeue for e in entries)
    assert [entry_position(entry_id=e.id, event_id=shuffled.id) for e in entries] == list(range(1, 15))
    assert [c.id for c in queue_take_batch(limit=14)] == [e.id for e in entries]

    # The script checks every step, against the copy saved before the draw too.
    checked = verify(tmp_path, data, "--saved", saved, "--queue-id", queue_ids[0])
    assert checked.returncode == 0, checked.stderr
    assert [line.split()[1] for line in checked.stdout.splitlines()] == data["order"]
    assert f"rank {data['order'].index(pseudonym_for(queue_ids[0])) + 1}" in checked.stderr
    for tampered in (
        {**data, "order": list(reversed(data["order"]))},
        {**data, "beacon": "5e0ab7c1d3"},
        {**data, "seed": "0" * 64},
        {**data, "beacon_source": "drand quicknet round 12345679, its randomness field"},
    ):
        bad = verify(tmp_path, tampered)
        assert bad.returncode == 1 and "MISMATCH" in bad.stderr


def test_the_script_computes_the_freeze_hash_and_order_as_the_server_does(tmp_path):
    """The rule's twins (server and script), driven by the same cases."""
    spec = importlib.util.spec_from_file_location("verify_draw", ROOT / "tools" / "verify_draw.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    cases = [
        ([], "", ""),
        ([pseudonym_for(f"00000000-0000-4000-8000-{n:012d}") for n in range(40)], "drand round 9 ✓", "x"),
        (["0" * 12, "0" * 12, "f" * 12], "Toto 2026-11-26", "4 12 33 41"),
    ]
    for entries, source, beacon in cases:
        entries = sorted(entries)
        fields = {"commitment": "a" * 64, "beacon_source": source, "beacon_due_at": "2026-11-26T12:01:00Z"}
        server_hash = draw.freeze_hash(**fields, entries=entries)
        assert script.freeze_hash({**fields, "entries": entries}) == server_hash
        server = draw.draw_order(seed="b" * 64, freeze_hash=server_hash, beacon=beacon, entries=entries)
        assert script.order("b" * 64, server_hash, beacon, entries) == server


# --- nobody can compute the order before the public value exists ----------------------------------


def test_the_value_is_refused_before_the_freeze_before_it_is_due_and_a_second_time(shuffled):
    for user in bulk_students(3):
        claim_as(user, shuffled.slug)
    with pytest.raises(NotFrozen):
        draw_enter_beacon(event_id=shuffled.id, value="early", user_id=None)
    Event.objects.filter(pk=shuffled.pk).update(claim_opens_at=timezone.now() - timedelta(seconds=1))
    assert draw_freeze(event_id=shuffled.id) is True
    with pytest.raises(BeaconNotDue):  # due a minute after opening
        draw_enter_beacon(event_id=shuffled.id, value="not yet", user_id=None)
    later = shuffled.draw_beacon_due_at + timedelta(seconds=1)
    for bad in ("", "   ", "a\nb", "x" * 257):
        with pytest.raises(BadBeacon):
            draw_enter_beacon(event_id=shuffled.id, value=bad, user_id=None, now=later)
    draw_enter_beacon(event_id=shuffled.id, value="v1", user_id=None, now=later)
    with pytest.raises(BeaconAlreadyEntered):
        draw_enter_beacon(event_id=shuffled.id, value="v2", user_id=None, now=later)
    shuffled.refresh_from_db()
    assert shuffled.draw_beacon == "v1"


def test_without_the_public_value_no_order_exists_anywhere(client, shuffled, tmp_path):
    users = bulk_students(6)
    for user in users:
        claim_as(user, shuffled.slug)
    open_now(shuffled)
    assert freeze(shuffled) == [shuffled.id]
    # However many queue runs pass, the pre-queue is neither drawn nor decided.
    for _ in range(3):
        assert draw_due() == []
        queue_process_batch()
    assert QueueEntry.objects.filter(event=shuffled, prequeue=True, status="pending").count() == 6
    assert draw_make(event_id=shuffled.id) is False
    data = published(shuffled)
    assert data["seed"] is None and data["order"] == [] and data["beacon"] is None
    result = verify(tmp_path, data)
    assert result.returncode == 3 and "nobody can compute the order" in result.stderr
    html = client.get(f"/events/{shuffled.slug}/draw/").content.decode()
    assert 'id="draw-beacon-waiting"' in html and 'id="draw-list"' not in html


def test_knowing_the_seed_and_the_frozen_list_does_not_fix_the_order():
    """The operator's position before the value exists: seed and list known, order not.

    Every one of ten entries comes first under some public value, and no two of twenty values
    give the same order: whoever read the seed could regenerate an entry's id before the freeze,
    but cannot know which id would rank first.
    """
    entries = sorted(pseudonym_for(f"00000000-0000-4000-8000-{n:012d}") for n in range(10))
    frozen = draw.freeze_hash(commitment="c" * 64, beacon_source="s", beacon_due_at="", entries=entries)
    orders = [
        tuple(draw.draw_order(seed="d" * 64, freeze_hash=frozen, beacon=f"value-{n}", entries=entries))
        for n in range(60)
    ]
    assert len(set(orders[:20])) == 20
    assert {order[0] for order in orders} == set(entries)


def test_an_insider_who_reads_the_seed_before_the_freeze_cannot_put_an_entry_first():
    """The attack on a draw from the seed alone: regenerate a friend's queue id until it ranks
    first. Before the freeze, the best the insider can do is guess the public value; the value
    that comes after makes the friend's rank a lottery like everyone's."""
    rng = random.Random(22)
    seed, others = "e" * 64, [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(9)]
    firsts = 0
    for trial in range(20):
        guess = f"guess-{trial}"

        def rank_under_guess(public_id, others=others, guess=guess):
            entries = sorted(pseudonym_for(p) for p in [*others, public_id])
            frozen = draw.freeze_hash(commitment="c" * 64, beacon_source="s", beacon_due_at="", entries=entries)
            order = draw.draw_order(seed=seed, freeze_hash=frozen, beacon=guess, entries=entries)
            return order.index(pseudonym_for(public_id)), frozen, entries

        friend = next(
            public_id
            for public_id in (str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(1000))
            if rank_under_guess(public_id)[0] == 0
        )
        _, frozen, entries = rank_under_guess(friend)
        real = draw.draw_order(seed=seed, freeze_hash=frozen, beacon=f"published-{trial}", entries=entries)
        firsts += real[0] == pseudonym_for(friend)
    assert firsts <= 6  # 2 expected of 20 by luck alone; with the seed alone it was 20 of 20


# --- an insider's changes after the freeze are caught ----------------------------------------


def test_changing_an_entrys_id_after_the_freeze_is_caught_by_the_verifier(shuffled, tmp_path):
    users = bulk_students(8)
    for user in users:
        claim_as(user, shuffled.slug)
    open_now(shuffled)
    freeze(shuffled)
    saved_data = published(shuffled)
    saved = save(tmp_path, saved_data)
    # An operator with database access gives a friend's entry a new id (a new pseudonym, perhaps
    # one that ranks better), and rewrites the frozen list and even its hash to match.
    friend = QueueEntry.objects.filter(event=shuffled).order_by("id").first()
    old, new_id = pseudonym_for(friend.public_id), "00000000-0000-4000-8000-000000000001"
    QueueEntry.objects.filter(pk=friend.pk).update(public_id=new_id)
    shuffled.refresh_from_db()
    entries = sorted([p for p in shuffled.draw_entries if p != old] + [pseudonym_for(new_id)])
    fields = {
        "commitment": shuffled.draw_commitment,
        "beacon_source": shuffled.draw_beacon_source,
        "beacon_due_at": draw.utc_stamp(shuffled.draw_beacon_due_at),
    }
    Event.objects.filter(pk=shuffled.pk).update(
        draw_entries=entries, draw_freeze_hash=draw.freeze_hash(**fields, entries=entries)
    )
    draw_enter_beacon(event_id=shuffled.id, value="beacon", user_id=None)
    assert draw_due() == [shuffled.id]
    data = published(shuffled)
    # On its own the rewritten data is consistent; the copy saved at the freeze, or the freeze
    # hash written down then, shows the change.
    assert verify(tmp_path, data).returncode == 0
    with_saved = verify(tmp_path, data, "--saved", saved)
    assert with_saved.returncode == 1
    assert "MISMATCH: entries is unchanged" in with_saved.stderr
    assert "MISMATCH: freeze_hash is unchanged" in with_saved.stderr
    noted = verify(tmp_path, data, "--freeze-hash", saved_data["freeze_hash"])
    assert noted.returncode == 1 and "MISMATCH" in noted.stderr
    # A less careful operator who leaves the hash alone is caught without any saved copy.
    hash_left = {**data, "freeze_hash": saved_data["freeze_hash"]}
    assert verify(tmp_path, hash_left).returncode == 1


def test_an_entry_whose_id_changed_after_the_freeze_is_not_ranked_by_the_server(shuffled, tmp_path):
    users = bulk_students(5)
    for user in users:
        claim_as(user, shuffled.slug)
    open_now(shuffled)
    freeze(shuffled)
    moved = QueueEntry.objects.filter(event=shuffled).order_by("id").first()
    QueueEntry.objects.filter(pk=moved.pk).update(public_id="00000000-0000-4000-8000-000000000002")
    draw_enter_beacon(event_id=shuffled.id, value="beacon", user_id=None)
    draw_due()
    moved.refresh_from_db()
    ranked = QueueEntry.objects.filter(event=shuffled, sort_key__lt=0)
    assert ranked.count() == 4 and moved.sort_key == moved.id and not moved.prequeue  # behind the pre-queue
    assert verify(tmp_path, published(shuffled)).returncode == 0


# --- exactly once, and the edge of the freeze ------------------------------------------------


def test_draw_is_idempotent(shuffled):
    for user in bulk_students(4):
        claim_as(user, shuffled.slug)
    open_now(shuffled)
    assert freeze(shuffled) == [shuffled.id] and freeze(shuffled) == []
    draw_enter_beacon(event_id=shuffled.id, value="b", user_id=None)
    assert draw_make(event_id=shuffled.id) is True
    keys = list(QueueEntry.objects.order_by("id").values_list("sort_key", flat=True))
    assert draw_make(event_id=shuffled.id) is False
    assert draw_due() == []
    assert list(QueueEntry.objects.order_by("id").values_list("sort_key", flat=True)) == keys


@pytest.mark.django_db(transaction=True)
def test_freeze_and_draw_happen_exactly_once_under_concurrency(make_event):
    event = make_event(capacity=50, **shuffled_fields())
    for user in bulk_students(20):
        claim_as(user, event.slug)
    open_now(event)
    at = event.claim_opens_at + timedelta(milliseconds=500)
    assert sorted(race_values([lambda: draw_freeze(event_id=event.id, now=at)] * 6)) == [False] * 5 + [True]
    draw_enter_beacon(event_id=event.id, value="b", user_id=None)
    assert sorted(race_values([lambda: draw_make(event_id=event.id)] * 6)) == [False] * 5 + [True]
    event.refresh_from_db()
    keys = sorted(QueueEntry.objects.filter(event=event).values_list("sort_key", flat=True))
    assert keys == list(range(-20, 0))
    assert len(event.draw_order) == 20 == len(event.draw_entries)


@pytest.mark.django_db(transaction=True)
def test_a_claim_racing_the_freeze_is_in_the_frozen_list_or_behind_it(make_event, student):
    """A web server whose clock says "not open yet" sends a pre-queue claim while the worker
    freezes: the claim waits for the freeze and then queues behind, never slipping in unlisted."""
    event = make_event(capacity=10, **shuffled_fields())
    for user in bulk_students(3):
        claim_as(user, event.slug)
    open_now(event)
    frozen, release = threading.Event(), threading.Event()

    def freeze_and_hold():
        try:
            with transaction.atomic():
                draw_freeze(event_id=event.id, now=event.claim_opens_at + timedelta(milliseconds=500))
                frozen.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=freeze_and_hold)
    holder.start()
    assert frozen.wait(30)
    from claims.services import claim_submit

    before_opening = event.claim_opens_at - timedelta(seconds=5)
    outcome = []

    def claim():
        try:
            outcome.append(claim_submit(user=student, event_slug=event.slug, now=before_opening)[0])
        finally:
            connection.close()

    claimer = threading.Thread(target=claim)
    claimer.start()
    wait_for_lock_wait("FOR SHARE")
    release.set()
    holder.join(30)
    claimer.join(30)
    entry = QueueEntry.objects.get(user=student, event=event)
    event.refresh_from_db()
    assert outcome and outcome[0].prequeue is False and entry.prequeue is False
    assert len(event.draw_entries) == 3 and pseudonym_for(entry.public_id) not in event.draw_entries


# --- the queue while the value is awaited -------------------------------------------------------


def _decided(event: Event) -> dict[str, str]:
    return dict(QueueEntry.objects.filter(event=event).values_list("public_id", "status"))


def test_later_claims_get_the_seats_the_prequeue_cannot_need_at_once(make_event):
    event = make_event(capacity=5, **shuffled_fields())
    early = bulk_students(3)
    for user in early:
        claim_as(user, event.slug)
    open_now(event)
    late = bulk_students(4)
    late_ids = [claim_as(user, event.slug).json()["queue_id"] for user in late]
    freeze(event)  # the value is late
    while queue_process_batch().taken:
        pass
    # Two seats beyond the three the pre-queue may need go at once, in arrival order.
    statuses = _decided(event)
    assert [statuses[uuid.UUID(q)] for q in late_ids] == [
        "completed", "completed", "failed", "failed"
    ]  # fmt: skip
    assert set(QueueEntry.objects.filter(event=event, status="failed").values_list("reason", flat=True)) == {"sold_out"}
    assert QueueEntry.objects.filter(event=event, prequeue=True, status="pending").count() == 3
    from queueing.selectors import queue_delay_seconds

    assert queue_delay_seconds() < 5  # the pre-queue's wait for the value is not queue delay
    # The value arrives: the pre-queue gets its three seats.
    draw_enter_beacon(event_id=event.id, value="late value", user_id=None)
    draw_due()
    while queue_process_batch().taken:
        pass
    early_ids = {u.id for u in early}
    assert set(Ticket.objects.filter(event=event, status="active").values_list("user_id", flat=True)) >= early_ids
    event.refresh_from_db()
    assert event.remaining == 0 and Ticket.objects.filter(event=event, status="active").count() == 5


def test_a_later_claim_decided_after_the_draw_still_leaves_the_prequeue_its_seats(make_event):
    """Leased before the draw, decided after it (a worker mid-batch): the ranked pre-queue, not
    decided yet, still holds its seats."""
    from queueing.deciding import queue_decide_group

    event = make_event(capacity=3, **shuffled_fields())
    for user in bulk_students(3):
        claim_as(user, event.slug)
    open_now(event)
    freeze(event)
    late = bulk_students(1)[0]
    claim_as(late, event.slug)
    leased = queue_take_batch()
    assert [c.user_id for c in leased] == [late.id] and leased[0].after_prequeue
    draw_enter_beacon(event_id=event.id, value="v", user_id=None)
    draw_due()  # drawn: the pre-queue is ranked but not decided yet
    [decision] = queue_decide_group(leased)
    assert (decision.status, decision.reason) == ("failed", "sold_out")
    while queue_process_batch().taken:
        pass
    assert Ticket.objects.filter(event=event, status="active").count() == 3
    assert not Ticket.objects.filter(event=event, user=late).exists()


def test_prequeue_waits_from_the_draw_not_from_pressing_early(shuffled):
    from monitoring.health import check_queue
    from queueing.selectors import queue_delay_seconds

    for user in bulk_students(3):
        claim_as(user, shuffled.slug)
    QueueEntry.objects.update(created_at=timezone.now() - timedelta(minutes=30))  # pressed long ago
    assert queue_delay_seconds() == 0.0
    assert check_queue()["oldest_pending_seconds"] == 0
    open_now(shuffled)
    freeze(shuffled)
    assert queue_delay_seconds() == 0.0  # frozen, waiting for the value: not the queue's delay
    draw_enter_beacon(event_id=shuffled.id, value="v", user_id=None)
    before = timezone.now()
    draw_due()
    assert all(created >= before for created in QueueEntry.objects.values_list("created_at", flat=True))
    assert queue_delay_seconds() < 10


# --- pages and the earlier scheme ---------------------------------------------------------------


def test_each_student_sees_their_own_pseudonym(shuffled):
    users = bulk_students(3)
    ids = [claim_as(user, shuffled.slug).json()["queue_id"] for user in users]
    open_now(shuffled)
    freeze(shuffled)
    draw_enter_beacon(event_id=shuffled.id, value="v", user_id=None)
    draw_due()
    client = Client()
    client.force_login(users[1])
    page = client.get(f"/events/{shuffled.slug}/draw/").content.decode()
    mine = pseudonym_for(ids[1])
    assert f'id="draw-mine">{mine}<' in page
    assert page.count("← ") == 1
    shuffled.refresh_from_db()
    assert shuffled.draw_seed in page and 'id="draw-beacon">v<' in page


def test_a_draw_made_before_the_freeze_existed_is_published_and_checked_as_it_was(make_event, student, tmp_path):
    event = make_event(opening_mode=Event.OpeningMode.SHUFFLE_AT_OPEN)
    entries = sorted(pseudonym_for(f"00000000-0000-4000-8000-{n:012d}") for n in range(5))
    order = sorted(entries, key=lambda p: hashlib.sha256((event.draw_seed + p).encode()).hexdigest())
    Event.objects.filter(pk=event.pk).update(draw_revealed_at=timezone.now(), draw_entries=entries, draw_order=order)
    data = published(event)
    assert data["scheme"] == 1 and data["order"] == order
    result = verify(tmp_path, data)
    assert result.returncode == 0 and "scheme 1" in result.stderr
    # Its later claims are still decided: no freeze is awaited for a draw already made.
    assert claim_as(student, event.slug).status_code == 202
    assert [c.user_id for c in queue_take_batch()] == [student.id]


def test_draw_api_and_page_answer_404_and_405(client, make_event):
    assert client.get("/api/events/nope/draw/").status_code == 404
    assert client.get("/events/nope/draw/").status_code == 404
    draft = make_event(status="draft")
    assert client.get(f"/api/events/{draft.slug}/draw/").status_code == 404
    event = make_event()
    response = client.post(f"/api/events/{event.slug}/draw/")
    assert response.status_code == 405 and response.json()["error"]
    assert client.get(f"/events/{event.slug}/draw/").status_code == 200
