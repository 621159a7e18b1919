"""The audit log can be neither wiped nor rewound, in the database itself.

0002 refuses UPDATE and DELETE of entries, but not TRUNCATE, and nothing guarded the chain
heads and the signed checkpoints: emptying the entries and setting the heads back to zero
left a log that `verify_audit_chain` found "intact, 0 entries". Now, whoever sends it:

- TRUNCATE of the entries, the checkpoints or the chain heads is refused;
- a checkpoint, once signed, is never updated or deleted;
- a chain head is never deleted, and starts empty (sequence 0, the genesis hash);
- a chain head only moves forward, onto an entry of its own chain: its new `head_seq` is
  greater than the old one, and an entry of that chain has that `seq` and a `hash` equal
  to the new `head_hash`. Its key and bank never change.

The application's role does not own these tables, so it can neither drop nor disable the
triggers. SQLite (the demo's embedded database) has no TRUNCATE and gets none of this: it
keeps 0002's guards.
"""

from django.db import migrations

GENESIS_HASH = "0" * 64

POSTGRES_UP = f"""
CREATE OR REPLACE FUNCTION portal_audit_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

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

CREATE TRIGGER portal_auditevent_no_truncate
    BEFORE TRUNCATE ON portal_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION portal_audit_refuse_change();

CREATE TRIGGER portal_auditcheckpoint_append_only
    BEFORE UPDATE OR DELETE ON portal_auditcheckpoint
    FOR EACH ROW EXECUTE FUNCTION portal_audit_refuse_change();
CREATE TRIGGER portal_auditcheckpoint_no_truncate
    BEFORE TRUNCATE ON portal_auditcheckpoint
    FOR EACH STATEMENT EXECUTE FUNCTION portal_audit_refuse_change();

CREATE TRIGGER portal_auditchain_forward_only
    BEFORE INSERT OR UPDATE ON portal_auditchain
    FOR EACH ROW EXECUTE FUNCTION portal_auditchain_forward_only();
CREATE TRIGGER portal_auditchain_no_delete
    BEFORE DELETE ON portal_auditchain
    FOR EACH ROW EXECUTE FUNCTION portal_audit_refuse_change();
CREATE TRIGGER portal_auditchain_no_truncate
    BEFORE TRUNCATE ON portal_auditchain
    FOR EACH STATEMENT EXECUTE FUNCTION portal_audit_refuse_change();
"""

POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS portal_auditchain_no_truncate ON portal_auditchain;
DROP TRIGGER IF EXISTS portal_auditchain_no_delete ON portal_auditchain;
DROP TRIGGER IF EXISTS portal_auditchain_forward_only ON portal_auditchain;
DROP TRIGGER IF EXISTS portal_auditcheckpoint_no_truncate ON portal_auditcheckpoint;
DROP TRIGGER IF EXISTS portal_auditcheckpoint_append_only ON portal_auditcheckpoint;
DROP TRIGGER IF EXISTS portal_auditevent_no_truncate ON portal_auditevent;
DROP FUNCTION IF EXISTS portal_auditchain_forward_only();
DROP FUNCTION IF EXISTS portal_audit_refuse_change();
"""


def install_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP, params=None)


def remove_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN, params=None)


class Migration(migrations.Migration):
    dependencies = [("portal", "0012_staff_totp_devices_encrypted")]

    operations = [migrations.RunPython(install_guards, remove_guards)]
