"""API-key authentication (`Authorization: Bearer <key>`) plus the tenant's optional
request signatures. The keys themselves are the owner's (`core.api.keys`)."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from core.api.keys import ApiCaller, api_keys
from core.api.parsers import raw_body
from core.api.signing import SignatureError, SignatureHeaderError, signed_request_verify


@dataclass(frozen=True)
class ApiPrincipal:
    """Who is calling the API: one API key, acting for its bank. It is never a staff user."""

    api_key: Any

    is_authenticated = True
    is_anonymous = False

    @property
    def bank(self) -> Any:
        return self.api_key.bank

    def __str__(self) -> str:
        return f"API key {self.api_key.name} of {self.bank.slug}"


@dataclass(frozen=True)
class SignedApiPrincipal(ApiPrincipal):
    """An API key acting for its bank, with the settings every request applies, read in
    the same query as the key: whether the bank requires signed requests and the key's
    rate limit (requests per second, burst)."""

    signing_required: bool
    rate_limit: tuple[float, int]


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Reads `Authorization: Bearer bsk_…`.

    No header, or another scheme, is "not authenticated"; a malformed, unknown or revoked
    key fails at once. Both answer 401 with `WWW-Authenticate: Bearer`.
    """

    keyword = "bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the API key as “Authorization: Bearer <key>”, with no spaces in the key."
            )
        try:
            presented = header[1].decode("ascii")
        except UnicodeDecodeError:
            presented = ""
        principal = self.principal_for(presented) if presented else None
        if principal is None:
            raise exceptions.AuthenticationFailed(
                "The API key is not valid, has expired or has been revoked."
            )
        return principal, principal.api_key

    def principal_for(self, presented: str) -> ApiPrincipal | None:
        """The caller whose key `presented` is, or None if it is not an active key."""
        caller = _caller_verified(presented, api_keys().caller)
        return None if caller is None else ApiPrincipal(caller.api_key)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="bankside"'


def _caller_verified(
    presented: str, caller_for: Callable[[str], ApiCaller | None]
) -> ApiCaller | None:
    keys = api_keys()
    parsed = keys.parse(presented)
    if parsed is None:
        return None
    prefix, secret = parsed
    caller = caller_for(prefix)
    if caller is None or not keys.verify(caller.api_key, secret):
        return None
    return caller


class KeptCallers:
    """The API keys this process has read lately, each with its bank and their settings
    (`ApiCaller`), kept for `API_CALLER_CACHE_SECONDS`: a busy key costs no query.

    Kept is what the key's own query reads: the key (revoked or not, its secret's hash),
    its bank, the bank's signing setting and the key's rate limit. Any change to one of
    those rows saved in this process forgets every kept caller, at once and again when it
    commits (the keys' owner calls `forget`); another process reads it again once its copy
    is older than the setting. Unknown prefixes are never kept. What a request needs fresh
    (an event's delivery rules, say) is read with the request.
    """

    LIMIT = 10_000  # keys kept at most; more than any bank issues

    def __init__(self) -> None:
        self._kept: dict[str, tuple[float, ApiCaller]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # moves when a change forgets them all

    def caller(self, prefix: str) -> ApiCaller | None:
        seconds = settings.API_CALLER_CACHE_SECONDS
        if seconds <= 0:
            return api_keys().caller(prefix)
        now = time.monotonic()
        kept = self._kept.get(prefix)
        if kept is not None and kept[0] > now:
            return kept[1]
        generation = self._generation
        caller = api_keys().caller(prefix)
        if caller is None:
            return caller
        with self._lock:
            # A change saved while the key was being read may not be in what was read.
            if generation == self._generation:
                if len(self._kept) >= self.LIMIT:
                    self._kept = {p: k for p, k in self._kept.items() if k[0] > now}
                    if len(self._kept) >= self.LIMIT:
                        self._kept.clear()
                self._kept[prefix] = (now + seconds, caller)
        return caller

    def forget(self) -> None:
        """Forget every kept caller, now and when the current transaction commits."""
        self._forget()
        transaction.on_commit(self._forget)

    def _forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._kept.clear()


kept_callers = KeptCallers()


class SignedApiKeyAuthentication(ApiKeyAuthentication):
    """`Authorization: Bearer <key>`, then the Standard Webhooks signature if the bank
    has signing set up (required, or offered by the caller). A bad, stale or replayed
    signature is a 401 like a bad key."""

    def principal_for(self, presented: str) -> SignedApiPrincipal | None:
        caller = _caller_verified(presented, kept_callers.caller)
        if caller is None:
            return None
        return SignedApiPrincipal(
            caller.api_key,
            signing_required=caller.signing_required,
            rate_limit=caller.rate_limit,
        )

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        authenticated = super().authenticate(request)
        if authenticated is None:
            return None
        principal, _ = authenticated
        try:
            signed_request_verify(
                tenant=principal.bank,
                headers=request.headers,
                read_body=lambda: raw_body(request),
                required=principal.signing_required,
            )
        except SignatureHeaderError as exc:
            raise exceptions.ParseError(str(exc), code="malformed_signature") from exc
        except SignatureError as exc:
            raise exceptions.AuthenticationFailed(str(exc), code="invalid_signature") from exc
        return authenticated


SCOPES_SAID = (
    "A key holds scopes (`customers:write`, `events:write`, `events:read`, `outcomes:read`); "
    "each operation names the one it needs (`x-required-scope`) and refuses a key without it "
    "with 403. A key may also expire (then 401) and be limited to some source addresses "
    "(from elsewhere, 403)."
)


# drf-spectacular registers an extension by an unannotated `__init_subclass__`.
class ApiKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "core.api.auth.ApiKeyAuthentication"
    name = "bankApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key issued to the bank's core systems in the staff portal. "
            + SCOPES_SAID,
        }


class SignedApiKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "core.api.auth.SignedApiKeyAuthentication"
    name = "bankApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An API key issued to the bank's core systems in the staff portal. "
                + SCOPES_SAID
                + " A bank may also require every request to be signed the Standard Webhooks way: "
                "`webhook-id` (unique per request), `webhook-timestamp` (Unix seconds, "
                "within 5 minutes) and `webhook-signature: v1,<base64 HMAC-SHA256 of "
                '"{id}.{timestamp}.{body}">` keyed with the bytes of its `whsec_` secret.'
            ),
        }
