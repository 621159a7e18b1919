"""`bankside_month_id`, the default of every partitioned table's id, becomes a PL/pgSQL
function with the same result (core/db/partitions.py).

As a SQL function it was never inlined: it reads its moment twice, and the moment passed
is `clock_timestamp()`, volatile. So every statement calling it parsed and planned the
function's body again before its first row (on a three-row insert, half the statement's
time) and ran it through the SQL-function executor for each row (3.7 µs a row, 1.0 µs
now). PL/pgSQL keeps its plan for the session. Elsewhere (SQLite for the demo) there is no
such function and nothing happens.
"""

from django.db import migrations

from core.db import partitions

# The function as migration 0016 made it, put back if this one is reversed.
SQL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {partitions.ID_FUNCTION}(seq regclass, at timestamptz) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
  SELECT ((extract(year FROM at AT TIME ZONE 'UTC')::bigint - 2020) * 12
          + extract(month FROM at AT TIME ZONE 'UTC')::bigint - 1) << 40
         | nextval(seq)
$$
"""


def plpgsql(apps, schema_editor):
    if partitions.supported(schema_editor.connection):
        schema_editor.execute(partitions.FUNCTION_SQL)


def sql(apps, schema_editor):
    if partitions.supported(schema_editor.connection):
        schema_editor.execute(SQL_FUNCTION)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0018_open_notifications_floor"),
    ]

    operations = [
        migrations.RunPython(plpgsql, sql, elidable=False),
    ]
