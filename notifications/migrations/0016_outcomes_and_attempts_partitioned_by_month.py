"""The outcome feed and the delivery attempts become tables partitioned by month, on
PostgreSQL (core/db/partitions.py): their ids begin with their month, each month is a
partition, the rows written before are the `legacy` partition. This month's partition
and the next `NOTIFICATIONS_PARTITIONS_AHEAD` are made now; beat makes the later ones.

The tables lose their foreign keys in the database (a partition with one could not be
dropped without locking the table it references); the models say so (`db_constraint=False`,
a change of Django's state only, the SQL being the RunPython's), and the ORM's cascades
stay. Elsewhere (SQLite for
the demo) the tables stay plain and nothing happens.

On a large existing table this holds its lock while the legacy partition is attached
(one read of the table, to check its ids): run it in a quiet hour.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

from core.db import partitions

TABLES = ("notifications_outcome", "notifications_deliveryattempt")

# The foreign keys dropped, put back if the migration is reversed.
FOREIGN_KEYS = {
    "notifications_outcome": {
        "notifications_outcom_event_id_2b78cdd4_fk_notificat": (
            "FOREIGN KEY (event_id) REFERENCES notifications_event(id)"
            " DEFERRABLE INITIALLY DEFERRED"
        ),
        "notifications_outcom_notification_id_81d01257_fk_notificat": (
            "FOREIGN KEY (notification_id) REFERENCES notifications_notification(id)"
            " DEFERRABLE INITIALLY DEFERRED"
        ),
        "notifications_outcome_bank_id_cc6d766f_fk_portal_bank_id": (
            "FOREIGN KEY (bank_id) REFERENCES portal_bank(id) DEFERRABLE INITIALLY DEFERRED"
        ),
    },
    "notifications_deliveryattempt": {
        "notifications_delive_notification_id_2e6cf679_fk_notificat": (
            "FOREIGN KEY (notification_id) REFERENCES notifications_notification(id)"
            " DEFERRABLE INITIALLY DEFERRED"
        ),
    },
}


def partition(apps, schema_editor):
    if not partitions.supported(schema_editor.connection):
        return
    this = partitions.Month.of(timezone.now())
    months = [this + n for n in range(settings.NOTIFICATIONS_PARTITIONS_AHEAD + 1)]
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(partitions.FUNCTION_SQL)
        for table in TABLES:
            partitions.table_partition(cursor, table, months)
        # Where the application's role owns nothing, beat makes and drops months as a
        # member of the role that owns these tables (docker/postgres/10-bankside-roles.sh).
        partitions.tables_own(cursor, TABLES)


def unpartition(apps, schema_editor):
    if not partitions.supported(schema_editor.connection):
        return
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            partitions.table_unpartition(cursor, table, FOREIGN_KEYS[table])
        cursor.execute(partitions.FUNCTION_DROP_SQL)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0015_notifications_no_longer_shared"),
        ("portal", "0028_notification_policy_first_versions"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, elidable=False),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="deliveryattempt",
                    name="notification",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="delivery_attempts",
                        to="notifications.notification",
                    ),
                ),
                migrations.AlterField(
                    model_name="outcome",
                    name="bank",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="outcomes",
                        to="portal.bank",
                    ),
                ),
                migrations.AlterField(
                    model_name="outcome",
                    name="event",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="outcomes",
                        to="notifications.event",
                    ),
                ),
                migrations.AlterField(
                    model_name="outcome",
                    name="notification",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="notifications.notification",
                    ),
                ),
            ]
        ),
    ]
