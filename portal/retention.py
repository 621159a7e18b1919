"""Purging what a bank keeps past its retention period, app by app.

A bank sets how long message bodies and events are kept; the portal's beat task works out
each bank's cutoff and asks every registered purger to remove (or blank) what is older.
The portal must not import the apps above it, so they register from `AppConfig.ready`:

    from portal.retention import register_purger

    register_purger("notifications.messages", purge_message_bodies)

`purge(bank, cutoff)` removes or blanks the bank's personal data older than `cutoff` (an
aware datetime) and returns how many rows it changed. Audit entries are never purged by a
purger: the chain stays verifiable.
"""

import calendar
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from portal.audit import Actor
from portal.models import Bank, RetentionPolicy
from portal.services import audit_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Purger:
    key: str
    purge: Callable


_registry: dict[str, Purger] = {}


def register_purger(key: str, purge: Callable) -> None:
    _registry[key] = Purger(key=key, purge=purge)


def unregister_purger(key: str) -> None:
    _registry.pop(key, None)


def purgers() -> list[Purger]:
    return sorted(_registry.values(), key=lambda p: p.key)


def months_before(moment: datetime, months: int) -> datetime:
    """`moment` moved back by whole calendar months (the 31st falls back to the month's end)."""
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def retention_months(bank: Bank) -> int:
    policy = RetentionPolicy.objects.filter(bank=bank).first()
    return policy.months if policy else RetentionPolicy.DEFAULT_MONTHS


def retention_cutoff(bank: Bank, *, now: datetime | None = None) -> datetime:
    """The moment before which the bank's message bodies and event data are purged."""
    return months_before(now or timezone.now(), retention_months(bank))


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


def retention_purge_all(*, actor: Actor, now: datetime | None = None) -> dict[str, dict]:
    """Purge every bank, each in its own transaction: one failing does not stop the rest."""
    results = {}
    for bank in Bank.objects.order_by("pk"):
        try:
            results[bank.slug] = retention_purge(bank=bank, actor=actor, now=now)
        except Exception:
            log.exception("retention purge failed for bank %s", bank.slug)
    return results
