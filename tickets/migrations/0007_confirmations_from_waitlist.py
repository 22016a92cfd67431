"""The attendance confirmations move here from the waiting list, with their tables and rows.

State only: the tables keep their names (``db_table``) and every row stays. The content types move
too, so the permissions granted on them (the organisers' role) and the admin's history follow.
The waiting list forgets the models in its own migration 0003, after this one.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


MODELS = ("confirmationrequest", "ticketconfirmation")


def _move_content_types(apps, source: str, target: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    for model in MODELS:
        # A content type made for the new place meanwhile (none, unless post_migrate ran between)
        # gives way to the old one, which carries the permissions and the history.
        content_type.objects.filter(app_label=target, model=model).delete()
        content_type.objects.filter(app_label=source, model=model).update(app_label=target)
    content_type.objects.clear_cache()


def forwards(apps, schema_editor):
    _move_content_types(apps, "waitlist", "tickets")


def backwards(apps, schema_editor):
    _move_content_types(apps, "tickets", "waitlist")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("events", "0005_verbose_names_in_indonesian"),
        ("waitlist", "0002_verbose_names_in_indonesian"),
        ("tickets", "0006_verbose_names_in_indonesian"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ConfirmationRequest",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("deadline", models.DateTimeField(verbose_name="deadline")),
                        (
                            "created_at",
                            models.DateTimeField(default=django.utils.timezone.now, verbose_name="created at"),
                        ),
                        ("closed_at", models.DateTimeField(blank=True, null=True, verbose_name="released at")),
                        ("released", models.PositiveIntegerField(default=0, verbose_name="tickets released")),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="created by",
                            ),
                        ),
                        (
                            "event",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="confirmation_requests",
                                to="events.event",
                                verbose_name="event",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "attendance confirmation request",
                        "verbose_name_plural": "attendance confirmation requests",
                        "db_table": "waitlist_confirmationrequest",
                        "ordering": ["-created_at"],
                    },
                ),
                migrations.CreateModel(
                    name="TicketConfirmation",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("confirmed_at", models.DateTimeField(blank=True, null=True, verbose_name="confirmed at")),
                        (
                            "request",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="confirmations",
                                to="tickets.confirmationrequest",
                                verbose_name="request",
                            ),
                        ),
                        (
                            "ticket",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="confirmations",
                                to="tickets.ticket",
                                verbose_name="ticket",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "ticket confirmation",
                        "verbose_name_plural": "ticket confirmations",
                        "db_table": "waitlist_ticketconfirmation",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("request", "ticket"), name="waitlist_one_confirmation_per_ticket"
                            )
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
