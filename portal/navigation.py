"""Entries that the apps above the portal add to a bank's sidebar.

The portal draws the shell but must not import what sits above it, so `linking` and
`notifications` register their staff pages here from their `AppConfig.ready`.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.urls import reverse

from core.registry import Registry


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url_name: str  # reversed with the bank's slug as `bank`
    roles: frozenset[str] | None = None  # None: every role; platform admins always
    current: frozenset[str] = frozenset()  # view names that highlight this entry
    order: int = 100


_registry: Registry[NavItem] = Registry("sidebar entry", order_by=lambda i: (i.order, i.label))


def register_nav(
    key: str,
    label: str,
    url_name: str,
    *,
    roles: Iterable[str] | None = None,
    current: Iterable[str] = (),
    order: int = 100,
) -> None:
    _registry.register(
        key,
        NavItem(
            key,
            label,
            url_name,
            frozenset(roles) if roles is not None else None,
            frozenset(current) | {url_name},
            order,
        ),
    )


def nav_for(staff, view_name: str) -> list[dict]:
    """The registered entries `staff` may open at their bank, in order."""
    if staff is None or staff.bank is None:
        return []
    items = []
    for item in _registry:
        if item.roles is not None and not staff.is_platform_admin and staff.role not in item.roles:
            continue
        items.append(
            {
                "label": item.label,
                "url": reverse(item.url_name, kwargs={"bank": staff.bank.slug}),
                "current": view_name in item.current,
            }
        )
    return items


def extra_nav(request) -> dict:
    """Template context processor: `extra_nav` for the bank sidebar."""
    staff = getattr(request, "staff", None)
    match = getattr(request, "resolver_match", None)
    return {"extra_nav": nav_for(staff, match.view_name if match else "")}
