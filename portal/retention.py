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

from collections.abc import Callable
from dataclasses import dataclass


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
