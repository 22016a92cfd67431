# The login limits count against keys (an account, an unknown login name, a device cookie, a
# client address), not only accounts. The old rows are recent failed logins only: dropped.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_nim_ascii_digits"),
    ]

    operations = [
        migrations.DeleteModel(name="LoginThrottle"),
        migrations.CreateModel(
            name="LoginThrottle",
            fields=[
                ("key", models.CharField(max_length=100, primary_key=True, serialize=False)),
                ("attempts", models.PositiveIntegerField(default=0, verbose_name="failed logins")),
                ("last_attempt_at", models.DateTimeField(blank=True, null=True, verbose_name="last failed login")),
                ("locked_until", models.DateTimeField(blank=True, null=True, verbose_name="locked until")),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="login_throttles",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
            ],
            options={
                "verbose_name": "login lock",
                "verbose_name_plural": "login locks",
            },
        ),
    ]
