"""Each audit log (a bank's, the platform's) becomes a scope of several lanes.

A lane is a hash chain with its own head row, so concurrent writers of one bank each lock
a lane of their own (portal.services.audit). The chain every scope had so far is its lane
0 and keeps its key ("bank:5", "platform"), which each entry's hash covers: every entry
stored before still verifies. The guard of 0013 now also keeps a head's scope and lane
for good, and makes a new head's key the one its scope and lane name. Every existing log
gets its other lanes now (`AUDIT_CHAIN_LANES` of them in all), empty.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

GENESIS_HASH = "0" * 64

FORWARD_ONLY = f"""
CREATE OR REPLACE FUNCTION portal_auditchain_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.head_seq <> 0 OR NEW.head_hash <> '{GENESIS_HASH}' THEN
            RAISE EXCEPTION 'portal_auditchain: a new chain head starts at sequence 0'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.key <> concat_ws('/', NEW.scope, nullif(NEW.lane, 0)) THEN
            RAISE EXCEPTION 'portal_auditchain: a chain head''s key names its scope and lane'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NEW;
    END IF;
    IF NEW.id <> OLD.id OR NEW.key <> OLD.key OR NEW.bank_id IS DISTINCT FROM OLD.bank_id
        OR NEW.scope <> OLD.scope OR NEW.lane <> OLD.lane THEN
        RAISE EXCEPTION 'portal_auditchain: a chain head never changes chains'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.head_seq <= OLD.head_seq THEN
        RAISE EXCEPTION 'portal_auditchain: a chain head only moves forward (% to % refused)',
            OLD.head_seq, NEW.head_seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM portal_auditevent
        WHERE chain_id = NEW.id AND seq = NEW.head_seq AND hash = NEW.head_hash
    ) THEN
        RAISE EXCEPTION 'portal_auditchain: a chain head moves only onto an entry of its chain '
            '(no entry #% with that hash)', NEW.head_seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

# 0013's function, for going back.
FORWARD_ONLY_BEFORE = f"""
CREATE OR REPLACE FUNCTION portal_auditchain_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.head_seq <> 0 OR NEW.head_hash <> '{GENESIS_HASH}' THEN
            RAISE EXCEPTION 'portal_auditchain: a new chain head starts at sequence 0'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NEW;
    END IF;
    IF NEW.id <> OLD.id OR NEW.key <> OLD.key OR NEW.bank_id IS DISTINCT FROM OLD.bank_id THEN
        RAISE EXCEPTION 'portal_auditchain: a chain head never changes chains'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.head_seq <= OLD.head_seq THEN
        RAISE EXCEPTION 'portal_auditchain: a chain head only moves forward (% to % refused)',
            OLD.head_seq, NEW.head_seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM portal_auditevent
        WHERE chain_id = NEW.id AND seq = NEW.head_seq AND hash = NEW.head_hash
    ) THEN
        RAISE EXCEPTION 'portal_auditchain: a chain head moves only onto an entry of its chain '
            '(no entry #% with that hash)', NEW.head_seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def lane_zero(apps, schema_editor):
    """Every existing chain is lane 0 of the scope its key names. The heads' guard refuses
    any update that does not move a head forward, so it is off for this one statement
    (the migration's role owns the table)."""
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        schema_editor.execute(
            "ALTER TABLE portal_auditchain DISABLE TRIGGER portal_auditchain_forward_only"
        )
    schema_editor.execute("UPDATE portal_auditchain SET scope = key, lane = 0")
    if postgres:
        schema_editor.execute(
            "ALTER TABLE portal_auditchain ENABLE TRIGGER portal_auditchain_forward_only"
        )
        schema_editor.execute(FORWARD_ONLY, params=None)


def lanes_ahead(apps, schema_editor):
    """The other lanes of every existing log, made now (as many as AUDIT_CHAIN_LANES says
    at this moment), so that no writer waits for another creating them later."""
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite (the demo) has one lane
    schema_editor.execute(
        "INSERT INTO portal_auditchain (key, scope, lane, bank_id, head_seq, head_hash) "
        "SELECT chain.scope || '/' || n, chain.scope, n, chain.bank_id, 0, %s "
        "FROM portal_auditchain AS chain, generate_series(1, %s - 1) AS n "
        "WHERE chain.lane = 0 ON CONFLICT DO NOTHING",
        params=[GENESIS_HASH, settings.AUDIT_CHAIN_LANES],
    )


def guard_before(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD_ONLY_BEFORE, params=None)


class Migration(migrations.Migration):
    dependencies = [("portal", "0028_notification_policy_first_versions")]

    operations = [
        migrations.AddField(
            model_name="auditchain",
            name="scope",
            field=models.CharField(default="", max_length=40),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditchain",
            name="lane",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name="auditchain",
            name="bank",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="audit_chains",
                to="portal.bank",
            ),
        ),
        migrations.RunPython(lane_zero, guard_before),
        migrations.AddConstraint(
            model_name="auditchain",
            constraint=models.UniqueConstraint(
                fields=("scope", "lane"), name="one_chain_per_scope_lane"
            ),
        ),
        migrations.RunPython(lanes_ahead, migrations.RunPython.noop),
        migrations.AddField(
            model_name="auditintegritycheck",
            name="broken_lane",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AlterModelOptions(
            name="auditevent",
            options={"ordering": ["occurred_at", "id"]},
        ),
        migrations.AddField(
            model_name="auditcheckpoint",
            name="lanes",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
