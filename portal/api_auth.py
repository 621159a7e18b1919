"""Authentication of the bank's core systems: `Authorization: Bearer <api key>`."""

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from portal.models import ApiKey, Bank
from portal.services import api_key_authenticate


@dataclass(frozen=True)
class ApiPrincipal:
    """Who is calling the API: one API key, acting for its bank. It is never a staff user."""

    api_key: ApiKey

    is_authenticated = True
    is_anonymous = False

    @property
    def bank(self) -> Bank:
        return self.api_key.bank

    def __str__(self) -> str:
        return f"API key {self.api_key.name} of {self.bank.slug}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Reads `Authorization: Bearer bsk_…`.

    No header, or another scheme, is "not authenticated"; a malformed, unknown or revoked
    key fails at once. Both answer 401 with `WWW-Authenticate: Bearer`.
    """

    keyword = "bearer"

    def authenticate(self, request):
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
            raise exceptions.AuthenticationFailed("The API key is not valid or has been revoked.")
        return principal, principal.api_key

    def principal_for(self, presented: str) -> ApiPrincipal | None:
        """The caller whose key `presented` is, or None if it is not an active key."""
        api_key = api_key_authenticate(presented=presented)
        return None if api_key is None else ApiPrincipal(api_key)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="bankside"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api_auth.ApiKeyAuthentication"
    name = "bankApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key issued to the bank's core systems in the staff portal.",
        }
