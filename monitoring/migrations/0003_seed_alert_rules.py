"""The four alert rules with their default thresholds (editable in the admin afterwards)."""

from django.db import migrations

RULES = [
    # metric, comparison, threshold (unit of the metric), cooldown seconds
    ("error_rate", "gt", 10.0, 60),  # percent of requests answered 5xx over 5 minutes
    ("response_time", "gt", 3000.0, 60),  # p95 in milliseconds over 5 minutes
    ("remaining_tickets", "lt", 50.0, 0),  # seats, per event with an open or future claim window
    ("concurrent_users", "gt", 1000.0, 120),  # students active in the last 5 minutes
]


def seed(apps, schema_editor):
    AlertRule = apps.get_model("monitoring", "AlertRule")
    for metric, comparison, threshold, cooldown in RULES:
        AlertRule.objects.get_or_create(
            metric=metric,
            defaults={"comparison": comparison, "threshold": threshold, "cooldown_seconds": cooldown},
        )


def unseed(apps, schema_editor):
    apps.get_model("monitoring", "AlertRule").objects.filter(metric__in=[r[0] for r in RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0002_alerts_samples_logs")]

    operations = [migrations.RunPython(seed, unseed)]
