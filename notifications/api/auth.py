"""API-key authentication plus the bank's optional request signatures."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions

from linking.api.common import raw_body
from notifications.services import SignatureError, signed_request_verify
from portal.api_auth import ApiKeyAuthentication


class SignedApiKeyAuthentication(ApiKeyAuthentication):
    """`Authorization: Bearer <key>`, then the Standard Webhooks signature if the bank
    has signing set up (required, or offered by the caller). A bad, stale or replayed
    signature is a 401 like a bad key."""

    def authenticate(self, request):
        authenticated = super().authenticate(request)
        if authenticated is None:
            return None
        principal, _ = authenticated
        try:
            signed_request_verify(
                bank=principal.bank, headers=request.headers, read_body=lambda: raw_body(request)
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
