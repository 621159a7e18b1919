"""API-key authentication plus the bank's optional request signatures."""

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions

from linking.api.common import raw_body
from notifications.selectors import api_caller_get
from notifications.services import SignatureError, signed_request_verify
from portal.api_auth import ApiKeyAuthentication, ApiPrincipal
from portal.services.api_keys import api_key_parse, api_key_verify


@dataclass(frozen=True)
class SignedApiPrincipal(ApiPrincipal):
    """An API key acting for its bank, with the settings every request applies, read in
    the same query as the key: whether the bank requires signed requests, the key's rate
    limit (requests per second, burst), and the stamp of the bank's delivery rules."""

    signing_required: bool
    rate_limit: tuple[float, int]
    rules_stamp: int | None = None


class SignedApiKeyAuthentication(ApiKeyAuthentication):
    """`Authorization: Bearer <key>`, then the Standard Webhooks signature if the bank
    has signing set up (required, or offered by the caller). A bad, stale or replayed
    signature is a 401 like a bad key."""

    def principal_for(self, presented: str) -> SignedApiPrincipal | None:
        parsed = api_key_parse(presented)
        if parsed is None:
            return None
        prefix, secret = parsed
        caller = api_caller_get(prefix=prefix)
        if caller is None or api_key_verify(api_key=caller.api_key, secret=secret) is None:
            return None
        return SignedApiPrincipal(
            caller.api_key,
            signing_required=caller.signing_required,
            rate_limit=caller.rate_limit,
            rules_stamp=caller.rules_stamp,
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
