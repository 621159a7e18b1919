"""A fraud answer's notification and event lose their foreign keys in the database: those
tables are partitioned by month (notifications 0017, which dropped the constraints on
PostgreSQL). A change of Django's state only; the ORM's cascades stay."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversation", "0008_inbox_triage"),
        ("notifications", "0017_events_and_notifications_partitioned_by_month"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="fraudalertanswer",
                    name="event",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="notifications.event",
                    ),
                ),
                migrations.AlterField(
                    model_name="fraudalertanswer",
                    name="notification",
                    field=models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="fraud_answer",
                        to="notifications.notification",
                    ),
                ),
            ]
        ),
    ]
