"""Panels that apps above the portal put on a bank's dashboard, without the portal importing them.

Dependencies point one way (`notifications -> linking -> portal`), yet the dashboard
should show how many customers linked and how notifications fare. So a higher app
registers a panel from its `AppConfig.ready`:

    from portal.dashboard import PanelContent, register_panel

    def linked_customers(bank):
        return PanelContent(value=linked_count(bank), caption="customers linked on Messenger")

    register_panel("linking.linked_customers", linked_customers)

A provider takes the `Bank` and returns `PanelContent` (or None for "nothing yet"). The
portal knows the slots it expects (`SLOTS`) and shows their empty state until an app
fills them; a provider that fails shows an error in its own panel, never a broken page.
"""

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from django.utils.safestring import SafeString

from core.registry import Registry
from portal.charts import Chart, bar_chart

logger = logging.getLogger(__name__)

TILE, WIDE = "tile", "wide"


@dataclass(frozen=True)
class PanelTable:
    """A small table in a panel: column headings and rows of plain text (escaped when drawn)."""

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str = ""


@dataclass(frozen=True)
class PanelContent:
    """What a panel shows: a headline value with a caption, charts, a table, a link onwards."""

    value: int | str | None = None
    caption: str = ""
    charts: Sequence[Chart] = ()
    table: PanelTable | None = None
    link_url: str = ""
    link_text: str = ""
    alarm: bool = False  # drawn red, announced as an alert


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    provider: Callable | None = None
    size: str = TILE
    order: int = 100
    roles: frozenset[str] | None = None  # None: everyone who can open the dashboard
    empty: str = "Nothing to show yet."


@dataclass(frozen=True)
class ShownPanel:
    """A panel as one dashboard draws it."""

    key: str
    title: str
    size: str
    content: PanelContent | None
    empty: str
    failed: bool = False
    charts: list[SafeString] = field(default_factory=list)

    @property
    def dom_id(self) -> str:
        return "panel-" + "".join(ch if ch.isalnum() else "-" for ch in self.key.lower())


SLOTS: dict[str, Panel] = {
    "linking.linked_customers": Panel(
        key="linking.linked_customers",
        title="Linked customers",
        size=TILE,
        order=10,
        empty="No customer has linked an account on Messenger yet.",
    ),
    "notifications.deliveries": Panel(
        key="notifications.deliveries",
        title="Notification deliveries",
        size=WIDE,
        order=10,
        empty="No notifications yet. Charts of the last 24 hours and the last 30 days (sent, "
        "delivered, read and failed) appear here once your core systems post events and the "
        "delivery engine sends them.",
    ),
    "notifications.recent_failures": Panel(
        key="notifications.recent_failures",
        title="Recent delivery failures",
        size=WIDE,
        order=20,
        empty="No notification failed in the last 30 days.",
    ),
}

# A slot is filled by registering its key: registering a key again replaces its panel.
_registry: Registry[Panel] = Registry("dashboard panel", replace=True)


def register_panel(
    key: str,
    provider: Callable,
    *,
    title: str | None = None,
    size: str | None = None,
    order: int | None = None,
    roles: Iterable[str] | None = None,
    empty: str | None = None,
) -> None:
    """Put `provider`'s panel on every bank dashboard; registering a key again replaces it.

    A key in `SLOTS` takes that slot's title, size, place and empty state unless given.
    """
    base = SLOTS.get(key) or Panel(key=key, title=title or key)
    panel = replace(
        base,
        provider=provider,
        title=title or base.title,
        size=size or base.size,
        order=base.order if order is None else order,
        roles=frozenset(roles) if roles is not None else base.roles,
        empty=empty or base.empty,
    )
    if panel.size not in (TILE, WIDE):
        raise ValueError(f"panel size must be {TILE!r} or {WIDE!r}, got {panel.size!r}")
    _registry.register(key, panel)


def unregister_panel(key: str) -> None:
    _registry.unregister(key)


def panels() -> list[Panel]:
    """The slots and the registered panels, in display order."""
    merged = {**SLOTS, **_registry.as_dict()}
    return sorted(merged.values(), key=lambda p: (p.order, p.title))


def panels_for(bank, *, role: str, platform_admin: bool = False) -> list[ShownPanel]:
    """The panels `role` sees on `bank`'s dashboard, each with its content computed."""
    shown = []
    for panel in panels():
        if panel.roles is not None and not platform_admin and role not in panel.roles:
            continue
        content, charts, failed = None, [], False
        if panel.provider is not None:
            try:
                content = panel.provider(bank)
                charts = [bar_chart(chart) for chart in content.charts] if content else []
            except Exception:  # one broken panel must not break the dashboard
                logger.exception("dashboard panel %s failed for bank %s", panel.key, bank.pk)
                content, charts, failed = None, [], True
        shown.append(
            ShownPanel(
                key=panel.key,
                title=panel.title,
                size=panel.size,
                content=content,
                empty=panel.empty,
                failed=failed,
                charts=charts,
            )
        )
    return shown
