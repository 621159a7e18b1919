"""Where the link flow may send a browser back to: Messenger's hosts and nothing else."""

import re
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings

LOOPBACK = {"localhost", "127.0.0.1", "[::1]"}
_SAFE_NETLOC = re.compile(r"^[a-z0-9.-]+(?::\d{1,5})?$|^\[::1\](?::\d{1,5})?$")


class UnsafeRedirect(ValueError):
    pass


def check_redirect_uri(uri: str) -> str:
    """Return `uri` if it points at an allowed host over https; raise UnsafeRedirect otherwise.

    Refuses other hosts, other schemes (`javascript:`, `data:`), credentials in the
    authority (`https://facebook.com@evil.example`), percent-encoded or backslashed hosts,
    control characters and whitespace. Plain http is accepted only for loopback hosts while
    the sandbox is enabled (development and the demo).
    """
    if not isinstance(uri, str) or not uri or len(uri) > 2048:
        raise UnsafeRedirect("missing or overlong redirect_uri")
    if any(ord(c) < 33 or ord(c) == 127 for c in uri) or "\\" in uri:
        raise UnsafeRedirect("redirect_uri contains whitespace, control characters or backslashes")
    parts = urlsplit(uri)
    netloc = parts.netloc.lower()
    if not _SAFE_NETLOC.match(netloc):
        raise UnsafeRedirect("redirect_uri has credentials, encoded characters or no host")
    host = netloc.rsplit(":", 1)[0] if not netloc.startswith("[") else netloc.split("]")[0] + "]"
    allowed = {h.lower() for h in settings.LINK_REDIRECT_ALLOWED_HOSTS}
    if host not in allowed:
        raise UnsafeRedirect(f"redirect_uri host {host!r} is not allowed")
    local = settings.SANDBOX_ENABLED and host in LOOPBACK
    if parts.scheme != "https" and not (local and parts.scheme == "http"):
        raise UnsafeRedirect("redirect_uri must use https")
    return uri


def with_params(uri: str, params: dict[str, str]) -> str:
    """`uri` with `params` appended to whatever query string it already has."""
    parts = urlsplit(uri)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
