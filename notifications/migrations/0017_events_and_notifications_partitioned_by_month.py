"""Events and notifications become tables partitioned by month, on PostgreSQL
(core/db/partitions.py), as the outcome feed and the delivery attempts did in 0016.

- An event's bank id is kept unique in `EventKey`, a plain table filled here from the
  events, since a partitioned table's unique constraints must contain its partition key.
  The constraint keeps its name, `one_event_per_bank_id`.
- A notification's id begins with its event's month (`services.outbox.write`; a check,
  `notification_in_its_events_month`, refuses any other), so the pair (event, link) is
  kept unique by `one_notification_per_link` on each partition: the legacy partition
  keeps the index it has, each month gets its own.
- At most one notification in flight per person: the partial unique index could hold
  only within a partition, so triggers keep one `InFlight` row per person instead, filled
  here from the notifications in flight.
- The tables lose their foreign keys in the database, and so do the tables that pointed
  at them (echoes and fraud answers): the models say so (`db_constraint=False`, a change
  of Django's state only, the SQL being the RunPython's); the ORM's cascades stay.

Elsewhere (SQLite for the demo) the tables stay plain: the key table is filled and used,
the in-flight index stays. On a large existing table this holds its lock while the legacy
partitions are attached and the keys copied: run it in a quiet hour.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

from core.db import partitions

EVENTS = "notifications_event"
NOTIFICATIONS = "notifications_notification"
UNIQUE = {NOTIFICATIONS: {"one_notification_per_link": ("event_id", "consent_id")}}

IN_FLIGHT_SQL = """
CREATE OR REPLACE FUNCTION bankside_in_flight() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' AND OLD.state = 'in_flight' AND OLD.digest IS NULL THEN
    DELETE FROM notifications_inflight
     WHERE page_id = OLD.page_id AND psid = OLD.psid AND notification_id = OLD.id;
  END IF;
  IF TG_OP <> 'DELETE' AND NEW.state = 'in_flight' AND NEW.digest IS NULL THEN
    INSERT INTO notifications_inflight (page_id, psid, notification_id)
    VALUES (NEW.page_id, NEW.psid, NEW.id);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER notification_in_flight_insert AFTER INSERT ON notifications_notification
  FOR EACH ROW WHEN (NEW.state = 'in_flight' AND NEW.digest IS NULL)
  EXECUTE FUNCTION bankside_in_flight();
CREATE TRIGGER notification_in_flight_update
  AFTER UPDATE OF state, digest, page_id, psid ON notifications_notification
  FOR EACH ROW WHEN (
    (OLD.state = 'in_flight' AND OLD.digest IS NULL)
      IS DISTINCT FROM (NEW.state = 'in_flight' AND NEW.digest IS NULL)
    OR (NEW.state = 'in_flight' AND NEW.digest IS NULL
        AND (OLD.page_id, OLD.psid) IS DISTINCT FROM (NEW.page_id, NEW.psid)))
  EXECUTE FUNCTION bankside_in_flight();
CREATE TRIGGER notification_in_flight_delete AFTER DELETE ON notifications_notification
  FOR EACH ROW WHEN (OLD.state = 'in_flight' AND OLD.digest IS NULL)
  EXECUTE FUNCTION bankside_in_flight();
"""
MONTH_CHECK_SQL = (
    "ALTER TABLE notifications_notification ADD CONSTRAINT notification_in_its_events_month"
    f" CHECK ((id >> {partitions.MONTH_SHIFT}) = (event_id >> {partitions.MONTH_SHIFT}))"
)
MONTH_CHECK_DROP_SQL = (
    "ALTER TABLE notifications_notification DROP CONSTRAINT notification_in_its_events_month"
)
IN_FLIGHT_DROP_SQL = """
DROP TRIGGER IF EXISTS notification_in_flight_insert ON notifications_notification;
DROP TRIGGER IF EXISTS notification_in_flight_update ON notifications_notification;
DROP TRIGGER IF EXISTS notification_in_flight_delete ON notifications_notification;
DROP FUNCTION IF EXISTS bankside_in_flight();
"""
IN_FLIGHT_INDEX_SQL = (
    "CREATE UNIQUE INDEX one_in_flight_per_person ON notifications_notification"
    " (page_id, psid) WHERE digest IS NULL AND state = 'in_flight'"
)

# The foreign keys dropped, put back if the migration is reversed.
FOREIGN_KEYS = {
    EVENTS: {
        "notifications_event_account_id_b062774b_fk_linking_account_id": (
            "FOREIGN KEY (account_id) REFERENCES linking_account(id) DEFERRABLE INITIALLY DEFERRED"
        ),
        "notifications_event_customer_id_3a492df6_fk_linking_customer_id": (
            "FOREIGN KEY (customer_id) REFERENCES linking_customer(id)"
            " DEFERRABLE INITIALLY DEFERRED"
        ),
        "notifications_event_bank_id_ffe0f67e_fk_portal_bank_id": (
            "FOREIGN KEY (bank_id) REFERENCES portal_bank(id) DEFERRABLE INITIALLY DEFERRED"
        ),
    },
    NOTIFICATIONS: {
        "notifications_notifi_account_id_e2a0bb0c_fk_linking_a": (
            "FOREIGN KEY (account_id) REFERENCES linking_account(id) DEFERRABLE INITIALLY DEFERRED"
        ),
        "notifications_notification_bank_id_3f6c1a35_fk_portal_bank_id": (
            "FOREIGN KEY (bank_id) REFERENCES portal_bank(id) DEFERRABLE INITIALLY DEFERRED"
        ),
        "notifications_notifi_consent_id_0680c833_fk_linking_c": (
            "FOREIGN KEY (consent_id) REFERENCES linking_consent(id) DEFERRABLE INITIALLY DEFERRED"
        ),
        "notifications_notifi_event_id_28551f97_fk_notificat": (
            "FOREIGN KEY (event_id) REFERENCES notifications_event(id)"
            " DEFERRABLE INITIALLY DEFERRED"
        ),
    },
}
REFERENCING = {
    "notifications_fraudalertanswer": {
        "notifications_frauda_event_id_81075523_fk_notificat": (
            "FOREIGN KEY (event_id) REFERENCES notifications_event(id)"
            " DEFERRABLE INITIALLY DEFERRED"
        ),
        "notifications_frauda_notification_id_4a00b209_fk_notificat": (
            "FOREIGN KEY (notification_id) REFERENCES notifications_notification(id)"
            " DEFERRABLE INITIALLY DEFERRED"
        ),
    },
    "notifications_messageecho": {
        "notifications_messag_notification_id_02c708f9_fk_notificat": (
            "FOREIGN KEY (notification_id) REFERENCES notifications_notification(id)"
            " DEFERRABLE INITIALLY DEFERRED"
        ),
    },
}


def keys_fill(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO notifications_eventkey (event_id, bank_id, reference)"
            " SELECT id, bank_id, event_id FROM notifications_event"
        )


def keys_empty(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DELETE FROM notifications_eventkey")


def partition(apps, schema_editor):
    if not partitions.supported(schema_editor.connection):
        return
    this = partitions.Month.of(timezone.now())
    months = [this + n for n in range(settings.NOTIFICATIONS_PARTITIONS_AHEAD + 1)]
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP INDEX one_in_flight_per_person")
        for table in (EVENTS, NOTIFICATIONS):
            partitions.table_partition(cursor, table, months, UNIQUE.get(table))
        cursor.execute(MONTH_CHECK_SQL)
        cursor.execute(IN_FLIGHT_SQL)
        cursor.execute(
            "INSERT INTO notifications_inflight (page_id, psid, notification_id)"
            " SELECT page_id, psid, id FROM notifications_notification"
            " WHERE state = 'in_flight' AND digest IS NULL"
        )
        partitions.tables_own(cursor, (EVENTS, NOTIFICATIONS))


def unpartition(apps, schema_editor):
    if not partitions.supported(schema_editor.connection):
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(IN_FLIGHT_DROP_SQL)
        cursor.execute(MONTH_CHECK_DROP_SQL)
        cursor.execute("DELETE FROM notifications_inflight")
        for table in (EVENTS, NOTIFICATIONS):
            partitions.table_unpartition(cursor, table, FOREIGN_KEYS[table], UNIQUE.get(table))
        cursor.execute(IN_FLIGHT_INDEX_SQL)
        for table, keys in REFERENCING.items():
            for name, definition in keys.items():
                cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")


class Migration(migrations.Migration):
    dependencies = [
        ("linking", "0011_manage_sharing_and_consent_texts"),
        ("notifications", "0016_outcomes_and_attempts_partitioned_by_month"),
        ("portal", "0029_audit_chain_lanes"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventKey",
            fields=[
                (
                    "event",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="key",
                        serialize=False,
                        to="notifications.event",
                    ),
                ),
                ("reference", models.CharField(max_length=64)),
            ],
        ),
        migrations.CreateModel(
            name="InFlight",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "page_id",
                        "psid",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("page_id", models.CharField(max_length=32)),
                ("psid", models.CharField(max_length=32)),
                ("notification_id", models.BigIntegerField()),
            ],
        ),
        migrations.RemoveConstraint(
            model_name="event",
            name="one_event_per_bank_id",
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(fields=["bank", "id"], name="event_by_bank"),
        ),
        migrations.AddField(
            model_name="eventkey",
            name="bank",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="portal.bank",
            ),
        ),
        migrations.AddConstraint(
            model_name="eventkey",
            constraint=models.UniqueConstraint(
                fields=("bank", "reference"), name="one_event_per_bank_id"
            ),
        ),
        migrations.RunPython(keys_fill, keys_empty, elidable=False),
        migrations.RunPython(partition, unpartition, elidable=False),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="account",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="linking.account",
                    ),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="bank",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="portal.bank",
                    ),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="customer",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="linking.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="messageecho",
                    name="notification",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="echoes",
                        to="notifications.notification",
                    ),
                ),
                migrations.AlterField(
                    model_name="notification",
                    name="account",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="linking.account",
                    ),
                ),
                migrations.AlterField(
                    model_name="notification",
                    name="bank",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notifications",
                        to="portal.bank",
                    ),
                ),
                migrations.AlterField(
                    model_name="notification",
                    name="consent",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notifications",
                        to="linking.consent",
                    ),
                ),
                migrations.AlterField(
                    model_name="notification",
                    name="event",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notifications",
                        to="notifications.event",
                    ),
                ),
            ]
        ),
    ]
