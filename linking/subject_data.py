"""What each app holds about one customer, for data-subject access and erasure requests.

A customer's data is spread over the apps: linking holds the customer, accounts, consents
and the Messenger link; notifications holds events, messages sent and messages received.
Linking must not import the apps above it, so each registers a contributor from its
`AppConfig.ready`:

    from linking.subject_data import register_subject_data

    register_subject_data(
        "notifications.messages",
        export=lambda customer: {"sent": [...], "received": [...]},
        erase=erase_messages_of,
    )

`export(customer)` returns JSON-ready data (dicts, lists, strings, numbers) describing
everything the app holds about the customer and everything it shared with the platform.
`erase(customer)` removes the personal data the app holds only for the Messenger features
(PSIDs, message texts), keeping rows the bank must keep with pseudonymous references, and
returns how many rows it changed. Erasure runs every contributor inside one transaction:
one failing undoes them all. Parts are exported in ascending `order` and erased in
descending `order`: linking's part (order 10) comes first in the download and is erased
last, so the apps above it can still find the customer's PSIDs when they erase theirs.
The download is `linking.subject_requests`; erasure and the audited reads are
`linking.services.subject_requests`.
"""

from collections.abc import Callable
from dataclasses import dataclass

from core.registry import Registry


@dataclass(frozen=True)
class SubjectDataContributor:
    key: str
    export: Callable
    erase: Callable | None = None
    order: int = 100


# A key registered twice raises: a silent replacement would leave one app's data out of
# the customer's download and unerased.
_registry: Registry[SubjectDataContributor] = Registry(
    "subject data contributor", order_by=lambda c: (c.order, c.key)
)


def register_subject_data(
    key: str, *, export: Callable, erase: Callable | None = None, order: int = 100
) -> None:
    """Add `key`'s part to every customer's download (and erasure); a key is registered once."""
    _registry.register(
        key, SubjectDataContributor(key=key, export=export, erase=erase, order=order)
    )


def unregister_subject_data(key: str) -> None:
    _registry.unregister(key)


def contributors() -> list[SubjectDataContributor]:
    return list(_registry)
