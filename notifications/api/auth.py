"""API-key authentication plus the bank's optional request signatures."""

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions

from core.api.parsers import raw_body
from notifications.selectors import ApiCaller, api_caller_get
from notifications.services import SignatureError, SignatureHeaderError, signed_request_verify
from portal.api_auth import ApiKeyAuthentication, ApiPrincipal
from portal.services.api_keys import api_key_parse, api_key_verify


@dataclass(frozen=True)
class SignedApiPrincipal(ApiPrincipal):
    """An API key acting for its bank, with the settings every request applies, read in
    the same query as the key: whether the bank requires signed requests and the key's
    rate limit (requests per second, burst)."""

    signing_required: bool
    rate_limit: tuple[float, int]


class KeptCallers:
    """The API keys this process has read lately, each with its bank and their settings
    (`ApiCaller`), kept for `API_CALLER_CACHE_SECONDS`: a busy key costs no query.

    Kept is what the key's own query reads: the key (revoked or not, its secret's hash),
    its bank, the bank's signing setting and the key's rate limit. Any change to one of
    those rows saved in this process forgets every kept caller, at once and again when it
    commits (`notifications.receivers`); another process reads it again once its copy is
    older than the setting. Unknown prefixes are never kept. What events need fresh for
    each post (the bank's delivery rules, its customers' consents) is read with the post.
    """

    LIMIT = 10_000  # keys kept at most; more than any bank issues

    def __init__(self) -> None:
        self._kept: dict[str, tuple[float, ApiCaller]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # moves when a change forgets them all

    def caller(self, prefix: str) -> ApiCaller | None:
        seconds = settings.API_CALLER_CACHE_SECONDS
        if seconds <= 0:
            return api_caller_get(prefix=prefix)
        now = time.monotonic()
        kept = self._kept.get(prefix)
        if kept is not None and kept[0] > now:
            return kept[1]
        generation = self._generation
        caller = api_caller_get(prefix=prefix)
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
        parsed = api_key_parse(presented)
        if parsed is None:
            return None
        prefix, secret = parsed
        caller = kept_callers.caller(prefix)
        if caller is None or api_key_verify(api_key=caller.api_key, secret=secret) is None:
            return None
        return SignedApiPrincipal(
            caller.api_key,
            signing_required=caller.signing_required,
            rate_limit=caller.rate_limit,
        )

    def authenticate(self, request):
        authenticated = super().authenticate(request)
        if authenticated is None:
            return None
        principal, _ = authenticated
        try:
            signed_request_verify(
                bank=principal.bank,
                headers=request.headers,
                read_body=lambda: raw_body(request),
                required=principal.signing_required,
            )
        except SignatureHeaderError as exc:
            raise exceptions.ParseError(str(exc), code="malformed_signature") from exc
        except SignatureError as exc:
            raise exceptions.AuthenticationFailed(str(exc), code="invalid_signature") from exc
        return authenticated


class SignedApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "notifications.api.auth.SignedApiKeyAuthentication"
    name = "bankApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An API key issued to the bank's core systems in the staff portal. A bank "
                "may also require every request to be signed the Standard Webhooks way: "
                "`webhook-id` (unique per request), `webhook-timestamp` (Unix seconds, "
                "within 5 minutes) and `webhook-signature: v1,<base64 HMAC-SHA256 of "
                '"{id}.{timestamp}.{body}">` keyed with the bytes of its `whsec_` secret.'
            ),
        }
