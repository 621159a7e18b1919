"""The notifications' month partitions leave a fifth of each heap page free.

A notification is rewritten three times within moments of its insert: claimed, handed to
the Send API (`send_started_at`, in no index), recorded. On a full page each rewrite is a
new row version elsewhere with an entry in every index it qualifies for; with room on the
page, the middle one is a HOT update, with none. Partitions made from now on are made so
(`services.partitions.NOTIFICATIONS`); this sets the months already made. The pages
already full keep their rows: the setting applies to what is written from now on.
The legacy partition keeps its rows as they are, and its setting. PostgreSQL only.
"""

from django.db import migrations

FILLFACTOR = 80
MONTHS = """
SELECT c.relname FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = to_regclass('notifications_notification')
   AND c.relname ~ '^notifications_notification_[0-9]{4}_[0-9]{2}$'
"""


def _set(fillfactor: int | None):
    def run(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute(MONTHS)
            for (name,) in cursor.fetchall():
                quoted = connection.ops.quote_name(name)
                if fillfactor is None:
                    cursor.execute(f"ALTER TABLE {quoted} RESET (fillfactor)")
                else:
                    cursor.execute(f"ALTER TABLE {quoted} SET (fillfactor = {fillfactor})")

    return run


class Migration(migrations.Migration):
    dependencies = [("notifications", "0018_open_notifications_floor")]

    operations = [migrations.RunPython(_set(FILLFACTOR), _set(None))]
