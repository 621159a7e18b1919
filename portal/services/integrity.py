"""Proof that the audit log was not altered: integrity checks and signed checkpoints."""

from django.db import transaction
from django.utils import timezone

from portal import checkpoints, selectors
from portal.audit import Actor
from portal.models import AuditChain, AuditCheckpoint, AuditIntegrityCheck, Bank
from portal.services.audit import audit_record


def _logs(bank: Bank | None) -> list[str]:
    """The audit logs (scopes) to act on: `bank`'s, its lane 0 made if it has none yet, or
    every one."""
    if bank is None:
        return selectors.audit_scopes()
    scope = AuditChain.scope_for(bank)
    AuditChain.objects.bulk_create(
        [AuditChain(key=scope, scope=scope, lane=0, bank=bank)], ignore_conflicts=True
    )
    return [scope]


def _lane_zero(scope: str) -> AuditChain:
    return AuditChain.objects.select_related("bank").get(scope=scope, lane=0)


def audit_integrity_check(
    *, actor: Actor, trigger: str, bank: Bank | None = None
) -> list[AuditIntegrityCheck]:
    """Recompute every lane of the log of `bank` (every log when None) and record each
    log's outcome, against its lane 0.

    A check asked for by a person is itself audited, after the log was read, so the
    entry it appends never affects the outcome it records.
    """
    checks = []
    for scope in _logs(bank):
        report = selectors.audit_chain_verify(scope)
        chain = _lane_zero(scope)
        checks.append(
            AuditIntegrityCheck.objects.create(
                chain=chain,
                bank=chain.bank,
                trigger=trigger,
                requested_by=actor.label,
                intact=report.intact,
                entries=report.entries,
                broken_lane=report.broken_lane,
                broken_seq=report.broken_seq,
                broken_event_id=report.broken_event_id,
                reason=report.reason,
            )
        )
    if trigger == AuditIntegrityCheck.Trigger.MANUAL:
        audit_record(
            actor=actor,
            action="audit.integrity_verified",
            bank=bank,
            details={
                "intact": all(c.intact for c in checks),
                "chains": [
                    {
                        "chain": c.chain.scope,
                        "intact": c.intact,
                        "entries": c.entries,
                        "broken_lane": c.broken_lane,
                        "broken_seq": c.broken_seq,
                    }
                    for c in checks
                ],
            },
        )
    return checks


@transaction.atomic
def audit_checkpoint_sign(*, actor: Actor, bank: Bank | None = None) -> list[AuditCheckpoint]:
    """Sign the heads of every lane of `bank`'s log together (every log when None).

    A log's lane heads are read in one statement, so they are heads that were committed
    together, and without their locks, so no writer waits for a checkpoint; one signature
    over all of them means a lane dropped or cut short later no longer matches. A
    checkpoint a person asked for is audited after its heads were taken.
    """
    signed = []
    for scope in _logs(bank):
        heads = list(AuditChain.objects.filter(scope=scope).order_by("lane"))
        chain = _lane_zero(scope)
        lanes = [
            {"chain": head.key, "head_seq": head.head_seq, "head_hash": head.head_hash}
            for head in heads
        ]
        signed_at = timezone.now()
        signature, public_key = checkpoints.sign(
            checkpoints.payload(
                scope=scope,
                bank=chain.bank.slug if chain.bank else None,
                lanes=lanes,
                signed_at=signed_at,
            )
        )
        signed.append(
            AuditCheckpoint.objects.create(
                chain=chain,
                bank=chain.bank,
                head_seq=sum(head.head_seq for head in heads),
                head_hash=checkpoints.lanes_digest(lanes),
                lanes=lanes,
                signed_at=signed_at,
                algorithm=checkpoints.ALGORITHM,
                public_key=public_key,
                signature=signature,
            )
        )
    if actor.type != "system":
        for checkpoint in signed:
            audit_record(
                actor=actor,
                action="audit.checkpoint_signed",
                bank=checkpoint.bank,
                target=checkpoint,
                details={
                    "chain": checkpoint.chain.scope,
                    "head_seq": checkpoint.head_seq,
                    "lanes": len(checkpoint.lanes),
                },
            )
    return signed
