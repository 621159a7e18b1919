"""A named set of things that apps above fill from `AppConfig.ready`, for an app below to use.

Dependencies point one way, so a lower app cannot import what a higher one owns; it keeps
a `Registry` and the higher app registers into it instead (a dashboard panel, a sidebar
entry, a section of a link's page, a part of a customer's data):

    panels: Registry[Panel] = Registry("dashboard panel", order_by=lambda p: (p.order, p.title))
    panels.register("linking.linked_customers", panel)

Iterating gives the items in `order_by`'s order (else in the order they were registered).
A key registered twice is a mistake that would silently drop one app's part, so it raises
`AlreadyRegistered`, unless the registry is made with `replace=True` because filling a key
again is how it is used.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class AlreadyRegistered(ValueError):
    """A second registration under a key that a registry already holds."""


class Registry(Generic[T]):
    def __init__(
        self, what: str, *, order_by: Callable[[T], Any] | None = None, replace: bool = False
    ) -> None:
        self.what = what
        self._order_by = order_by
        self._replace = replace
        self._items: dict[str, T] = {}

    @overload
    def register(self, key: str, item: T) -> T: ...

    @overload
    def register(self, key: str) -> Callable[[T], T]: ...

    def register(self, key: str, item: T | None = None) -> T | Callable[[T], T]:
        """Add `item` under `key` and return it; without `item`, a decorator that adds what it
        decorates."""
        if item is None:
            return lambda decorated: self.register(key, decorated)
        if key in self._items and not self._replace:
            raise AlreadyRegistered(
                f"{self.what} {key!r} is already registered; unregister it first, "
                "or give the new one a key of its own"
            )
        self._items[key] = item
        return item

    def unregister(self, key: str) -> None:
        """Remove `key`'s item; a key that is not registered is no error."""
        self._items.pop(key, None)

    def get(self, key: str) -> T | None:
        return self._items.get(key)

    def as_dict(self) -> dict[str, T]:
        """The items by key, in the order they were registered (a copy)."""
        return dict(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        items = list(self._items.values())
        if self._order_by is not None:
            items.sort(key=self._order_by)
        return iter(items)

    @contextmanager
    def preserved(self) -> Iterator[None]:
        """Undo on leaving whatever was registered or unregistered inside (for tests)."""
        saved = dict(self._items)
        try:
            yield
        finally:
            self._items.clear()
            self._items.update(saved)

    def __repr__(self) -> str:
        return f"<Registry of {self.what}: {', '.join(self._items) or 'empty'}>"
