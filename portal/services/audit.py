import re

from django.db import transaction
from django.utils import timezone

from core import context
from portal.audit import Actor, entry_hash, stored_details
from portal.models import AuditChain, AuditEvent, Bank

_ACTION = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$")


@transaction.atomic
def audit_record(
    *,
    actor: Actor,
    action: str,
    bank: Bank | None,
    target=None,
    target_type: str = "",
    target_id: str = "",
    details: dict | None = None,
    data_categories: list[str] | None = None,
    request_id: str | None = None,
    source_ip: str | None = None,
) -> AuditEvent:
    """Append one entry to the audit chain of `bank` (or the platform's chain).

    Call it inside the transaction of the change it records, so both land or neither.
    The chain head is locked for the rest of that transaction: concurrent writers to one
    bank queue up behind it and the chain never forks. Secret-named keys in `details` are
    masked before anything is stored, and personal values (a PSID) are replaced by their
    pseudonymous reference: entries can never be erased, so they never hold personal data.
    """
    if not _ACTION.match(action):
        raise ValueError(f"Audit action {action!r} must look like 'noun.verb'.")
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or str(target.pk)
    current = context.current()
    if request_id is None:
        request_id = current.request_id if current else ""
    if source_ip is None and current is not None:
        source_ip = current.source_ip
    details = stored_details(details)
    data_categories = sorted(set(data_categories or []))

    key = AuditChain.key_for(bank)
    AuditChain.objects.bulk_create([AuditChain(key=key, bank=bank)], ignore_conflicts=True)
    chain = AuditChain.objects.select_for_update().get(key=key)

    occurred_at = timezone.now()
    seq = chain.head_seq + 1
    fields = {
        "seq": seq,
        "bank_id": bank.pk if bank else None,
        "occurred_at": occurred_at,
        "actor_type": actor.type,
        "actor_id": actor.id,
        "actor_label": actor.label,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "request_id": request_id,
        "source_ip": source_ip,
        "details": details,
        "data_categories": data_categories,
        "prev_hash": chain.head_hash,
    }
    digest = entry_hash(chain_key=key, **fields)
    event = AuditEvent.objects.create(chain=chain, hash=digest, **fields)
    AuditChain.objects.filter(pk=chain.pk).update(head_seq=seq, head_hash=digest)
    return event


def audit_export_record(
    *, actor: Actor, bank: Bank, what: str, fmt: str, filters: dict
) -> AuditEvent:
    """Record that `actor` exported `what` of `bank` with `filters`, before it is sent."""
    return audit_record(
        actor=actor,
        action="audit.exported" if what == "audit_events" else f"{what}.exported",
        bank=bank,
        details={"what": what, "format": fmt, "filters": filters},
    )
