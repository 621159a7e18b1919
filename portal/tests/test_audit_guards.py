"""The audit log can be neither wiped nor rewound by the application's database role.

The attacker here holds a SQL connection of a role like the application's: it may read
and write every table (TRUNCATE included, the most such a role could be given) but owns
none, so it cannot drop or disable triggers.
"""

import re
import uuid
from contextlib import contextmanager

import pytest
from django.db import DatabaseError, connection, transaction

from portal.audit import Actor
from portal.models import AuditChain, AuditCheckpoint, AuditEvent
from portal.selectors import audit_chains_verify
from portal.services import audit_checkpoint_sign, audit_record
from portal.services.audit import AuditEntry, audit_append_last, audit_record_many
from portal.tests.factories import BankFactory
from portal.tests.test_audit import run_verify

pytestmark = pytest.mark.django_db

ALICE = Actor("staff", "7", "alice")
REFUSED = r"append-only|chain head|refused"


@pytest.fixture
def app_role():
    """A role with every privilege on the tables and sequences, owning none of them."""
    role = f"bankside_app_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOLOGIN NOSUPERUSER")
        cursor.execute(f"GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public TO {role}")
    return role


@contextmanager
def connected_as(role):
    with connection.cursor() as cursor:
        # Fire the deferred foreign-key checks of the rows just written, or TRUNCATE waits.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"SET LOCAL ROLE {role}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def attack(sql, params=()):
    with (
        pytest.raises(DatabaseError, match=REFUSED),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


@pytest.fixture
def chain():
    """A bank with an honest chain of three entries and a signed checkpoint."""
    bank = BankFactory(slug="harbour")
    for n in range(3):
        audit_record(actor=ALICE, action="config.changed", bank=bank, details={"n": n})
    audit_checkpoint_sign(actor=ALICE, bank=bank)
    return AuditChain.objects.get(bank=bank, lane=0)


def assert_untouched(chain):
    head = AuditChain.objects.get(pk=chain.pk)
    assert (head.head_seq, head.head_hash) == (chain.head_seq, chain.head_hash)
    assert AuditEvent.objects.filter(chain=chain).count() == chain.head_seq
    assert AuditCheckpoint.objects.filter(chain=chain).count() == 1
    code, out, err = run_verify("--bank", "harbour")
    assert code == 0, err
    assert f"intact, {chain.head_seq} entries" in out


def test_the_entries_cannot_be_truncated(app_role, chain):
    with connected_as(app_role):
        attack("TRUNCATE portal_auditevent")
        attack("TRUNCATE portal_auditevent, portal_auditcheckpoint, portal_auditintegritycheck")
        attack(
            "TRUNCATE portal_auditevent, portal_auditchain, portal_auditcheckpoint, "
            "portal_auditintegritycheck"
        )
        attack("TRUNCATE portal_bank CASCADE")

    assert_untouched(chain)


def test_a_chain_head_cannot_be_rewound(app_role, chain):
    first = AuditEvent.objects.get(chain=chain, seq=1)

    with connected_as(app_role):
        attack(
            "UPDATE portal_auditchain SET head_seq = 0, head_hash = %s WHERE id = %s",
            ["0" * 64, chain.pk],
        )
        attack(
            "UPDATE portal_auditchain SET head_seq = 1, head_hash = %s WHERE id = %s",
            [first.hash, chain.pk],
        )

    assert_untouched(chain)


def test_a_chain_head_cannot_be_forged_forward(app_role, chain):
    other = BankFactory()
    foreign = audit_record(actor=ALICE, action="config.changed", bank=other)
    for _ in range(3):
        audit_record(actor=ALICE, action="config.changed", bank=other)

    with connected_as(app_role):
        # No entry at all at that position.
        attack(
            "UPDATE portal_auditchain SET head_seq = head_seq + 1, head_hash = %s WHERE id = %s",
            ["f" * 64, chain.pk],
        )
        # Another chain's entry at that position.
        attack(
            "UPDATE portal_auditchain SET head_seq = 4, head_hash = %s WHERE id = %s",
            [AuditEvent.objects.get(bank=other, seq=4).hash, chain.pk],
        )
        # A chain head moved onto another bank.
        attack("UPDATE portal_auditchain SET bank_id = %s WHERE id = %s", [other.pk, chain.pk])
        # A new chain head that claims entries already.
        attack(
            "INSERT INTO portal_auditchain (key, head_seq, head_hash) VALUES ('bank:999', 1, %s)",
            [foreign.hash],
        )

    assert_untouched(chain)


def test_chain_heads_cannot_be_deleted(app_role, chain):
    with connected_as(app_role):
        attack("DELETE FROM portal_auditchain WHERE id = %s", [chain.pk])

    assert_untouched(chain)


def test_checkpoints_cannot_be_deleted_or_changed(app_role, chain):
    with connected_as(app_role):
        attack("DELETE FROM portal_auditcheckpoint")
        attack("UPDATE portal_auditcheckpoint SET head_seq = 1")
        attack("TRUNCATE portal_auditcheckpoint")

    assert_untouched(chain)


def test_every_writer_of_the_log_still_appends_as_the_application(app_role, chain):
    bank = chain.bank

    with connected_as(app_role), transaction.atomic():
        audit_record(actor=ALICE, action="config.changed", bank=bank)
        audit_record_many(
            actor=ALICE,
            bank_id=bank.pk,
            entries=[
                AuditEntry("message.sent", "notifications.notification", str(n)) for n in (1, 2)
            ],
        )
        audit_append_last(
            actor=ALICE,
            bank_id=bank.pk,
            entries=[AuditEntry("events.ingested", "notifications.event_batch", "1")],
        )
        audit_record(actor=ALICE, action="platform.checked", bank=None)
        audit_checkpoint_sign(actor=Actor.system("beat"))

    head = AuditChain.objects.get(pk=chain.pk)
    assert head.head_seq == chain.head_seq + 4
    assert all(report.intact for report in audit_chains_verify())
    code, out, err = run_verify()
    assert code == 0, err
    assert f"bank harbour: intact, {chain.head_seq + 4} entries" in out


def test_a_head_move_finds_its_entry_through_the_index_however_small_the_log():
    """The guard's check of the entry a head moves onto reads one index entry, never the
    whole log: planned while the log is small, a scan would grow with every append."""
    bank = BankFactory()
    for n in range(3):
        audit_record(actor=Actor.system("test"), action=f"test.before_{n}", bank=bank)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE portal_auditevent")  # statistics of a small log
    raw = connection.connection
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "LOAD 'auto_explain'; SET LOCAL auto_explain.log_min_duration = 0; "
                "SET LOCAL auto_explain.log_nested_statements = on; "
                "SET LOCAL auto_explain.log_level = 'notice'"
            )
        del raw.notices[:]
        audit_record(actor=Actor.system("test"), action="test.after", bank=bank)
        plans = "".join(raw.notices)

    check = plans[plans.index("Query Text: NOT EXISTS") :].split("Query Text:")[1]
    # Through one of the log's unique indexes (an index or a bitmap scan), never a scan.
    assert re.search(r"Scan (using|on) one_entry_per_(chain_position|hash)\b", check)
    assert "Seq Scan" not in check
