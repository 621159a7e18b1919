"""The audit chain heads' guard finds the entry a head moves onto through the unique index
on (chain, position), whatever the planner's statistics say.

Each append moves a lane head, and the guard (0013, 0029) checks that the entry it moves
onto is there. Its query is planned once per connection: while the log is small, or its
statistics old (autovacuum behind, or off), the planner picked a scan of the whole log,
and kept it for that connection's life as the log grew, so each append cost more than the
one before. The guard now never scans the log.
"""

from django.db import migrations


def index_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER FUNCTION portal_auditchain_forward_only() SET enable_seqscan = off", params=None
        )


def as_planned(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER FUNCTION portal_auditchain_forward_only() RESET enable_seqscan", params=None
        )


class Migration(migrations.Migration):
    dependencies = [("portal", "0029_audit_chain_lanes")]

    operations = [migrations.RunPython(index_only, as_planned)]
