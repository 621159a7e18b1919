"""The floor of open notifications (`OpenFloor`): one row, and on PostgreSQL the triggers
that lower it in the transaction that opens a notification older than yesterday's month.

A row that becomes pending or in flight (inserted so, or reopened from another state)
with an id below the first id of yesterday's month takes the floor row's lock and lowers
it to its month: the sweep that raises the floor takes the same lock before it looks for
open rows, so it never raises the floor past a month a running transaction is opening a
row in. Rows of the current month (nearly all) fire nothing: the `WHEN` clause tests the
id before any function is called, and the sweep never raises the floor beyond the month of
two days ago. Elsewhere (SQLite for the demo) the row stays at 0.
"""

from django.db import migrations, models

from core.db import partitions

OPEN = "('pending', 'in_flight')"
YESTERDAY = "now() - interval '1 day'"
OLD_ROW = f"NEW.id < {partitions.month_first_sql(YESTERDAY)}"

TRIGGERS_SQL = f"""
CREATE OR REPLACE FUNCTION bankside_open_floor_lower() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO notifications_openfloor (id, first_id)
  VALUES (1, (NEW.id >> {partitions.MONTH_SHIFT}) << {partitions.MONTH_SHIFT})
  ON CONFLICT (id) DO UPDATE
    SET first_id = least(notifications_openfloor.first_id, excluded.first_id);
  RETURN NULL;
END $$;
CREATE TRIGGER notification_open_floor_insert AFTER INSERT ON notifications_notification
  FOR EACH ROW WHEN (NEW.state IN {OPEN} AND {OLD_ROW})
  EXECUTE FUNCTION bankside_open_floor_lower();
CREATE TRIGGER notification_open_floor_update AFTER UPDATE OF state ON notifications_notification
  FOR EACH ROW WHEN (NEW.state IN {OPEN} AND OLD.state NOT IN {OPEN} AND {OLD_ROW})
  EXECUTE FUNCTION bankside_open_floor_lower();
"""  # noqa: S608 (constants only)
TRIGGERS_DROP_SQL = """
DROP TRIGGER IF EXISTS notification_open_floor_insert ON notifications_notification;
DROP TRIGGER IF EXISTS notification_open_floor_update ON notifications_notification;
DROP FUNCTION IF EXISTS bankside_open_floor_lower();
"""


def floor_make(apps, schema_editor):
    apps.get_model("notifications", "OpenFloor").objects.using(
        schema_editor.connection.alias
    ).create(pk=1, first_id=0)
    if partitions.supported(schema_editor.connection):
        schema_editor.execute(TRIGGERS_SQL)


def floor_unmake(apps, schema_editor):
    if partitions.supported(schema_editor.connection):
        schema_editor.execute(TRIGGERS_DROP_SQL)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0017_events_and_notifications_partitioned_by_month"),
    ]

    operations = [
        migrations.CreateModel(
            name="OpenFloor",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("first_id", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(floor_make, floor_unmake, elidable=False),
    ]
