"""The attendance confirmations moved to the tickets app (its migration 0007): state only, the
tables and their rows stay as they are."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0007_confirmations_from_waitlist"),
        ("waitlist", "0002_verbose_names_in_indonesian"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="ticketconfirmation", name="request"),
                migrations.RemoveField(model_name="ticketconfirmation", name="ticket"),
                migrations.DeleteModel(name="ConfirmationRequest"),
                migrations.DeleteModel(name="TicketConfirmation"),
            ],
        ),
    ]
