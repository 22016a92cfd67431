"""The staff roles: Django groups with the permissions each job needs, and no more.

Door volunteers used to need ``is_staff``, which also let them into the admin, the error log's
tracebacks and the claim-log exports. Each right is now a permission, checked in one place:

- ``tickets.can_check_in`` (tickets/door_views.py ``door_staff_required``, tickets.checkin): the scan
  page and its offline worker, ``POST /api/checkin/``, the door list and the sync of offline scans.
- ``monitoring.view_dashboard`` (monitoring/views.py): the dashboard, its JSON feeds and /metrics.
- ``monitoring.export_logs`` (monitoring/views.py): the CSV / JSON Lines exports.
- ``events.*_event``: the event admin.

Superusers hold every permission. A staff account without a group holds none of these: rights
are given, never implied by ``is_staff`` (docs/OPERATIONS.md, "Roles").
"""

from __future__ import annotations

from django.apps import apps as django_apps

DOOR_STAFF = "door staff"
OPERATORS = "operators"
ORGANISERS = "organisers"

# Group name -> "app_label.codename" of each permission it grants.
ROLES: dict[str, tuple[str, ...]] = {
    DOOR_STAFF: ("tickets.can_check_in",),
    OPERATORS: (
        "monitoring.view_dashboard",
        "monitoring.export_logs",
        # The admin pages operators work with: alert thresholds, alert history, the error log.
        "monitoring.view_alertrule",
        "monitoring.change_alertrule",
        "monitoring.view_alert",
        "monitoring.view_errorlog",
        "monitoring.view_metricsample",
        "monitoring.view_workerheartbeat",
    ),
    ORGANISERS: (
        "events.view_event",
        "events.add_event",
        "events.change_event",
        "events.delete_event",
        # The tickets of their events (read-only in the admin) and the attendee export.
        "tickets.view_ticket",
        # The event admin's action "Ask ticket holders to confirm attendance" leads here.
        "tickets.view_confirmationrequest",
        "tickets.add_confirmationrequest",
        "waitlist.view_waitlistentry",
    ),
}

# Which roles need the admin (is_staff): door staff log in on the student login page instead.
ADMIN_ROLES = frozenset({OPERATORS, ORGANISERS})

# Command-line names of the roles (create_staff --role).
ROLE_NAMES = {"door": DOOR_STAFF, "operator": OPERATORS, "organiser": ORGANISERS}


def roles_ensure(*, apps=django_apps, roles: dict[str, tuple[str, ...]] = ROLES) -> dict[str, object]:
    """Create the role groups and give each exactly its permissions; idempotent.

    ``apps`` is a migration's historical registry or the live one; ``roles`` the table to apply
    (a migration passes the one of its time). The permissions must exist (after ``migrate``, or
    ``create_permissions`` inside a migration). Returns the groups by name.
    """
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    groups = {}
    for name, perms in roles.items():
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".", 1)
            wanted.append(permission_model.objects.get(content_type__app_label=app_label, codename=codename))
        group, _created = group_model.objects.get_or_create(name=name)
        group.permissions.set(wanted)
        groups[name] = group
    return groups
