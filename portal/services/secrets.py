"""Stored secrets re-encrypted with the newest key of FIELD_ENCRYPTION_KEYS."""

from django.db import transaction

from core.encryption import encrypted_fields
from portal.audit import Actor
from portal.services.audit import audit_record


def encryption_keys_rotate(*, actor: Actor, batch_size: int = 500) -> dict[str, int]:
    """Re-encrypt every stored secret with the first key; the count of each field's rows.

    Each batch is locked and rewritten in a transaction of its own, so a long rotation
    never holds a table: a value read back is the same whichever key encrypted it, so a
    run cut short leaves nothing wrong and is simply run again. The audit entry records
    the finished run.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    counts: dict[str, int] = {}
    for model, field in encrypted_fields():
        rows = model._base_manager.exclude(**{f"{field.name}__isnull": True})
        pks = list(rows.order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(pks), batch_size):
            with transaction.atomic():
                batch = rows.select_for_update().filter(pk__in=pks[start : start + batch_size])
                # Reading decrypts with whichever key fits; writing encrypts with the first.
                for pk, secret in batch.values_list("pk", field.name):
                    model._base_manager.filter(pk=pk).update(**{field.name: secret})
        counts[f"{model._meta.label}.{field.name}"] = len(pks)
    audit_record(
        actor=actor,
        action="secrets.keys_rotated",
        bank=None,
        details={"secrets_reencrypted": sum(counts.values())},
    )
    return counts
