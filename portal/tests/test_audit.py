import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from core import context
from core.tests.threads import run_together
from portal.audit import Actor
from portal.models import AuditChain, AuditEvent
from portal.selectors import audit_chains_verify
from portal.services import audit_record
from portal.tests.factories import BankFactory

pytestmark = pytest.mark.django_db

ALICE = Actor("staff", "7", "alice")


def record_many(bank, count, prefix="config.changed"):
    return [
        audit_record(actor=ALICE, action=prefix, bank=bank, details={"n": n}) for n in range(count)
    ]


def run_verify(*args):
    """Run `verify_audit_chain`; return (exit code, stdout, stderr)."""
    import io

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit_chain", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue(), err.getvalue()


def tamper(sql, params=()):
    """Write past the append-only guard, as an attacker with the table owner's rights could."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Fire the deferred foreign-key checks of the rows just written, or ALTER TABLE waits.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "ALTER TABLE portal_auditevent DISABLE TRIGGER portal_auditevent_append_only"
        )
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE portal_auditevent ENABLE TRIGGER portal_auditevent_append_only")


def test_entries_of_a_bank_form_one_chain_in_order():
    bank = BankFactory()
    first, second, third = record_many(bank, 3)

    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert first.prev_hash == "0" * 64
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    chain = AuditChain.objects.get(bank=bank, lane=0)
    assert (chain.head_seq, chain.head_hash) == (3, third.hash)


def test_each_bank_and_the_platform_have_their_own_chain():
    bank_a, bank_b = BankFactory(), BankFactory()
    a = audit_record(actor=ALICE, action="config.changed", bank=bank_a)
    b = audit_record(actor=ALICE, action="config.changed", bank=bank_b)
    platform = audit_record(actor=Actor.system("cron"), action="platform.checked", bank=None)

    assert (a.seq, b.seq, platform.seq) == (1, 1, 1)
    assert platform.chain.key == "platform"


def test_entry_records_actor_target_request_and_data_categories():
    bank = BankFactory()
    token = context.bind(context.RequestContext("req-12345678", "203.0.113.9"))
    try:
        event = audit_record(
            actor=ALICE,
            action="notification.sent",
            bank=bank,
            target=bank,
            data_categories=["transactions", "balances", "transactions"],
        )
    finally:
        context.reset(token)

    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.actor_type, stored.actor_id, stored.actor_label) == ("staff", "7", "alice")
    assert (stored.target_type, stored.target_id) == ("portal.bank", str(bank.pk))
    assert (stored.request_id, stored.source_ip) == ("req-12345678", "203.0.113.9")
    assert stored.data_categories == ["balances", "transactions"]


def test_secrets_in_details_are_never_stored():
    bank = BankFactory()
    event = audit_record(
        actor=ALICE,
        action="integration.configured",
        bank=bank,
        details={"page_access_token": "EAAB-real-token", "nested": {"app_secret": "s3cr3t"}},
    )

    stored = AuditEvent.objects.get(pk=event.pk)
    assert "EAAB-real-token" not in str(stored.details)
    assert "s3cr3t" not in str(stored.details)
    assert stored.details["page_access_token"] == "[redacted]"


def test_action_names_are_validated():
    with pytest.raises(ValueError, match=r"noun\.verb"):
        audit_record(actor=ALICE, action="DROP TABLE", bank=None)
    assert not AuditEvent.objects.exists()


def test_database_refuses_update_through_the_orm():
    event = record_many(BankFactory(), 1)[0]

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="config.erased")
    assert AuditEvent.objects.get(pk=event.pk).action == "config.changed"


def test_database_refuses_update_and_delete_in_raw_sql():
    event = record_many(BankFactory(), 1)[0]

    for statement in (
        "UPDATE portal_auditevent SET details = '{}' WHERE id = %s",
        "DELETE FROM portal_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_database_refuses_delete_through_the_orm():
    bank = BankFactory()
    record_many(bank, 2)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(bank=bank).delete()
    assert AuditEvent.objects.filter(bank=bank).count() == 2


def test_verify_passes_on_an_intact_chain():
    bank = BankFactory(slug="harbour")
    record_many(bank, 5)
    audit_record(actor=Actor.system("cron"), action="platform.checked", bank=None)

    code, out, err = run_verify()

    assert code == 0, err
    assert "bank harbour: intact, 5 entries" in out
    assert "platform: intact, 1 entries" in out


def test_verify_names_an_edited_entry():
    bank = BankFactory(slug="harbour")
    events = record_many(bank, 4)
    tamper(
        "UPDATE portal_auditevent SET details = %s WHERE id = %s",
        ['{"n": 999}', events[2].pk],
    )

    code, _, err = run_verify("--bank", "harbour")

    assert code == 1
    assert f"entry #3 (id {events[2].pk})" in err
    assert "altered" in err


def test_verify_names_the_entry_after_a_removed_one():
    bank = BankFactory(slug="harbour")
    events = record_many(bank, 4)
    tamper("DELETE FROM portal_auditevent WHERE id = %s", [events[1].pk])

    code, _, err = run_verify("--bank", "harbour")

    assert code == 1
    assert f"entry #3 (id {events[2].pk})" in err
    assert "missing" in err


def test_verify_detects_entries_cut_from_the_end():
    bank = BankFactory(slug="harbour")
    events = record_many(bank, 3)
    tamper("DELETE FROM portal_auditevent WHERE id = %s", [events[-1].pk])

    code, _, err = run_verify("--bank", "harbour")

    assert code == 1
    assert "removed from the end" in err


def test_verify_detects_reordered_entries():
    bank = BankFactory(slug="harbour")
    events = record_many(bank, 3)
    # Swap the positions of entries 1 and 2, keeping every hash as it was.
    tamper(
        "UPDATE portal_auditevent SET seq = CASE seq WHEN 1 THEN 102 ELSE 101 END "
        "WHERE id IN (%s, %s)",
        [events[0].pk, events[1].pk],
    )
    tamper("UPDATE portal_auditevent SET seq = seq - 100 WHERE seq > 100")

    code, _, err = run_verify("--bank", "harbour")

    assert code == 1
    assert f"entry #1 (id {events[1].pk})" in err


def test_verify_detects_a_rewritten_hash_chain_tail():
    """An attacker who edits an entry and recomputes its hash still breaks the next link."""
    from portal.audit import hash_of

    bank = BankFactory(slug="harbour")
    events = record_many(bank, 3)
    forged = AuditEvent.objects.get(pk=events[1].pk)
    forged.details = {"n": "forged"}
    new_hash = hash_of(forged, f"bank:{bank.pk}")
    tamper(
        "UPDATE portal_auditevent SET details = %s, hash = %s WHERE id = %s",
        ['{"n": "forged"}', new_hash, events[1].pk],
    )

    code, _, err = run_verify("--bank", "harbour")

    assert code == 1
    assert f"entry #3 (id {events[2].pk})" in err
    assert "previous-hash" in err


def test_verify_rejects_an_unknown_bank():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No bank with slug 'nope'"):
        call_command("verify_audit_chain", "--bank", "nope")


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_on_one_bank_keep_every_lane_unbroken():
    bank = BankFactory()
    writers, per_writer = 4, 25

    def write(worker: int) -> None:
        for n in range(per_writer):
            with transaction.atomic():
                audit_record(
                    actor=Actor.system(f"writer-{worker}"),
                    action="config.changed",
                    bank=bank,
                    details={"worker": worker, "n": n},
                )

    assert run_together(write, range(writers)) == []
    lanes: dict[int, list[int]] = {}
    for lane, seq in AuditEvent.objects.filter(bank=bank).values_list("chain__lane", "seq"):
        lanes.setdefault(lane, []).append(seq)
    assert sum(map(len, lanes.values())) == writers * per_writer
    assert all(sorted(seqs) == list(range(1, len(seqs) + 1)) for seqs in lanes.values())
    [report] = audit_chains_verify(bank=bank)
    assert report.intact, report.describe()
    assert report.entries == writers * per_writer


AWKWARD = {
    "quote": 'say "hi"',
    "backslash": "C:\\core\\feed",
    "lines": "one\ntwo\ttab",
    "accents": "Ação Société ß",
    "emoji": "🏦 💳",
    "control": "\u0001\u001f",
    "nested": {"b": [1, 2.5, None, True], "a": {"z": "last", "y": "first"}},
}


def _fields(**overrides) -> dict:
    import datetime as dt

    return {
        "chain_key": "bank:7",
        "bank_id": 7,
        "occurred_at": dt.datetime(2026, 11, 24, 9, 30, 1, 250, tzinfo=dt.UTC),
        "actor_type": "api_key",
        "actor_id": "12",
        "actor_label": "Core «banking» Zürich",
        "action": "events.ingested",
        "target_type": "notifications.event_batch",
        "target_id": "",
        "request_id": "req-core-0001",
        "source_ip": "10.0.0.1",
        "details": AWKWARD,
        "data_categories": ["balances"],
        **overrides,
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        # Texts the encoder escapes, a platform entry (no bank), no source address, values
        # other than texts where a text is usual, and categories of every kind.
        {
            "bank_id": None,
            "source_ip": None,
            "actor_label": 'a "quoted" \\ label\n\u0007 «Zürich» 🏦',
            "target_id": "\u2028\u2029\x7f",
            "request_id": "",
            "data_categories": [],
        },
        {
            "bank_id": 2**53 + 1,
            "actor_id": 12,
            "target_id": True,
            "data_categories": ("balances", "transactions"),
            "chain_key": "bank:7:lane:3",
        },
        {"data_categories": ["x", 1, None, 2.5, False, ["nested"]], "actor_label": 3.5},
    ],
)
def test_an_entry_hash_is_sha256_of_its_canonical_json_document(overrides):
    import hashlib
    import json

    from portal.audit import canonical_time, entry_document, entry_hash

    fields = _fields(**overrides)
    whole = {
        "chain": fields["chain_key"],
        "seq": 41,
        "bank": fields["bank_id"],
        "occurred_at": canonical_time(fields["occurred_at"]),
        "actor": [fields["actor_type"], fields["actor_id"], fields["actor_label"]],
        "action": fields["action"],
        "target": [fields["target_type"], fields["target_id"]],
        "request_id": fields["request_id"],
        "source_ip": fields["source_ip"],
        "details": fields["details"],
        "data_categories": fields["data_categories"],
        "prev_hash": "ab" * 32,
    }
    canonical = json.dumps(whole, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    document = {k: v for k, v in fields.items() if k != "chain_key"}
    assert (
        entry_document(**document).text(chain_key=fields["chain_key"], prev_hash="ab" * 32, seq=41)
        == canonical
    )
    assert (
        entry_hash(seq=41, prev_hash="ab" * 32, **fields)
        == hashlib.sha256(canonical.encode()).hexdigest()
    )


@pytest.mark.parametrize("source_ip", ["10.0.0.1", None])
def test_the_database_hashes_an_entry_as_entry_hash_does(source_ip):
    """PostgreSQL fills in the chain's hash and position and hashes the document."""
    from core.db.rows import statements_run
    from portal.audit import hash_of
    from portal.services.audit import AuditEntry, audit_append_statements

    bank = BankFactory()
    audit_record(actor=Actor.system("test"), action="test.before", bank=bank)
    token = context.bind(context.RequestContext(request_id="req-core-0009", source_ip=source_ip))
    try:
        with transaction.atomic():
            statements_run(
                audit_append_statements(
                    actor=Actor("api_key", "12", "Core «banking» Zürich"),
                    bank_id=bank.pk,
                    entries=[
                        AuditEntry(
                            action="events.ingested",
                            target_type="notifications.event_batch",
                            target_id="x",
                            details=AWKWARD,
                            data_categories=["balances", "transactions", "balances"],
                        )
                    ],
                )
            )
    finally:
        context.reset(token)

    chain = AuditChain.objects.get(bank=bank, lane=0)
    entry = AuditEvent.objects.get(chain=chain, seq=2)
    assert entry.details == AWKWARD
    assert entry.data_categories == ["balances", "transactions"]
    assert (entry.request_id, entry.source_ip) == ("req-core-0009", source_ip)
    assert entry.prev_hash == AuditEvent.objects.get(chain=chain, seq=1).hash
    assert entry.hash == hash_of(entry, chain.key) == chain.head_hash
    assert chain.head_seq == 2
    assert all(report.intact for report in audit_chains_verify(bank=bank))


def test_the_database_chains_several_entries_of_one_statement_in_order():
    """A group of posts appends its entries in one statement: each is hashed onto the one
    before it, awkward text and all, and the head ends on the last."""
    from core.db.rows import statements_run
    from portal.audit import hash_of
    from portal.services.audit import AuditEntry, audit_append_statements

    bank = BankFactory()
    audit_record(actor=Actor.system("test"), action="test.before", bank=bank)
    entries = [
        AuditEntry(
            action="events.ingested",
            target_type="notifications.event_batch",
            target_id=f'post "{n}" \\ ß',
            details={**AWKWARD, "n": n},
            data_categories=["transactions"] if n % 2 else [],
        )
        for n in range(1, 6)
    ]
    with transaction.atomic():
        statements_run(
            audit_append_statements(
                actor=Actor("api_key", "12", 'Core "banking" \\ Zürich'),
                bank_id=bank.pk,
                entries=entries,
            )
        )

    chain = AuditChain.objects.get(bank=bank, lane=0)
    appended = list(AuditEvent.objects.filter(chain=chain, seq__gt=1).order_by("seq"))
    assert [entry.details["n"] for entry in appended] == [1, 2, 3, 4, 5]
    assert [entry.seq for entry in appended] == [2, 3, 4, 5, 6]
    assert appended[0].target_id == 'post "1" \\ ß'
    assert appended[0].actor_label == 'Core "banking" \\ Zürich'
    first = AuditEvent.objects.get(chain=chain, seq=1)
    for before, entry in zip([first, *appended[:-1]], appended, strict=True):
        assert entry.prev_hash == before.hash
        assert entry.hash == hash_of(entry, chain.key)
    assert (chain.head_seq, chain.head_hash) == (6, appended[-1].hash)
    assert all(report.intact for report in audit_chains_verify(bank=bank))


def test_many_entries_appended_at_once_form_an_intact_chain():
    """Enough entries that their rows go to the database as arrays."""
    from core.db.rows import ARRAY_MIN_ROWS
    from portal.services.audit import AuditEntry, audit_record_many

    bank = BankFactory()
    count = ARRAY_MIN_ROWS + 3
    token = context.bind(context.RequestContext(request_id="req-core-0010", source_ip="10.0.0.1"))
    try:
        with transaction.atomic():
            audit_record_many(
                actor=Actor("api_key", "12", "Core «banking» Zürich"),
                bank_id=bank.pk,
                entries=[
                    AuditEntry(
                        action="events.ingested",
                        target_type="notifications.event_batch",
                        target_id=str(n),
                        details={**AWKWARD, "n": n},
                        data_categories=["balances"],
                    )
                    for n in range(count)
                ],
            )
    finally:
        context.reset(token)

    entries = list(AuditEvent.objects.filter(bank=bank).order_by("seq"))
    assert [e.seq for e in entries] == list(range(1, count + 1))
    assert [e.details for e in entries] == [{**AWKWARD, "n": n} for n in range(count)]
    assert {(e.request_id, e.source_ip) for e in entries} == {("req-core-0010", "10.0.0.1")}
    assert all(report.intact for report in audit_chains_verify(bank=bank))


# Hashes of entries written before the chain had one writer: every writer must still
# produce them, or chains already stored would stop verifying.
KNOWN_CHAIN = [
    "918ba3d8acf623bc52ddd6073360a87b70593576e13644af7fea582d8b81db7b",
    "a9c62a89496d7535122b4aee2ff80b70342c859984e763897f2b7153e3ad857c",
]


def _known_entries():
    from portal.services.audit import AuditEntry

    return [
        AuditEntry(
            action="events.ingested",
            target_type="notifications.event_batch",
            target_id=str(n),
            details={**AWKWARD, "n": n},
            data_categories=["transactions", "balances", "balances"],
        )
        for n in (1, 2)
    ]


def _write_known(writer, bank):
    from portal.services.audit import audit_append_last, audit_record_many

    actor = Actor("api_key", "12", "Core «banking» Zürich")
    if writer == "audit_record":
        for entry in _known_entries():
            audit_record(
                actor=actor,
                action=entry.action,
                bank=bank,
                target_type=entry.target_type,
                target_id=entry.target_id,
                details=entry.details,
                data_categories=entry.data_categories,
            )
    elif writer == "audit_record_many":
        audit_record_many(actor=actor, bank_id=bank.pk, entries=_known_entries())
    else:
        audit_append_last(actor=actor, bank_id=bank.pk, entries=_known_entries())


@pytest.mark.parametrize("writer", ["audit_record", "audit_record_many", "audit_append_last"])
def test_every_writer_hashes_an_entry_as_the_stored_chains_were_hashed(writer):
    import datetime as dt
    from unittest import mock

    bank = BankFactory(pk=907)
    moment = dt.datetime(2026, 11, 24, 9, 30, 1, 250, tzinfo=dt.UTC)
    token = context.bind(context.RequestContext(request_id="req-core-0011", source_ip="10.0.0.1"))
    try:
        with mock.patch("django.utils.timezone.now", return_value=moment), transaction.atomic():
            _write_known(writer, bank)
    finally:
        context.reset(token)

    chain = AuditChain.objects.get(bank=bank, lane=0)
    entries = list(AuditEvent.objects.filter(chain=chain).order_by("seq"))
    assert [e.hash for e in entries] == KNOWN_CHAIN
    assert entries[0].prev_hash == "0" * 64
    assert (chain.head_seq, chain.head_hash) == (2, KNOWN_CHAIN[-1])
    assert all(report.intact for report in audit_chains_verify(bank=bank))
