"""The staff roles (accounts/roles.py): each persona against each staff-only door, page and feed.

Personas: a student, a door volunteer (not is_staff), an operator, an organiser, an is_staff
account in no group (what staff accounts were before the roles) and a superuser.
"""

from __future__ import annotations

import importlib
import json

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from accounts.roles import DOOR_STAFF, OPERATORS, ORGANISERS, ROLES, roles_ensure

PERSONAS = ("anonymous", "student", "door_staff", "operator", "organiser", "plain_staff", "superuser")


@pytest.fixture
def persona_client(client, request, make_user):
    """``persona_client(name)``: the test client logged in as that persona."""

    def login(name: str):
        if name == "superuser":
            user = make_user(staff=True)
            user.is_superuser = True
            user.save()
        elif name != "anonymous":
            user = request.getfixturevalue(name)
        if name != "anonymous":
            client.force_login(user)
        return client

    return login


def _checkin(client, event):
    return client.post(
        "/api/checkin/",
        json.dumps({"code": "ACDE-FGHJ", "event": event.slug}),
        content_type="application/json",
    )


def _get(path: str):
    return lambda client, event: client.get(path)


def _door_list(client, event):
    return client.get(f"/api/door/{event.slug}/list/")


def _door_sync(client, event):
    body = {"device_id": "phone-1", "sent_at": 1_700_000_000_000, "scans": []}
    return client.post(f"/api/door/{event.slug}/sync/", json.dumps(body), content_type="application/json")


DOOR = {"door_staff": 200, "superuser": 200}
OPS = {"operator": 200, "superuser": 200}
ORG = {"organiser": 200, "superuser": 200}
STAFF = {"operator": 200, "organiser": 200, "plain_staff": 200, "superuser": 200}

# what: (request, {persona: status}, the status of everyone else logged in)
CASES = {
    "scan page": (_get("/scan/"), DOOR, 403),
    "check-in API": (_checkin, DOOR, 403),
    "scan page's offline worker": (_get("/scan/sw.js"), DOOR, 403),
    "door list": (_door_list, DOOR, 403),
    "sync of offline scans": (_door_sync, DOOR, 403),
    "monitoring metrics API": (_get("/api/monitoring/metrics/"), OPS, 403),
    "monitoring alerts API": (_get("/api/monitoring/alerts/"), OPS, 403),
    "claim log export": (_get("/api/monitoring/export/claims.csv"), OPS, 403),
    "error log export (tracebacks)": (_get("/api/monitoring/export/errors.jsonl"), OPS, 403),
    "/metrics": (_get("/metrics"), OPS, 403),
    "monitoring dashboard": (_get("/admin/monitoring/dashboard/"), OPS, 403),
    "error log in the admin": (_get("/admin/monitoring/errorlog/"), OPS, 403),
    "events admin": (_get("/admin/events/event/"), ORG, 403),
    "add an event": (_get("/admin/events/event/add/"), ORG, 403),
    "admin index": (_get("/admin/"), STAFF, 302),
}
ANONYMOUS = {
    "scan page": 302,  # to the login page
    "check-in API": 401,
    "scan page's offline worker": 302,  # to the login page, as the scan page
    "door list": 401,
    "sync of offline scans": 401,
    "monitoring metrics API": 401,
    "monitoring alerts API": 401,
    "claim log export": 401,
    "error log export (tracebacks)": 401,
    "/metrics": 401,
    "monitoring dashboard": 302,
    "error log in the admin": 302,
    "events admin": 302,
    "add an event": 302,
    "admin index": 302,
}
# Logged in but not is_staff: the admin sends them to its login page instead of a 403.
ADMIN_PAGES = {"error log in the admin", "events admin", "add an event", "admin index"}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("what", sorted(CASES))
def test_each_persona_reaches_exactly_its_own_pages(persona_client, door_event, persona, what):
    send, allowed, refused = CASES[what]
    client = persona_client(persona)
    if persona == "anonymous":
        expected = ANONYMOUS[what]
    elif persona in allowed:
        expected = allowed[persona]
    elif what in ADMIN_PAGES and persona in {"student", "door_staff"}:
        expected = 302
    else:
        expected = refused
    response = send(client, door_event)
    assert response.status_code == expected, (persona, what, response.status_code)
    if expected == 302 and what in ADMIN_PAGES | {"monitoring dashboard"}:
        assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_the_scan_page_s_manifest_is_public_and_names_nothing_but_the_app(client):
    """Browsers fetch a web manifest without cookies: it must not need a login, nor hold any data."""
    response = client.get("/scan/manifest.webmanifest")
    assert response.status_code == 200 and response["Content-Type"] == "application/manifest+json"
    manifest = response.json()
    assert manifest["start_url"] == manifest["scope"] == "/scan/"
    assert set(manifest) == {"name", "short_name", "description", "lang", "start_url", "scope", "display",
                             "orientation", "background_color", "theme_color", "icons"}  # fmt: skip


def test_door_staff_are_not_admin_staff_and_log_in_on_the_login_page(client, door_staff, event):
    assert not door_staff.is_staff
    response = client.post(
        "/accounts/login/?next=/scan/", {"username": door_staff.username, "password": "s3cret-pass!"}
    )
    assert response.status_code == 302 and response["Location"] == "/scan/"
    page = client.get("/scan/").content.decode()
    assert 'id="scan-app"' in page and 'href="/scan/"' in page
    assert 'href="/admin/"' not in page  # no admin link for them


def test_the_nav_shows_scan_only_to_door_staff(client, student, operator, event):
    client.force_login(student)
    assert 'href="/scan/"' not in client.get("/").content.decode()
    client.force_login(operator)
    html = client.get("/").content.decode()
    assert 'href="/scan/"' not in html and 'href="/admin/"' in html


def test_the_admin_index_links_the_dashboard_only_for_operators(client, operator, organiser):
    client.force_login(operator)
    assert "/admin/monitoring/dashboard/" in client.get("/admin/").content.decode()
    client.force_login(organiser)
    assert "/admin/monitoring/dashboard/" not in client.get("/admin/").content.decode()


@pytest.mark.django_db
def test_the_migration_made_the_groups_and_roles_ensure_is_idempotent():
    made = {
        g.name: {f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.all()} for g in Group.objects.all()
    }
    assert made == {name: set(perms) for name, perms in ROLES.items()}
    roles_ensure()
    roles_ensure()
    assert Group.objects.filter(name__in=ROLES).count() == 3
    again = {
        g.name: {f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.all()} for g in Group.objects.all()
    }
    assert again == made


@pytest.mark.django_db
def test_the_migration_keeps_existing_staff_at_the_door(make_user, plain_staff, organiser, student):
    """Accounts that were is_staff before the roles get door staff (and nothing more) on upgrade."""
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    # The models as they were at that migration (later ones moved some of them between apps).
    apps = MigrationLoader(connection).project_state(("tickets", "0003_staff_roles"), at_end=True).apps
    migration = importlib.import_module("tickets.migrations.0003_staff_roles")
    migration.forwards(apps, None)
    migration.forwards(apps, None)  # idempotent
    assert list(plain_staff.groups.values_list("name", flat=True)) == [DOOR_STAFF]
    assert list(organiser.groups.values_list("name", flat=True)) == [ORGANISERS]  # had a role already
    assert not student.groups.exists()


@pytest.mark.django_db
def test_create_staff_makes_a_door_volunteer_without_admin_access(client, capsys):
    call_command("create_staff", "--username", "pintu-utara", "--role", "door")
    out = capsys.readouterr().out
    password = out.split("password: ", 1)[1].strip()
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="pintu-utara")
    assert not user.is_staff and list(user.groups.values_list("name", flat=True)) == [DOOR_STAFF]
    assert client.login(username="pintu-utara", password=password)
    assert client.get("/scan/").status_code == 200
    call_command("create_staff", "--username", "pintu-utara", "--role", "operator")
    user.refresh_from_db()
    assert user.is_staff and set(user.groups.values_list("name", flat=True)) == {DOOR_STAFF, OPERATORS}
    assert user.check_password(password)  # an existing account keeps its password


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["123456789", "a@b.c", " "])
def test_create_staff_refuses_student_like_names(username):
    with pytest.raises(CommandError):
        call_command("create_staff", "--username", username, "--role", "door")
