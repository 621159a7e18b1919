"""Stamp a bank's delivery rules whenever its policies or templates change.

On PostgreSQL, triggers on the policy and template tables give the bank a new stamp from
a sequence on every inserted, changed or deleted row, whatever writes it (a service, the
admin, a data migration, plain SQL). Banks get their first stamp here. Other databases
(SQLite, the demo) keep no stamps: the API reads the rules for every post there.
"""

import django.db.models.deletion
from django.db import migrations, models

SEQUENCE = "portal_delivery_rules_stamp_seq"
FUNCTION = "portal_delivery_rules_touched"
WATCHED = ("NotificationPolicy", "MessageTemplate")


def _tables(apps):
    table = lambda name: apps.get_model("portal", name)._meta.db_table  # noqa: E731
    return table("DeliveryRulesStamp"), table("Bank"), [table(name) for name in WATCHED]


def triggers_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    stamps, banks, watched = _tables(apps)
    schema_editor.execute(f"CREATE SEQUENCE {SEQUENCE}")
    schema_editor.execute(
        f"""
        CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                INSERT INTO {stamps} (bank_id, stamp) VALUES (OLD.bank_id, nextval('{SEQUENCE}'))
                ON CONFLICT (bank_id) DO UPDATE SET stamp = EXCLUDED.stamp;
            END IF;
            IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.bank_id <> OLD.bank_id) THEN
                INSERT INTO {stamps} (bank_id, stamp) VALUES (NEW.bank_id, nextval('{SEQUENCE}'))
                ON CONFLICT (bank_id) DO UPDATE SET stamp = EXCLUDED.stamp;
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    for table in watched:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_rules_touched AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"
        )
    schema_editor.execute(
        f"INSERT INTO {stamps} (bank_id, stamp) SELECT id, nextval('{SEQUENCE}') FROM {banks}"
    )


def triggers_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    _, _, watched = _tables(apps)
    for table in watched:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_rules_touched ON {table}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
    schema_editor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0009_composite_indexes_serve_foreign_keys"),
    ]

    operations = [
        migrations.CreateModel(
            name="DeliveryRulesStamp",
            fields=[
                (
                    "bank",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="portal.bank",
                    ),
                ),
                ("stamp", models.BigIntegerField()),
            ],
        ),
        migrations.RunPython(triggers_create, triggers_drop),
    ]
