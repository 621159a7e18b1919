"""Many audit entries of one bank in one go: `portal.services.audit_record` for a batch.

Delivery writes one entry per message that leaves the bank. Appending them one by one
would take the bank's chain lock and run four statements per message; here a batch takes
the lock once, hashes the entries in order and inserts them in one statement. The chain
protocol is audit_record's exactly (same head lock, same hashes, same fields), so
`verify_audit_chain` checks these entries like any other.
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from bankside.logging import redact
from notifications.services.rows import instances_insert
from portal.audit import Actor, entry_hash, normalise_json
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
    """Append `entries` to the bank's chain in order, inside the caller's transaction."""
    if not entries:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record_many must run inside the change's transaction")
    key = f"bank:{bank_id}"
    chain = AuditChain.objects.select_for_update().filter(key=key).first()
    if chain is None:
        AuditChain.objects.bulk_create(
            [AuditChain(key=key, bank_id=bank_id)], ignore_conflicts=True
        )
        chain = AuditChain.objects.select_for_update().get(key=key)
    seq, prev = chain.head_seq, chain.head_hash
    occurred_at = timezone.now()
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
            "request_id": "",
            "source_ip": None,
            "details": normalise_json(redact(entry.details)),
            "data_categories": sorted(set(entry.data_categories)),
            "prev_hash": prev,
        }
        prev = entry_hash(chain_key=key, **fields)
        rows.append(AuditEvent(chain=chain, hash=prev, **fields))
    instances_insert(AuditEvent, AUDIT_FIELDS, rows)
    AuditChain.objects.filter(pk=chain.pk).update(head_seq=seq, head_hash=prev)
