"""The staff URL map, read from the resolver, for tests that must cover every staff URL."""

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, reverse

from portal.access import Access

_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")


@dataclass(frozen=True)
class StaffUrl:
    route: str
    name: str
    callback: object

    @property
    def access(self) -> Access | None:
        return getattr(self.callback, "staff_access", None)

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.route)

    def __str__(self) -> str:
        return self.name

    def reverse(self, **values) -> str:
        """This URL with its parameters taken from `values`; a missing one fails loudly."""
        missing = [param for param in self.params if param not in values]
        if missing:
            raise LookupError(f"{self.name}: give the URL-map tests a value for {missing}")
        return reverse(self.name, kwargs={param: values[param] for param in self.params})


def _walk(patterns, prefix="", namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            name = namespace + (pattern.name or "")
            yield StaffUrl(prefix + str(pattern.pattern), name, pattern.callback)


def staff_urls() -> list[StaffUrl]:
    return [url for url in _walk(get_resolver().url_patterns) if url.route.startswith("staff/")]


STAFF_URLS = staff_urls()
