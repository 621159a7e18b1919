"""The retention writes: a bank's period changed, and the purge run of every purger.

The purgers (`portal.retention.register_purger`) run inside `retention_purge`'s
transaction: their changes and the audit entry counting them land together or not at all.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from portal.audit import Actor
from portal.models import Bank, RetentionPolicy
from portal.retention import purgers, retention_cutoff
from portal.services.audit import audit_record

log = logging.getLogger(__name__)


@transaction.atomic
def retention_policy_update(*, actor: Actor, bank: Bank, months: int) -> RetentionPolicy:
    """Set how long the bank keeps message bodies and events; the change is audited."""
    policy = RetentionPolicy.objects.select_for_update().filter(bank=bank).first()
    policy = policy or RetentionPolicy(bank=bank)
    before = policy.months if policy.pk else RetentionPolicy.DEFAULT_MONTHS
    policy.months = months
    policy.full_clean(exclude=["bank"])
    policy.save()
    if before != months:
        audit_record(
            actor=actor,
            action="retention.updated",
            bank=bank,
            target=policy,
            details={"months": {"from": before, "to": months}},
        )
    return policy


@transaction.atomic
def retention_purge(*, bank: Bank, actor: Actor, now: datetime | None = None) -> dict[str, int]:
    """Run every purger for `bank` at its cutoff, in one transaction, and audit the counts.

    Audit entries are never touched: the purge run is itself one more entry of the chain.
    """
    now = now or timezone.now()
    cutoff = retention_cutoff(bank, now=now)
    counts = {p.key: int(p.purge(bank, cutoff) or 0) for p in purgers()}
    policy, _ = RetentionPolicy.objects.get_or_create(bank=bank)
    policy.last_purged_at, policy.last_purge_counts = now, counts
    policy.save(update_fields=["last_purged_at", "last_purge_counts", "updated_at"])
    audit_record(
        actor=actor,
        action="retention.purged",
        bank=bank,
        target=policy,
        details={"cutoff": cutoff, "months": policy.months, "rows_changed": counts},
    )
    return counts


def retention_purge_all(*, actor: Actor, now: datetime | None = None) -> dict[str, dict[str, int]]:
    """Purge every bank, each in its own transaction: one failing does not stop the rest."""
    results = {}
    for bank in Bank.objects.order_by("pk"):
        try:
            results[bank.slug] = retention_purge(bank=bank, actor=actor, now=now)
        except Exception:
            log.exception("retention purge failed for bank %s", bank.slug)
    return results
