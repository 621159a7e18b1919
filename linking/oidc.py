"""Customer sign-in at the bank's OpenID Connect provider: authorisation code flow + PKCE.

PKCE, tokens and URL handling come from Authlib; ID-token signatures and claims are
checked with joserfc against the provider's published keys. Discovery documents and key
sets are cached for an hour.

The issuer is compared exactly, never normalised (OpenID Connect Discovery 4.3): an issuer
published with a trailing slash keeps it, in the discovery document, in the ID token's
`iss` and in the authorization response's `iss` (RFC 9207), which stops a mix-up between
providers. Every call goes through `core.outbound` (the issuer, its token endpoint and
key set must be public https addresses), and what is shown of a failure never carries the
connection error.
"""

import base64
import logging
from dataclasses import dataclass
from urllib.parse import quote_plus, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.core.cache import cache
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from core import outbound
from linking.models import IdentityProvider

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
CACHE_SECONDS = 3600
ALGORITHMS = ["RS256", "ES256", "PS256"]


class OIDCError(Exception):
    """Sign-in at the identity provider failed; the message is safe to show."""


@dataclass(frozen=True)
class Started:
    url: str
    state: str
    nonce: str
    code_verifier: str


UNREACHABLE = "The bank's sign-in service is not answering. Try again shortly."


def check_issuer(issuer: str, *, resolve_host: bool = True) -> str:
    """The issuer as given, if bankside may call it: https, public, no query or fragment.

    Staff saving it have its name resolved too; a stored one is read without a look-up,
    since every connection to it vets the addresses again (`outbound.client`).
    """
    try:
        outbound.check_url(issuer, resolve_host=resolve_host)
    except outbound.UnsafeURL as exc:
        raise OIDCError(str(exc)) from exc
    parts = urlsplit(issuer)
    if parts.query or parts.fragment or issuer.endswith(("?", "#")):
        raise OIDCError("The identity provider's issuer must have no query or fragment.")
    return issuer


def _get_json(url: str) -> dict:
    try:
        with outbound.client(timeout=TIMEOUT) as client:
            response = client.get(url)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("identity provider: GET %s failed: %s: %s", url, type(exc).__name__, exc)
        raise OIDCError(UNREACHABLE) from exc
    if not isinstance(data, dict):
        raise OIDCError("The bank's sign-in service answered in an unexpected way.")
    return data


def discovery(provider: IdentityProvider) -> dict:
    """The provider's discovery document, checked before it is cached.

    Its `issuer` must be exactly the configured one, and the endpoints bankside calls
    (`token_endpoint`, `jwks_uri`) must be addresses it may call.
    """
    issuer = check_issuer(provider.issuer, resolve_host=False)
    key = f"linking:oidc:discovery:{issuer}"
    document = cache.get(key)
    if document is None:
        document = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if document.get("issuer") != issuer:
            raise OIDCError(
                "The sign-in service's discovery document names another issuer: "
                f"{str(document.get('issuer'))[:300]!r}."
            )
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(field), str):
                raise OIDCError(f"The sign-in service's discovery document lacks {field}.")
            try:
                outbound.check_url(document[field], resolve_host=field != "authorization_endpoint")
            except outbound.UnsafeURL as exc:
                raise OIDCError(
                    f"The sign-in service's discovery document gives a {field} that bankside "
                    "does not call: it must be a public https:// address."
                ) from exc
        cache.set(key, document, CACHE_SECONDS)
    return document


def check_authorization_response(provider: IdentityProvider, iss: str | None) -> None:
    """RFC 9207: the `iss` of the authorization response names this provider.

    Sent, it must be the issuer exactly; a provider that says it sends it
    (`authorization_response_iss_parameter_supported`) must have sent it.
    """
    if iss is None:
        if discovery(provider).get("authorization_response_iss_parameter_supported") is True:
            raise OIDCError("The sign-in answer did not say which service sent it.")
    elif iss != provider.issuer:
        raise OIDCError("The sign-in answer came from another service.")


def _client_secret_basic(client_id: str, client_secret: str) -> str:
    """RFC 6749 2.3.1: both are form-urlencoded before they are joined and base64-encoded."""
    joined = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(joined.encode()).decode("ascii")


def start(
    provider: IdentityProvider, redirect_uri: str, *, reauthenticate: bool = False
) -> Started:
    """The authorization request. With `reauthenticate` the provider is asked to have the
    customer sign in again even when it has a session (`prompt=login`, `max_age=0`), as
    renewing a consent calls for."""
    document = discovery(provider)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    again = {"prompt": "login", "max_age": "0"} if reauthenticate else {}
    url = add_params_to_uri(
        document["authorization_endpoint"],
        {
            **again,
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": provider.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        },
    )
    return Started(url, state, nonce, verifier)


def _keys(document: dict, *, refresh: bool = False) -> KeySet:
    key = f"linking:oidc:jwks:{document['jwks_uri']}"
    raw = None if refresh else cache.get(key)
    if raw is None:
        raw = _get_json(document["jwks_uri"])
        cache.set(key, raw, CACHE_SECONDS)
    try:
        return KeySet.import_key_set(raw)
    except (JoseError, ValueError, TypeError) as exc:
        raise OIDCError("The sign-in service published unusable keys.") from exc


def finish(
    provider: IdentityProvider, *, code: str, redirect_uri: str, nonce: str, code_verifier: str
) -> str:
    """Exchange the code and verify the ID token; returns the customer id claim."""
    document = discovery(provider)
    try:
        with outbound.client(timeout=TIMEOUT) as client:
            response = client.post(
                document["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "code_verifier": code_verifier,
                },
                headers={
                    "Authorization": _client_secret_basic(
                        provider.client_id, provider.client_secret
                    )
                },
            )
        tokens = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("identity provider: token request failed: %s: %s", type(exc).__name__, exc)
        raise OIDCError(UNREACHABLE) from exc
    id_token = tokens.get("id_token") if isinstance(tokens, dict) else None
    if response.status_code != 200 or not isinstance(id_token, str):
        log.warning(
            "identity provider: token request answered %s: %s",
            response.status_code,
            str(tokens.get("error") if isinstance(tokens, dict) else "")[:100],
        )
        raise OIDCError("The bank's sign-in service refused the sign-in. Please try again.")
    try:
        try:
            token = jwt.decode(id_token, _keys(document), algorithms=ALGORITHMS)
        except JoseError:
            token = jwt.decode(id_token, _keys(document, refresh=True), algorithms=ALGORITHMS)
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "value": provider.client_id},
            nonce={"essential": True, "value": nonce},
            exp={"essential": True},
        ).validate(token.claims)
    except JoseError as exc:
        raise OIDCError("The sign-in could not be verified. Please try again.") from exc
    customer_id = token.claims.get(provider.customer_claim)
    if not isinstance(customer_id, str | int) or not str(customer_id):
        raise OIDCError("The sign-in did not say which customer you are.")
    return str(customer_id)
