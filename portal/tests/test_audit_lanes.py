"""Lanes: concurrent writers of one bank each append to a lane of its own, and the lanes
of a log are verified and signed together.

The writers here are real database connections in threads of their own; the attacker
holds a SQL connection with the table owner's rights, so it can switch the append-only
guards off (portal/tests/test_audit.py's `tamper` does the same for entries).
"""

import json
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection, connections, transaction

from bankside.settings.base import audit_chain_lanes_from_env
from portal import checkpoints
from portal.audit import Actor
from portal.models import AuditChain, AuditCheckpoint, AuditEvent
from portal.selectors import audit_chain_verify, audit_checkpoint_document
from portal.services import audit_checkpoint_sign, audit_record
from portal.services.audit import (
    AuditEntry,
    audit_append_last,
    audit_lanes_ensure,
    audit_record_many,
)
from portal.tests.factories import BankFactory
from portal.tests.test_audit import run_verify
from portal.tests.test_integrity import run_verify_checkpoint

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = Actor("staff", "7", "alice")
SYSTEM = Actor.system("test")


class Holder:
    """A writer in a thread (and database connection) of its own: it appends one entry to
    `bank`'s log and keeps its transaction, and so its lane, open until released."""

    def __init__(self, bank):
        self.bank = bank
        self.holding, self.release = threading.Event(), threading.Event()
        self.entry: AuditEvent | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        try:
            with transaction.atomic():
                self.entry = audit_record(
                    actor=ALICE, action="config.changed", bank=self.bank, details={"held": 1}
                )
                self.holding.set()
                self.release.wait(30)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc
        finally:
            self.holding.set()
            connections.close_all()

    def __enter__(self):
        self.thread.start()
        assert self.holding.wait(30)
        assert self.error is None, self.error
        return self

    def __exit__(self, *exc_info):
        self.release.set()
        self.thread.join(30)
        assert self.error is None, self.error

    @property
    def lane(self) -> int:
        assert self.entry is not None
        return AuditChain.objects.get(pk=self.entry.chain_id).lane


def no_waiting():
    """Inside a transaction: fail at once (lock_timeout) rather than wait for a lock."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '300ms'")


def new_bank(**fields):
    """A bank whose lanes are made, as a bank's creation (`bank_create`) makes them."""
    bank = BankFactory(**fields)
    audit_lanes_ensure(bank_id=bank.pk)
    return bank


def lane_of(entry: AuditEvent) -> int:
    return AuditChain.objects.get(pk=entry.chain_id).lane


def lanes_used(bank) -> dict[int, list[int]]:
    """{lane: its entries' seq in order} of `bank`'s log."""
    used: dict[int, list[int]] = {}
    rows = AuditEvent.objects.filter(bank=bank).order_by("chain__lane", "seq")
    for lane, seq in rows.values_list("chain__lane", "seq"):
        used.setdefault(lane, []).append(seq)
    return used


# Writers


def test_a_second_writer_of_one_bank_does_not_wait_for_the_first():
    bank = new_bank()

    with Holder(bank) as first, transaction.atomic():
        no_waiting()  # waiting for the first writer's lane would fail here
        second = audit_record(actor=ALICE, action="config.changed", bank=bank)

    assert (first.lane, lane_of(second)) == (0, 1)
    assert second.seq == 1
    report = audit_chain_verify(AuditChain.scope_for(bank))
    assert report.intact, report.describe()
    assert report.entries == 2


def test_a_writer_appending_at_commit_does_not_wait_for_another_either():
    bank = new_bank()
    entries = [AuditEntry("events.ingested", "notifications.event_batch", str(n)) for n in (1, 2)]

    with Holder(bank), transaction.atomic():
        no_waiting()
        audit_append_last(actor=ALICE, bank_id=bank.pk, entries=entries)

    assert lanes_used(bank) == {0: [1], 1: [1, 2]}
    assert audit_chain_verify(AuditChain.scope_for(bank)).intact


def test_when_every_lane_is_held_a_writer_waits_instead_of_forking(settings):
    settings.AUDIT_CHAIN_LANES = 2
    bank = new_bank()

    with Holder(bank) as one, Holder(bank) as two:
        assert {one.lane, two.lane} == {0, 1}
        with pytest.raises(OperationalError, match="lock timeout"), transaction.atomic():
            no_waiting()
            audit_record(actor=ALICE, action="config.changed", bank=bank)
    third = audit_record(actor=ALICE, action="config.changed", bank=bank)

    assert AuditChain.objects.filter(bank=bank).count() == 2
    assert lane_of(third) in (0, 1) and third.seq == 2
    assert audit_chain_verify(AuditChain.scope_for(bank)).intact


def test_a_waiting_writer_appends_once_the_lane_it_waits_for_is_free(settings):
    settings.AUDIT_CHAIN_LANES = 1
    bank = new_bank()
    done = []

    with Holder(bank) as holder:
        waiter = threading.Thread(
            target=lambda: (
                done.append(audit_record(actor=ALICE, action="config.changed", bank=bank)),
                connections.close_all(),
            )
        )
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and not done  # waiting on the one lane, not forking
    waiter.join(30)

    assert [lane_of(entry) for entry in done] == [holder.lane] == [0]
    assert [entry.seq for entry in done] == [2]
    assert audit_chain_verify(AuditChain.scope_for(bank)).intact


def test_the_entries_of_one_transaction_stay_together_in_one_lane():
    bank = new_bank()
    holder = Holder(bank)

    with holder, transaction.atomic():
        audit_record(actor=ALICE, action="config.changed", bank=bank)
        holder.release.set()  # lane 0 frees up while this transaction goes on
        holder.thread.join(30)
        audit_record_many(
            actor=ALICE,
            bank_id=bank.pk,
            entries=[AuditEntry("message.sent", "notifications.notification", "1")],
        )
        audit_append_last(
            actor=ALICE,
            bank_id=bank.pk,
            entries=[AuditEntry("events.ingested", "notifications.event_batch", "1")],
        )

    assert lanes_used(bank) == {0: [1], 1: [1, 2, 3]}
    assert audit_chain_verify(AuditChain.scope_for(bank)).intact


def test_lanes_are_made_ahead_up_to_the_setting(settings):
    settings.AUDIT_CHAIN_LANES = 4
    bank = BankFactory()

    audit_record(actor=ALICE, action="config.changed", bank=bank)

    scope = f"bank:{bank.pk}"
    assert list(
        AuditChain.objects.filter(bank=bank).order_by("lane").values_list("key", "scope", "lane")
    ) == [
        (scope, scope, 0),
        (f"{scope}/1", scope, 1),
        (f"{scope}/2", scope, 2),
        (f"{scope}/3", scope, 3),
    ]


@pytest.mark.parametrize("wrong", ["0", "257", "four", "1.5", ""])
def test_the_lanes_setting_is_refused_outside_1_to_256(wrong):
    with pytest.raises(ImproperlyConfigured, match="AUDIT_CHAIN_LANES"):
        audit_chain_lanes_from_env(wrong)
    assert audit_chain_lanes_from_env("256") == 256


# Tampering with a log of several lanes


@pytest.fixture
def harbour():
    """A bank whose log holds 1 entry in lane 0, 4 in lane 1 and 2 in lane 2, signed."""
    bank = new_bank(slug="harbour")
    with Holder(bank):
        for n in range(3):
            audit_record(actor=ALICE, action="config.changed", bank=bank, details={"n": n})
        with Holder(bank):
            for n in range(2):
                audit_record(actor=ALICE, action="message.sent", bank=bank, details={"n": n})
    assert lanes_used(bank) == {0: [1], 1: [1, 2, 3, 4], 2: [1, 2]}
    audit_checkpoint_sign(actor=SYSTEM, bank=bank)
    return bank


def lane(bank, n) -> AuditChain:
    return AuditChain.objects.get(bank=bank, lane=n)


def entry(bank, n, seq) -> AuditEvent:
    return AuditEvent.objects.get(chain=lane(bank, n), seq=seq)


def attack(*statements):
    """Run `statements` with every guard of the entries and lane heads switched off."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in ("portal_auditevent", "portal_auditchain", "portal_auditcheckpoint"):
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for sql, *params in statements:
            cursor.execute(sql, params[0] if params else ())
        for table in ("portal_auditevent", "portal_auditchain", "portal_auditcheckpoint"):
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def rewind(chain: AuditChain, to: AuditEvent):
    """The statement an attacker moves a lane head back with, onto `to`."""
    return (
        "UPDATE portal_auditchain SET head_seq = %s, head_hash = %s WHERE id = %s",
        [to.seq, to.hash, chain.pk],
    )


def broken(bank):
    report = audit_chain_verify(AuditChain.scope_for(bank))
    assert not report.intact
    code, _, err = run_verify("--bank", bank.slug)
    assert code == 1 and "BROKEN" in err
    return report


@pytest.fixture
def exported(harbour, tmp_path):
    """The bank's checkpoint, exported before the attack."""
    path = tmp_path / "checkpoint.json"
    path.write_text(json.dumps(audit_checkpoint_document(AuditCheckpoint.objects.get())))
    return path


def test_an_untouched_log_of_several_lanes_verifies(harbour, exported):
    report = audit_chain_verify(AuditChain.scope_for(harbour))
    assert report.intact, report.describe()
    assert report.entries == 7
    code, out, err = run_verify("--bank", "harbour")
    assert code == 0, err
    assert "intact, 7 entries in 16 lanes" in out
    code, out, err = run_verify_checkpoint(exported)
    assert code == 0, err
    assert "every lane still reaches its signed head (7 entries in 16 lanes)" in out


def test_an_edited_entry_names_its_lane_and_position(harbour):
    target = entry(harbour, 2, 1)
    attack(("UPDATE portal_auditevent SET details = '{\"n\": 99}' WHERE id = %s", [target.pk]))

    report = broken(harbour)
    assert (report.broken_lane, report.broken_seq, report.broken_event_id) == (2, 1, target.pk)
    assert "altered" in report.reason


def test_a_dropped_entry_is_caught(harbour):
    attack(("DELETE FROM portal_auditevent WHERE id = %s", [entry(harbour, 1, 2).pk]))

    report = broken(harbour)
    assert (report.broken_lane, report.broken_seq) == (1, 3)
    assert "missing" in report.reason


def test_two_entries_swapped_within_a_lane_are_caught(harbour):
    two, three = entry(harbour, 1, 2), entry(harbour, 1, 3)
    attack(
        ("UPDATE portal_auditevent SET seq = 1000 WHERE id = %s", [two.pk]),
        ("UPDATE portal_auditevent SET seq = 2 WHERE id = %s", [three.pk]),
        ("UPDATE portal_auditevent SET seq = 3 WHERE id = %s", [two.pk]),
    )

    report = broken(harbour)
    assert (report.broken_lane, report.broken_seq) == (1, 2)


def test_an_entry_moved_to_another_lane_is_caught_even_with_both_heads_rewritten(harbour):
    moved, before = entry(harbour, 1, 4), entry(harbour, 1, 3)
    target = lane(harbour, 2)
    # The entry becomes lane 2's third, with the right link, both heads say so, and the
    # stored checkpoint that would give the cut lane 1 away is gone.
    attack(
        ("DELETE FROM portal_auditcheckpoint",),
        (
            "UPDATE portal_auditevent SET chain_id = %s, seq = 3, prev_hash = %s WHERE id = %s",
            [target.pk, target.head_hash, moved.pk],
        ),
        rewind(lane(harbour, 1), before),
        (
            "UPDATE portal_auditchain SET head_seq = 3, head_hash = %s WHERE id = %s",
            [moved.hash, target.pk],
        ),
    )

    report = broken(harbour)
    # Its hash covers the key of the lane it was appended to.
    assert (report.broken_lane, report.broken_seq) == (2, 3)
    assert "altered" in report.reason


def test_a_lane_cut_short_with_its_head_rewound_is_caught_by_the_checkpoint(harbour, exported):
    attack(
        ("DELETE FROM portal_auditevent WHERE id = %s", [entry(harbour, 1, 4).pk]),
        rewind(lane(harbour, 1), entry(harbour, 1, 3)),
    )

    report = broken(harbour)
    assert report.broken_lane == 1
    assert "checkpoint" in report.reason
    code, _, err = run_verify_checkpoint(exported)
    assert code == 1
    assert f"bank:{harbour.pk}/1 holds 3 of the 4 entries signed" in err


def test_a_whole_lane_deleted_is_caught(harbour, exported):
    gone = lane(harbour, 2)
    attack(
        ("DELETE FROM portal_auditevent WHERE chain_id = %s", [gone.pk]),
        ("DELETE FROM portal_auditchain WHERE id = %s", [gone.pk]),
    )

    report = broken(harbour)
    assert report.broken_lane == 2
    assert "lane 2 is missing" in report.reason
    code, _, err = run_verify_checkpoint(exported)
    assert code == 1
    assert f"no audit chain 'bank:{harbour.pk}/2' here: the lane was removed" in err


def test_the_last_lanes_deleted_are_caught_by_the_checkpoint(harbour, exported):
    # Lanes 2 to 15 go, heads and entries: lanes 0 and 1 alone look like a whole log.
    gone = list(AuditChain.objects.filter(bank=harbour, lane__gte=2).values_list("pk", flat=True))
    attack(
        ("DELETE FROM portal_auditevent WHERE chain_id = ANY(%s)", [gone]),
        ("DELETE FROM portal_auditchain WHERE id = ANY(%s)", [gone]),
    )

    report = broken(harbour)
    assert f"lane bank:{harbour.pk}/" in report.reason and "checkpoint" in report.reason
    code, _, err = run_verify_checkpoint(exported)
    assert code == 1
    assert "the lane was removed" in err


def write(path, document):
    path.write_text(json.dumps(document))
    return path


def test_a_forged_lane_head_in_a_checkpoint_fails_its_signature(harbour, tmp_path):
    document = audit_checkpoint_document(AuditCheckpoint.objects.get())
    document["payload"]["lanes"][1]["head_hash"] = "f" * 64

    code, _, err = run_verify_checkpoint(write(tmp_path / "forged.json", document))

    assert code == 1
    assert "the signature does not match the checkpoint" in err


@pytest.mark.parametrize("change", ["drop", "add", "reorder"])
def test_a_checkpoint_whose_lane_list_was_altered_fails_its_signature(harbour, tmp_path, change):
    document = audit_checkpoint_document(AuditCheckpoint.objects.get())
    lanes = document["payload"]["lanes"]
    if change == "drop":
        del lanes[2]
    elif change == "add":
        lanes.append({"chain": f"bank:{harbour.pk}/99", "head_seq": 0, "head_hash": "0" * 64})
    else:
        lanes[1], lanes[2] = lanes[2], lanes[1]

    code, _, err = run_verify_checkpoint(write(tmp_path / "altered.json", document))

    assert code == 1
    assert "the signature does not match the checkpoint" in err


def test_a_checkpoint_signed_anew_by_someone_else_is_refused(harbour, tmp_path, settings):
    document = audit_checkpoint_document(AuditCheckpoint.objects.get())
    del document["payload"]["lanes"][2]
    settings.AUDIT_CHECKPOINT_SIGNING_KEY = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U="
    document["signature"], document["public_key"] = checkpoints.sign(document["payload"])
    settings.AUDIT_CHECKPOINT_SIGNING_KEY = ""

    code, _, err = run_verify_checkpoint(write(tmp_path / "resigned.json", document))

    assert code == 1
    assert "different key" in err


# Checkpoints signed before lanes


def v1_checkpoint(bank) -> AuditCheckpoint:
    """A checkpoint of lane 0 alone, as signed before lanes (format v1)."""
    head = lane(bank, 0)
    signed_at = head.events.order_by("-seq").first().occurred_at
    signature, public_key = checkpoints.sign(
        checkpoints.payload_v1(
            chain=head.key,
            bank=bank.slug,
            head_seq=head.head_seq,
            head_hash=head.head_hash,
            signed_at=signed_at,
        )
    )
    return AuditCheckpoint.objects.create(
        chain=head,
        bank=bank,
        head_seq=head.head_seq,
        head_hash=head.head_hash,
        signed_at=signed_at,
        public_key=public_key,
        signature=signature,
    )


def test_a_v1_checkpoint_still_verifies(tmp_path):
    bank = new_bank(slug="harbour")
    for n in range(3):
        audit_record(actor=ALICE, action="config.changed", bank=bank, details={"n": n})
    document = audit_checkpoint_document(v1_checkpoint(bank))
    assert document["format"] == checkpoints.FORMAT_V1
    assert "lanes" not in document["payload"] and document["payload"]["head_seq"] == 3
    audit_record(actor=ALICE, action="config.changed", bank=bank)

    code, out, err = run_verify_checkpoint(write(tmp_path / "v1.json", document))

    assert code == 0, err
    assert "still contains the signed head at entry #3" in out
    assert audit_chain_verify(AuditChain.scope_for(bank)).intact


def test_a_v1_checkpoint_still_catches_a_cut_chain(tmp_path):
    bank = new_bank(slug="harbour")
    for n in range(3):
        audit_record(actor=ALICE, action="config.changed", bank=bank, details={"n": n})
    path = write(tmp_path / "v1.json", audit_checkpoint_document(v1_checkpoint(bank)))
    attack(
        ("DELETE FROM portal_auditevent WHERE id = %s", [entry(bank, 0, 3).pk]),
        rewind(lane(bank, 0), entry(bank, 0, 2)),
    )

    code, _, err = run_verify_checkpoint(path)

    assert code == 1
    assert "holds 2 of the 3 entries signed" in err
    assert not audit_chain_verify(AuditChain.scope_for(bank)).intact
