"""The Content-Security-Policy of every response, and the pages whose forms lead elsewhere.

The policy itself is `CONTENT_SECURITY_POLICY["DIRECTIVES"]` in settings: only this
origin's own scripts, styles and connections, no plugins, no `<base>`, no framing. No page
has inline script or style, so none needs a nonce or `'unsafe-inline'`.

`form-action` also governs where the redirect answering a form may go: Chromium stops the
browser at a redirect to an origin the form's page did not name. The consent screen's
answer goes back to Messenger and the sign-in button on to the bank's identity provider,
so those pages name that one origin with `allow_form_action`. Django 6's
`django.middleware.csp` takes the same directives (`SECURE_CSP`); moving there is this
module and that setting.
"""

import re
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

from csp.constants import HEADER
from csp.middleware import CSPMiddleware, PolicyParts
from csp.utils import build_policy
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase

_FORM_ACTION = "_csp_form_action"
_HOSTNAME = re.compile(r"^[a-z0-9-]+(?:\.[a-z0-9-]+)*$")
_IPV6 = re.compile(r"^[0-9a-f:.]+$")
# What django-csp's decorators (and `allow_form_action`) leave on a response.
_PER_RESPONSE = (
    "_csp_exempt",
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_exempt_ro",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    _FORM_ACTION,
)

_Response = TypeVar("_Response", bound=HttpResponseBase)


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an absolute http(s) URL; None for anything else, and for a
    host that is not plain letters, digits, dots and dashes (or an IPv6 address), so that
    no URL can add a source or a directive to the policy."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except (TypeError, ValueError, AttributeError):
        return None
    if parts.scheme not in {"http", "https"}:
        return None
    if ":" in host and _IPV6.match(host):
        host = f"[{host}]"
    elif not _HOSTNAME.match(host):
        return None
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def allow_form_action(response: _Response, *urls: str) -> _Response:
    """Let the forms of this page lead (by their action or a redirect) to `urls`' origins."""
    origins = [origin for origin in map(origin_of, urls) if origin]
    setattr(response, _FORM_ACTION, [*getattr(response, _FORM_ACTION, []), *origins])
    return response


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, adding the origins a page's forms were allowed to reach.

    Most responses (every API call among them) carry the settings' policy unchanged: it is
    built once, as Django's SecurityMiddleware reads its settings once, not per response.
    """

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]],
    ) -> None:
        super().__init__(get_response)
        self.policy = build_policy()
        self.report_only = bool(getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None))

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if self._plain(request, response):
            response.headers.setdefault(HEADER, self.policy)
            return response
        return super().process_response(request, response)

    def _plain(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        """Whether `response` gets the settings' policy: no nonce, no per-view changes."""
        return not (
            any(hasattr(response, name) for name in _PER_RESPONSE)
            or getattr(request, "_csp_nonce", None)
            or settings.DEBUG  # Django's error pages in DEBUG go without a policy
            or self.report_only
        )

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only=report_only)
        origins = getattr(response, _FORM_ACTION, None)
        if origins and not report_only:
            update = dict(parts.update or {})
            update["form-action"] = [*update.get("form-action", []), *origins]
            parts.update = update
        return parts
