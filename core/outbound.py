"""Calls to addresses the bank's staff typed in: callback URLs and identity providers.

A URL typed by staff must never become a way into the network bankside runs in (server-side
request forgery): its database, Redis, the cloud's metadata service, the bank's intranet.
So such a URL must be https and its host must be public. `check_url` says so when staff
save it; `client()` checks again on every connection, after DNS resolution, and connects
to the very address it checked (TLS still names the host), so a name that resolves to a
public address when saved and to a private one later (DNS rebinding) gets nowhere. Nothing
here follows redirects.

`OUTBOUND_ALLOW_PRIVATE_HOSTS` lifts the address check and allows http: for development
and the demo, where the bank's systems run on this machine. Never in production.

This module knows no bank rule and imports no app.
"""

import ipaddress
import logging
import socket
import typing
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64 = ipaddress.ip_network("64:ff9b::/96")
BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # this network
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",
        "ff00::/8",  # multicast
    )
)
LOCAL_NAMES = ("localhost", "localhost.localdomain")


class UnsafeURL(ValueError):
    """A URL bankside must not call; the message is safe to show to the staff who typed it."""


class RefusedAddress(httpcore.ConnectError):
    """A connection was not made: the host resolved to an address bankside must not call."""


def private_hosts_allowed() -> bool:
    return bool(getattr(settings, "OUTBOUND_ALLOW_PRIVATE_HOSTS", False))


def address_allowed(address: IPAddress) -> bool:
    """Whether `address` is public: not loopback, private, link-local, reserved or multicast.

    An IPv6 address that embeds an IPv4 one (mapped, 6to4, Teredo, NAT64) is judged by the
    IPv4 address too, since that is where the packets end up.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour]
        if address.teredo:
            embedded.extend(address.teredo)
        if address in NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if any(inner is not None and not address_allowed(inner) for inner in embedded):
            return False
        if address.ipv4_mapped is not None:
            return True
    same_version = (n for n in BLOCKED_NETWORKS if n.version == address.version)
    if any(address in network for network in same_version):
        return False
    return address.is_global and not address.is_multicast


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def check_url(url: str, *, resolve_host: bool = True) -> str:
    """Refuse a URL bankside must not call; returns it unchanged.

    With `resolve_host`, a host name is resolved and refused if any of its addresses is not
    public. A name that does not resolve (yet) passes: each connection checks again.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL("Enter a valid https:// address.") from exc
    allow_private = private_hosts_allowed()
    schemes = {"https", "http"} if allow_private else {"https"}
    if parts.scheme not in schemes or not parts.hostname:
        raise UnsafeURL("The address must start with https:// and name a host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("The address must not carry a user name or password.")
    if allow_private:
        return url
    host = parts.hostname.rstrip(".").lower()
    refused = UnsafeURL(
        "The address must be on the public internet: bankside does not call loopback, "
        "private, link-local or reserved addresses."
    )
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        raise refused
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    elif resolve_host:
        try:
            addresses = resolve(host, port or 443)
        except (OSError, UnicodeError):
            addresses = []
    else:
        addresses = []
    if any(not address_allowed(address) for address in addresses):
        raise refused
    return url


class VettedBackend(httpcore.NetworkBackend):
    """Resolves the host itself, refuses non-public addresses, and connects to a vetted one.

    httpcore still does TLS with the URL's host name (SNI and certificate checks) and sends
    it as `Host`: only the TCP connection is made to the address that was checked.
    """

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc
        if not private_hosts_allowed():
            refused = [str(a) for a in addresses if not address_allowed(a)]
            if refused or not addresses:
                raise RefusedAddress(
                    f"refused to connect: {host} resolves to {', '.join(refused) or 'nothing'}, "
                    "not a public address"
                )
        error: Exception | None = None
        for address in addresses:
            try:
                return self._backend.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self, *args: typing.Any, **kwargs: typing.Any
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("outbound calls never use Unix sockets")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class VettedTransport(httpx.HTTPTransport):
    """httpx's own transport, whose connection pool dials through `VettedBackend`."""

    def __init__(self) -> None:
        super().__init__()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=VettedBackend(),
        )


def client(
    *, timeout: float | httpx.Timeout, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """An httpx client for addresses staff typed in: vetted connections, no redirects.

    No proxy from the environment either: a proxy would make the connections instead.
    `transport` replaces the network in tests that play the peer at the client boundary.
    """
    return httpx.Client(
        transport=transport or VettedTransport(),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
