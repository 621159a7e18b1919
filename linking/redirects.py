"""Where the link flow may send a browser back to: Messenger's account-linking page only."""

import re
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings

LOOPBACK = {"localhost", "127.0.0.1", "[::1]"}
_HOST = re.compile(r"^[a-z0-9.-]+$")
_LOOPBACK_NETLOC = re.compile(r"^(localhost|127\.0\.0\.1|\[::1\])(?::\d{1,5})?$")


class UnsafeRedirect(ValueError):
    pass


def check_redirect_uri(uri: str) -> str:
    """Return `uri` if it is Messenger's account-linking page; raise UnsafeRedirect otherwise.

    The host must be allowed (`LINK_REDIRECT_ALLOWED_HOSTS`) and the path exactly one of
    `LINK_REDIRECT_ALLOWED_PATHS`: an allowed host's other pages include open redirectors
    (`https://www.facebook.com/l.php?u=…`), so the host alone proves nothing. Refuses other
    schemes, credentials, ports, fragments, percent-encoded or backslashed parts, control
    characters and whitespace. Plain http, a port and `LINK_REDIRECT_LOCAL_PATHS` are
    accepted only for loopback hosts while the sandbox is enabled (development, the demo).
    """
    if not isinstance(uri, str) or not uri or len(uri) > 2048:
        raise UnsafeRedirect("missing or overlong redirect_uri")
    if any(ord(c) < 33 or ord(c) == 127 for c in uri) or "\\" in uri:
        raise UnsafeRedirect("redirect_uri contains whitespace, control characters or backslashes")
    scheme, _, rest = uri.partition("://")
    parts = urlsplit(uri)
    netloc = parts.netloc
    local = settings.SANDBOX_ENABLED and bool(_LOOPBACK_NETLOC.match(netloc))
    if local:
        host = netloc.rsplit(":", 1)[0] if not netloc.startswith("[") else "[::1]"
        paths = settings.LINK_REDIRECT_LOCAL_PATHS
        schemes = {"http", "https"}
    else:
        host = netloc
        paths = settings.LINK_REDIRECT_ALLOWED_PATHS
        schemes = {"https"}
        if not _HOST.match(host):
            raise UnsafeRedirect(
                "redirect_uri has credentials, a port, encoded characters or no host"
            )
    if scheme not in schemes or not rest:
        raise UnsafeRedirect("redirect_uri must use https")
    if host not in {h.lower() for h in settings.LINK_REDIRECT_ALLOWED_HOSTS}:
        raise UnsafeRedirect(f"redirect_uri host {host!r} is not allowed")
    if "#" in uri:
        raise UnsafeRedirect("redirect_uri has a fragment")
    if parts.path not in paths:
        raise UnsafeRedirect("redirect_uri is not Messenger's account-linking page")
    return uri


def with_params(uri: str, params: dict[str, str]) -> str:
    """`uri` with `params` appended to whatever query string it already has."""
    parts = urlsplit(uri)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
