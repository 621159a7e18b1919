"""Many audit entries of one bank in one go: `portal.services.audit_record` for a batch.

Delivery writes one entry per message that leaves the bank. Appending them one by one
would take the bank's chain lock and run four statements per message; here a batch takes
the lock once, hashes the entries in order and inserts them in one statement. The chain
protocol is audit_record's exactly (same head lock, same hashes, same fields), so
`verify_audit_chain` checks these entries like any other.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.db import connection, transaction
from django.utils import timezone

from bankside import context
from notifications.services.rows import (
    Statement,
    insert_statements,
    statement_execute,
    statements_run,
)
from portal.audit import Actor, entry_hash, stored_details
from portal.models import AuditChain, AuditEvent

AUDIT_FIELDS = (
    "chain",
    "seq",
    "bank",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "request_id",
    "source_ip",
    "details",
    "data_categories",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class AuditEntry:
    action: str
    target_type: str
    target_id: str
    details: dict = field(default_factory=dict)
    data_categories: list[str] = field(default_factory=list)


def audit_record_many(*, actor: Actor, bank_id: int, entries: list[AuditEntry]) -> None:
    """Append `entries` to the bank's chain in order, inside the caller's transaction.

    Within a request the entries carry its id and source address, as `audit_record`'s do.
    """
    statements_run(audit_statements(actor=actor, bank_id=bank_id, entries=entries))


def audit_statements(
    *,
    actor: Actor,
    bank_id: int,
    entries: list[AuditEntry],
    before: Sequence[Statement] = (),
) -> list[Statement]:
    """Lock the bank's chain head and return the statements appending `entries` to it.

    The caller runs them (`statements_run`) in the same transaction, with anything else
    that belongs at its end, so the chain lock is held for as little as one round trip
    before the commit. Statements `before` run just before the lock is taken, in the same
    round trip.
    """
    if not entries:
        statements_run(before)
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record_many must run inside the change's transaction")
    key = f"bank:{bank_id}"
    table = connection.ops.quote_name(AuditChain._meta.db_table)
    # SQLite (the demo) has no row locks: its one writer at a time serialises the chain.
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    head = f"SELECT id, head_seq, head_hash FROM {table} WHERE key = %s{lock}"  # noqa: S608
    with connection.cursor() as cursor:
        statement_execute(cursor, head, [key], before=before)
        found = cursor.fetchone()
        if found is None:
            AuditChain.objects.bulk_create(
                [AuditChain(key=key, bank_id=bank_id)], ignore_conflicts=True
            )
            statement_execute(cursor, head, [key])
            found = cursor.fetchone()
    chain_id, seq, prev = found
    occurred_at = timezone.now()
    current = context.current()
    rows = []
    for entry in entries:
        seq += 1
        fields = {
            "seq": seq,
            "bank_id": bank_id,
            "occurred_at": occurred_at,
            "actor_type": actor.type,
            "actor_id": actor.id,
            "actor_label": actor.label,
            "action": entry.action,
            "target_type": entry.target_type,
            "target_id": str(entry.target_id),
            "request_id": current.request_id if current else "",
            "source_ip": current.source_ip if current else None,
            "details": stored_details(entry.details),
            "data_categories": sorted(set(entry.data_categories)),
            "prev_hash": prev,
        }
        prev = entry_hash(chain_key=key, **fields)
        rows.append(SimpleNamespace(chain_id=chain_id, hash=prev, **fields))
    return [
        *insert_statements(AuditEvent, AUDIT_FIELDS, rows),
        (
            f"UPDATE {table} SET head_seq = %s, head_hash = %s WHERE id = %s",  # noqa: S608
            [seq, prev, chain_id],
        ),
    ]
