"""Sessions in signed cookies, the user in process memory, and the revocation feed that ends them.

In one process: what a process in sync with the feed answers from memory (nothing asked of
PostgreSQL or Redis), what it applies from the feed, and what a process in doubt does (asks
PostgreSQL on every request). Several real processes: test_revocation_processes.py.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import revocation
from accounts.models import Revocation
from tools.testing import RedisMonitor, logged_in_session

pytestmark = pytest.mark.django_db

# A view that answers 200 only to a logged-in user (401 otherwise).
PRIVATE = "/api/me/tickets/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    assert client.get(PRIVATE).status_code == 200  # the user is now kept in this process
    return client


def same_cookie(client: Client) -> Client:
    """The same session cookie in another browser (a stolen copy, or another tab)."""
    other = Client()
    other.cookies["sessionid"] = client.cookies["sessionid"].value
    return other


def another_process_reads_the_feed() -> None:
    """What another process knows: only the feed (its own memory starts empty), read once."""
    revocation.reset()
    revocation.poll()


def test_a_logged_in_read_asks_neither_postgresql_nor_redis(student):
    client = logged_in(student)
    with CaptureQueriesContext(connection) as queries, RedisMonitor() as redis:
        response = client.get(PRIVATE)
        assert client.get("/api/ping/").status_code == 200
    assert response.status_code == 200 and response.wsgi_request.user == student
    # The view's own query (the student's tickets), nothing for the session or the user.
    assert [q["sql"] for q in queries.captured_queries if "accounts_" in q["sql"]] == []
    assert len(queries.captured_queries) == 1, queries.captured_queries
    assert redis.sent() == []


def test_the_session_is_a_signed_cookie_with_its_own_id(student):
    client = logged_in(student)
    session = client.session  # as Django's engine reads the cookie
    assert session[revocation.SID_KEY] and session["_auth_user_id"] == str(student.pk)
    forged = Client()
    value = client.cookies["sessionid"].value
    forged.cookies["sessionid"] = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    assert forged.get(PRIVATE).status_code == 401  # tampered with, it is nobody's


def test_logout_ends_the_session_for_every_holder_of_the_cookie(student):
    client = logged_in(student)
    stolen = same_cookie(client)
    assert stolen.get(PRIVATE).status_code == 200
    client.post("/accounts/logout/")
    assert stolen.get(PRIVATE).status_code == 401  # this process: at once
    entry = Revocation.objects.get(kind=Revocation.Kind.SESSION)
    assert entry.user_id == student.pk
    another_process_reads_the_feed()
    assert stolen.get(PRIVATE).status_code == 401  # another process: from the feed


def test_logging_in_again_in_the_same_browser_ends_the_session_before(student):
    from django.contrib.auth import login
    from django.http import HttpRequest

    old = logged_in(student)
    stolen = same_cookie(old)
    # The same browser logs in again: the login keeps the browser's session, with a new id.
    request = HttpRequest()
    request.session = old.session
    login(request, student, "accounts.backends.NimOrEmailBackend")
    request.session.save()
    assert stolen.get(PRIVATE).status_code == 401


def test_a_logged_in_session_without_an_id_is_refused(student):
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session.update(
        {
            SESSION_KEY: str(student.pk),
            BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0],
            HASH_SESSION_KEY: student.get_session_auth_hash(),
        }
    )
    session.save()
    client = Client()
    client.cookies["sessionid"] = session.session_key
    assert client.get(PRIVATE).status_code == 401  # it could never be logged out


@pytest.mark.parametrize("where", ["here", "elsewhere"])
def test_a_password_change_ends_the_other_sessions(student, where):
    client = logged_in(student)
    student.set_password("a-brand-new-pass!")
    student.save()
    if where == "elsewhere":
        another_process_reads_the_feed()
    assert client.get(PRIVATE).status_code == 401


@pytest.mark.parametrize("where", ["here", "elsewhere"])
def test_deactivation_ends_every_session(student, where):
    client = logged_in(student)
    student.is_active = False
    student.save()  # what the admin does
    if where == "elsewhere":
        another_process_reads_the_feed()
    assert client.get(PRIVATE).status_code == 401


def test_a_deleted_user_is_nobody(student):
    client = logged_in(student)
    student.delete()
    another_process_reads_the_feed()
    assert client.get(PRIVATE).status_code == 401


@pytest.mark.parametrize("side", ["user", "group"])
def test_a_group_change_drops_the_users_copy(make_user, side):
    user = make_user()
    client = logged_in(user)
    assert user.pk in revocation.state.users
    group = Group.objects.create(name="door helpers")
    if side == "user":
        user.groups.add(group)
    else:
        group.user_set.add(user)
    assert user.pk not in revocation.state.users
    assert Revocation.objects.filter(kind=Revocation.Kind.USER, user_id=user.pk).exists()
    assert client.get(PRIVATE).wsgi_request.user.groups.filter(name="door helpers").exists()


def test_a_change_of_a_groups_permissions_drops_every_copy(student):
    from django.contrib.auth.models import Permission

    logged_in(student)
    Group.objects.create(name="helpers").permissions.add(Permission.objects.first())
    assert not revocation.state.users
    assert Revocation.objects.filter(kind=Revocation.Kind.ALL).exists()


def test_a_last_login_or_a_new_user_writes_nothing_to_the_feed(make_user, student):
    from django.contrib.auth.models import update_last_login

    make_user()
    update_last_login(None, student)
    assert not Revocation.objects.exists()


def test_changes_get_numbers_in_commit_order_without_gaps(make_user):
    users = [make_user() for _ in range(3)]
    for user in users:
        user.is_staff = True
        user.save()
    revocation.users_changed(user_ids=[u.pk for u in users])  # one change of many users: one number
    seqs = list(Revocation.objects.order_by("seq", "user_id").values_list("seq", flat=True))
    first = seqs[0]
    assert seqs == [first, first + 1, first + 2, first + 3, first + 3, first + 3]


# --- the watcher's reading ---------------------------------------------------------------------


def test_a_process_in_sync_applies_only_what_is_new(student, other_student):
    revocation.reset()
    revocation.poll()
    revocation.state.users[student.pk] = student
    other_student.first_name = "Changed"
    other_student.save()
    revocation.state.users[other_student.pk] = other_student  # as if read again before the poll
    revocation.poll()
    assert student.pk in revocation.state.users  # untouched
    assert other_student.pk not in revocation.state.users
    assert revocation.in_sync()


def test_a_gap_in_the_feed_makes_the_process_start_again(student):
    client = logged_in(student)
    revocation.reset()
    revocation.poll()
    seen = revocation.state.last_seq
    client.post("/accounts/logout/")
    student.first_name = "Changed"
    student.save()
    # A process that has read nothing since ``seen`` holds the user and no ended session...
    revocation.reset()
    revocation.state.last_seq = seen
    revocation.state.users[student.pk] = student
    Revocation.objects.filter(kind=Revocation.Kind.USER).delete()  # ...and the user's entry was pruned
    revocation.poll()
    assert student.pk not in revocation.state.users  # every copy dropped: it cannot know which
    assert client.session.get(revocation.SID_KEY) is None  # (the client's session was flushed)
    assert len(revocation.state.sessions) == 1  # the ended sessions read again
    assert revocation.in_sync()


def test_a_failed_read_is_not_in_sync(student, monkeypatch):
    from django.db import transaction

    revocation.reset()
    revocation.poll()
    synced = revocation.state.synced_at
    monkeypatch.setattr(revocation, "_READ", "SELECT no_such_column FROM accounts_revocation")
    with pytest.raises(Exception, match="no_such_column"), transaction.atomic():
        revocation.poll()
    assert revocation.state.synced_at == synced  # ages: the process is in doubt a second later


def test_old_entries_are_pruned_when_no_cookie_can_use_them(student, settings):
    from datetime import timedelta

    now = timezone.now()
    logged_in(student).post("/accounts/logout/")
    student.save()
    Revocation.objects.update(created_at=now - timedelta(days=2))
    assert revocation.feed_prune(now=now) == 1  # the user's entry; the session's is kept 14 days
    assert revocation.feed_prune(now=now + timedelta(seconds=settings.SESSION_COOKIE_AGE)) == 1
    assert not Revocation.objects.exists()


# --- a process in doubt -----------------------------------------------------------------------


def test_a_process_in_doubt_asks_postgresql_on_every_request(student):
    client = logged_in(student)
    revocation.reset()  # just started, or its watcher has not read the feed for a second
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/ping/").status_code == 200
        tables = sorted(
            "revocation" if "accounts_revocation" in q["sql"] else "user" if "accounts_user" in q["sql"] else q["sql"]
            for q in queries.captured_queries
        )
        assert tables == ["revocation", "user"], queries.captured_queries
    assert not revocation.state.users  # nothing kept while in doubt


def test_a_process_in_doubt_sees_what_another_process_wrote_at_once(student):
    """Entries written straight into the table (another process's logout), with this process's
    watcher not reading: each request finds them."""
    client = logged_in(student)
    stolen = same_cookie(client)
    other = logged_in(student)
    revocation.reset()
    session_id = client.session[revocation.SID_KEY]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_revocation (seq, kind, user_id, session_id, created_at)"
            " VALUES (999, 'session', %s, %s, now())",
            [student.pk, session_id],
        )
        cursor.execute("UPDATE accounts_user SET password = 'changed elsewhere' WHERE id = %s", [student.pk])
    assert stolen.get(PRIVATE).status_code == 401  # the session ended elsewhere
    assert other.get(PRIVATE).status_code == 401  # the password changed elsewhere


def test_sessions_made_for_load_tests_are_logins_like_any_other(student):
    cookie = logged_in_session(student)
    client = Client()
    client.cookies["sessionid"] = cookie
    assert client.get(PRIVATE).status_code == 200


def test_each_request_gets_its_own_copy_of_the_user(student):
    """What one request caches on its user (permissions, related rows) never reaches another."""
    client = logged_in(student)
    first = client.get(PRIVATE).wsgi_request._cached_user
    assert first.has_perm("tickets.can_check_in") is False  # caches the permissions on this copy
    second = client.get(PRIVATE).wsgi_request._cached_user
    held = revocation.state.users[student.pk]
    assert first is not second and first is not held
    assert "_perm_cache" in first.__dict__ and "_perm_cache" not in second.__dict__
    assert "_perm_cache" not in held.__dict__
    assert first._state is not held._state and second._state is not held._state
    assert (second.pk, second.password, second.email_verified_at) == (
        student.pk,
        student.password,
        student.email_verified_at,
    )
