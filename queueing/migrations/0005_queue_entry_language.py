"""The claim's language (its request's), for the ticket e-mail of a claim the worker decides.

A database default too: a web process of the previous release, whose INSERT does not name the
column, keeps working during a rolling update."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("queueing", "0004_claim_recheck_holder"),
    ]

    operations = [
        migrations.AddField(
            model_name="queueentry",
            name="language",
            field=models.CharField(blank=True, db_default="", default="", max_length=8, verbose_name="language"),
        ),
    ]
