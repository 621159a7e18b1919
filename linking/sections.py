"""Sections that apps above linking add to a link's page in the staff console.

A link's page shows the consent's timeline; the notifications sent under it and the
customer's messages belong to `notifications`, which linking must not import. So that
app registers a section from its `AppConfig.ready`:

    from linking.sections import register_link_section

    def sent_under_link(consent):
        return render_to_string("notifications/staff/_link_notifications.html", {...})

    register_link_section("notifications.sent", "Notifications sent", sent_under_link)

A provider takes the `Consent` and returns HTML (a `SafeString`, usually from
`render_to_string`) or None for "nothing to show". A provider that fails shows an error in
its own section, never a broken page.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.safestring import SafeString, mark_safe

from core.registry import Registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkSection:
    key: str
    title: str
    provider: Callable
    order: int = 100
    empty: str = "Nothing yet."


@dataclass(frozen=True)
class ShownSection:
    key: str
    title: str
    html: SafeString | None
    empty: str
    failed: bool = False

    @property
    def dom_id(self) -> str:
        return "section-" + "".join(ch if ch.isalnum() else "-" for ch in self.key.lower())


_registry: Registry[LinkSection] = Registry("link section", order_by=lambda s: (s.order, s.title))


def register_link_section(
    key: str, title: str, provider: Callable, *, order: int = 100, empty: str = "Nothing yet."
) -> None:
    """Show `provider`'s section on every link's page; a key is registered once."""
    _registry.register(
        key, LinkSection(key=key, title=title, provider=provider, order=order, empty=empty)
    )


def unregister_link_section(key: str) -> None:
    _registry.unregister(key)


def sections_for(consent) -> list[ShownSection]:
    """Each registered section, in order, with its HTML computed for `consent`."""
    shown = []
    for section in _registry:
        try:
            html = section.provider(consent)
        except Exception:
            logger.exception("link section %s failed for consent %s", section.key, consent.pk)
            shown.append(
                ShownSection(
                    section.key,
                    section.title,
                    mark_safe("<p class='error'>This section could not be loaded.</p>"),
                    section.empty,
                    failed=True,
                )
            )
            continue
        shown.append(ShownSection(section.key, section.title, html, section.empty))
    return shown
