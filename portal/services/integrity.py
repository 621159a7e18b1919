"""Proof that the audit log was not altered: integrity checks and signed checkpoints."""

from django.db import transaction
from django.utils import timezone

from portal import checkpoints, selectors
from portal.audit import Actor
from portal.models import AuditChain, AuditCheckpoint, AuditIntegrityCheck, Bank
from portal.services.audit import audit_record


def _chains(bank: Bank | None) -> list[AuditChain]:
    chains = AuditChain.objects.select_related("bank").order_by("key")
    if bank is None:
        return list(chains)
    key = AuditChain.key_for(bank)
    AuditChain.objects.bulk_create([AuditChain(key=key, bank=bank)], ignore_conflicts=True)
    return list(chains.filter(key=key))


def audit_integrity_check(
    *, actor: Actor, trigger: str, bank: Bank | None = None
) -> list[AuditIntegrityCheck]:
    """Recompute the chain of `bank` (every chain when None) and record each outcome.

    A check asked for by a person is itself audited, after the chain was read, so the
    entry it appends never affects the outcome it records.
    """
    checks = []
    for chain in _chains(bank):
        report = selectors.audit_chain_verify(chain)
        checks.append(
            AuditIntegrityCheck.objects.create(
                chain=chain,
                bank=chain.bank,
                trigger=trigger,
                requested_by=actor.label,
                intact=report.intact,
                entries=report.entries,
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
                        "chain": c.chain.key,
                        "intact": c.intact,
                        "entries": c.entries,
                        "broken_seq": c.broken_seq,
                    }
                    for c in checks
                ],
            },
        )
    return checks


@transaction.atomic
def audit_checkpoint_sign(*, actor: Actor, bank: Bank | None = None) -> list[AuditCheckpoint]:
    """Sign the current head of `bank`'s chain (every chain when None).

    Each head is read under the chain's lock, so it is a head that was really committed;
    a checkpoint a person asked for is audited after its head was taken.
    """
    signed = []
    for chain in _chains(bank):
        head = AuditChain.objects.select_for_update().get(pk=chain.pk)
        signed_at = timezone.now()
        signature, public_key = checkpoints.sign(
            checkpoints.payload(
                chain=head.key,
                bank=chain.bank.slug if chain.bank else None,
                head_seq=head.head_seq,
                head_hash=head.head_hash,
                signed_at=signed_at,
            )
        )
        signed.append(
            AuditCheckpoint.objects.create(
                chain=head,
                bank=chain.bank,
                head_seq=head.head_seq,
                head_hash=head.head_hash,
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
                details={"chain": checkpoint.chain.key, "head_seq": checkpoint.head_seq},
            )
    return signed
