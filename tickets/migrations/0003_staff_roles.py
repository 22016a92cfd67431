"""The staff roles (accounts/roles.py): door staff, operators, organisers, as groups.

Idempotent: running it again (or ``seed_demo``, which calls the same function) leaves the
groups as they are. Staff accounts that existed before the roles (``is_staff`` only) are put in
the door-staff group, so the door keeps working on the day of the upgrade; monitoring and the
event admin must be granted explicitly (docs/OPERATIONS.md, "Roles").
"""

from __future__ import annotations

from django.contrib.auth.management import create_permissions
from django.db import migrations

# The roles as they were at this migration (accounts/roles.py has today's): later migrations
# move permissions (tickets 0007: the confirmation requests, from the waiting list).
ROLES_THEN = {
    "door staff": ("tickets.can_check_in",),
    "operators": (
        "monitoring.view_dashboard",
        "monitoring.export_logs",
        "monitoring.view_alertrule",
        "monitoring.change_alertrule",
        "monitoring.view_alert",
        "monitoring.view_errorlog",
        "monitoring.view_metricsample",
        "monitoring.view_workerheartbeat",
    ),
    "organisers": (
        "events.view_event",
        "events.add_event",
        "events.change_event",
        "events.delete_event",
        "tickets.view_ticket",
        "waitlist.view_confirmationrequest",
        "waitlist.add_confirmationrequest",
        "waitlist.view_waitlistentry",
    ),
}


def forwards(apps, schema_editor):
    from accounts.roles import DOOR_STAFF, roles_ensure

    # Permissions are normally created after all migrations (post_migrate): create them now.
    # create_permissions skips app configs without a models module, which historical ones lack.
    for app_config in apps.get_app_configs():
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = models_module
    groups = roles_ensure(apps=apps, roles=ROLES_THEN)
    user_model = apps.get_model("accounts", "User")
    for user in user_model.objects.filter(is_staff=True, is_superuser=False, is_active=True, groups=None):
        user.groups.add(groups[DOOR_STAFF])


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0001_initial"),
        ("events", "0002_fair_opening"),
        ("monitoring", "0004_dashboard_export_permissions"),
        ("tickets", "0002_can_check_in_permission"),
        ("waitlist", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
