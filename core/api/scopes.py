"""What an API key may do: its scopes, and the addresses it may call from.

Every operation of `/api/v1/` names the scope it needs in its view's `required_scopes`
(`{"PUT": CUSTOMERS_WRITE}`), or `ANY_KEY` for what any valid key may call. An operation
that names nothing is refused to every key: an endpoint added without a scope fails
closed, and the test walking the URL map says which.
"""

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, Final

from rest_framework import exceptions, permissions
from rest_framework.request import Request

from core.middleware import client_ip

CUSTOMERS_WRITE: Final = "customers:write"
EVENTS_WRITE: Final = "events:write"
EVENTS_READ: Final = "events:read"
OUTCOMES_READ: Final = "outcomes:read"
SCOPES: Final = {
    CUSTOMERS_WRITE: "Create and replace customers and their accounts; invite them to link",
    EVENTS_WRITE: "Post account events",
    EVENTS_READ: "Look up posted events and their notifications",
    OUTCOMES_READ: "Read the outcome feed",
}
ALL_SCOPES: Final = tuple(SCOPES)
ANY_KEY: Final = ""  # an operation any valid key may call (which bank and key am I?)

NETWORKS_MAX = 50


def required_scope(view: Any, method: str) -> str | None:
    """The scope `method` on `view` needs, `ANY_KEY`, or None where it declares none."""
    declared: Mapping[str, str] = getattr(view, "required_scopes", None) or {}
    method = method.upper()
    if method == "OPTIONS":
        return ANY_KEY
    if method == "HEAD":
        method = "GET"
    return declared.get(method)


def networks_parse(entries: Iterable[str]) -> list[str]:
    """Addresses and CIDR blocks, one per entry, as `ipaddress` writes them; ValueError
    naming the first that is not one, or a block with host bits set (`10.0.0.1/8`)."""
    parsed: list[str] = []
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError:
            try:
                loose = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(
                    f"“{text[:60]}” is not an IP address or a CIDR block such as 203.0.113.0/24."
                ) from None
            raise ValueError(
                f"“{text}” has bits set after the prefix: did you mean {loose}?"
            ) from None
        if str(network) not in parsed:
            parsed.append(str(network))
    if len(parsed) > NETWORKS_MAX:
        raise ValueError(f"List at most {NETWORKS_MAX} addresses or blocks.")
    return parsed


def address_allowed(address: str | None, networks: Iterable[str]) -> bool:
    """Whether `address` lies in one of `networks` (an empty list allows every address)."""
    networks = list(networks)
    if not networks:
        return True
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(network) for network in networks)


class KeyScopeAndAddress(permissions.BasePermission):
    """The calling key holds the scope the operation needs and calls from an address its
    allow-list names (found as the audit log finds it: `core.middleware.client_ip`,
    through `TRUSTED_PROXY_COUNT` proxies). Either failing is a 403 problem."""

    def has_permission(self, request: Request, view: Any) -> bool:
        api_key = getattr(request.user, "api_key", None)
        if api_key is None:
            raise exceptions.NotAuthenticated()
        if not address_allowed(client_ip(request), getattr(api_key, "allowed_networks", [])):
            raise exceptions.PermissionDenied(
                "This API key may not be used from this address: it is outside the key's "
                "allow-list.",
                code="address_not_allowed",
            )
        needed = required_scope(view, request.method or "")
        if needed is None:
            raise exceptions.PermissionDenied(
                "This operation declares no scope, so no key may call it.",
                code="scope_undeclared",
            )
        if needed != ANY_KEY and needed not in (getattr(api_key, "scopes", None) or ()):
            raise exceptions.PermissionDenied(
                f"This API key lacks the “{needed}” scope this operation needs.",
                code="insufficient_scope",
            )
        return True
