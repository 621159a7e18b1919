"""Purging what a bank keeps past its retention period, app by app.

A bank sets how long message bodies and events are kept; the portal's beat task works out
each bank's cutoff and asks every registered purger to remove (or blank) what is older
(`portal.services.retention`, the writes: the period's change and the purge run).
The portal must not import the apps above it, so they register from `AppConfig.ready`:

    from portal.retention import register_purger

    register_purger("notifications.messages", purge_message_bodies)

`purge(bank, cutoff)` removes or blanks the bank's personal data older than `cutoff` (an
aware datetime) and returns how many rows it changed. Audit entries are never purged by a
purger: the chain stays verifiable.
"""

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from core.registry import Registry
from portal.models import Bank, RetentionPolicy


@dataclass(frozen=True)
class Purger:
    key: str
    purge: Callable


_registry: Registry[Purger] = Registry("retention purger", order_by=lambda p: p.key)


def register_purger(key: str, purge: Callable) -> None:
    _registry.register(key, Purger(key=key, purge=purge))


def unregister_purger(key: str) -> None:
    _registry.unregister(key)


def purgers() -> list[Purger]:
    return list(_registry)


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
