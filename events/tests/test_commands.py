from __future__ import annotations

import csv

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from events.models import Event


@pytest.mark.django_db
def test_create_event_opens_now_and_refuses_existing_slug():
    call_command("create_event", "--slug", "drill", "--capacity", "50")
    event = Event.objects.get(slug="drill")
    assert (event.capacity, event.remaining, event.status) == (50, 50, "published")
    assert event.claim_state() == "open"
    assert event.claim_closes_at < event.starts_at
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_event", "--slug", "drill", "--capacity", "5")


@pytest.mark.django_db
def test_create_event_opens_later():
    call_command("create_event", "--slug", "later", "--capacity", "5", "--opens-in", "600")
    event = Event.objects.get(slug="later")
    assert event.claim_state() == "not_open"
    assert 590 < (event.claim_opens_at - timezone.now()).total_seconds() <= 600


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ["--slug", "bad slug", "--capacity", "5"],
        ["--slug", "x" * 81, "--capacity", "5"],
        ["--slug", "ok", "--capacity", "0"],
        ["--slug", "ok", "--capacity", "5", "--opens-in", "-1"],
    ],
)
def test_create_event_validates(args):
    with pytest.raises(CommandError):
        call_command("create_event", *args)
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_create_students_writes_csv_and_students_can_log_in(tmp_path):
    out = tmp_path / "students.csv"
    call_command("create_students", "--count", "25", "--prefix", "77", "--password", "Load-Test-1", "--out", str(out))
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["nim", "password"]
    assert len(rows) == 26
    assert rows[1] == ["770000001", "Load-Test-1"]
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(nim__startswith="77")
    assert users.count() == 25
    assert all(user.is_verified and user.username == user.nim for user in users)
    # Idempotent: a rerun with more students skips the existing ones and lists all.
    call_command("create_students", "--count", "30", "--prefix", "77", "--password", "Load-Test-1", "--out", str(out))
    assert users.all().count() == 30
    assert len(list(csv.reader(out.open()))) == 31
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/",
        {"username": rows[5][0], "password": rows[5][1], "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
    )
    assert response.status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args", [["--count", "0"], ["--count", "5", "--prefix", "x"], ["--count", "100", "--prefix", "12345678"]]
)
def test_create_students_validates(args):
    with pytest.raises(CommandError):
        call_command("create_students", *args)


@pytest.mark.django_db
def test_seed_demo_still_works():
    call_command("seed_demo")
    call_command("seed_demo")
    assert Event.objects.get(slug="kuliah-umum").claim_state() == "open"


@pytest.mark.django_db
def test_the_demo_s_claim_then_scan_ends_in_admitted(make_user):
    """Following the README: claim a seat of the demo event, then scan it in as pintu/pintu."""
    from django.contrib.auth import get_user_model

    from tickets.checkin import ticket_check_in
    from tools.devservices import demo_logins
    from tools.testing import issue_ticket

    call_command("seed_demo")
    event = Event.objects.get(slug="kuliah-umum")
    door = get_user_model().objects.get(username="pintu")
    assert door.check_password("pintu")
    ticket = issue_ticket(event_id=event.id, user_id=make_user().id)
    assert ticket_check_in(code=ticket.redeem_code, staff_user=door, event_slug=event.slug).result == "admitted"
    # A demo seeded before the door could open early gets its door opened by the next `make run`.
    Event.objects.filter(pk=event.pk).update(door_opens_at=None)
    call_command("seed_demo")
    assert Event.objects.get(pk=event.pk).door_opens_at <= timezone.now()
    assert "pintu / pintu" in demo_logins("8000") and "admin / admin" in demo_logins("8000")


@pytest.mark.django_db
def test_create_students_is_refused_in_production(settings):
    from django.contrib.auth import get_user_model

    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="refused in production"):
        call_command("create_students", "--count", "5", "--prefix", "66")
    assert not get_user_model().objects.filter(nim__startswith="66").exists()


def test_create_students_is_refused_by_a_production_process(tmp_path):
    """The real command line with TICKETWAR_ENV=production exits with the refusal, before any database work."""
    import os
    import subprocess
    import sys

    from tools.testing import ROOT

    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(TICKETWAR_ENV="production", SECRET_KEY="x" * 50, ALLOWED_HOSTS="tickets.example.org", DEBUG="false",
               SITE_URL="https://tickets.example.org",
               DATABASE_URL="postgres://nobody@127.0.0.1:1/none")  # fmt: skip
    result = subprocess.run(
        [sys.executable, "manage.py", "create_students", "--count", "3", "--out", str(tmp_path / "s.csv")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "refused in production" in result.stderr
    assert not (tmp_path / "s.csv").exists()
