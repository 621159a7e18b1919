"""Customer sign-in at the bank's OpenID Connect provider: authorisation code flow + PKCE.

PKCE, tokens and URL handling come from Authlib; ID-token signatures and claims are
checked with joserfc against the provider's published keys. Discovery documents and key
sets are cached for an hour.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.conf import settings
from django.core.cache import cache
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from linking.models import IdentityProvider

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


def check_issuer(issuer: str) -> str:
    parts = urlsplit(issuer)
    local = settings.SANDBOX_ENABLED and parts.hostname in {"localhost", "127.0.0.1"}
    if not parts.hostname or not (parts.scheme == "https" or (local and parts.scheme == "http")):
        raise OIDCError("The identity provider's issuer must be an https:// address.")
    return issuer.rstrip("/")


def _get_json(url: str) -> dict:
    try:
        response = httpx.get(url, timeout=TIMEOUT, follow_redirects=False)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OIDCError("The bank's sign-in service is not answering. Try again shortly.") from exc
    if not isinstance(data, dict):
        raise OIDCError("The bank's sign-in service answered in an unexpected way.")
    return data


def discovery(provider: IdentityProvider) -> dict:
    issuer = check_issuer(provider.issuer)
    key = f"linking:oidc:discovery:{issuer}"
    document = cache.get(key)
    if document is None:
        document = _get_json(f"{issuer}/.well-known/openid-configuration")
        if document.get("issuer", "").rstrip("/") != issuer:
            raise OIDCError("The sign-in service's discovery document names another issuer.")
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(field), str):
                raise OIDCError(f"The sign-in service's discovery document lacks {field}.")
        cache.set(key, document, CACHE_SECONDS)
    return document


def start(provider: IdentityProvider, redirect_uri: str) -> Started:
    document = discovery(provider)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    url = add_params_to_uri(
        document["authorization_endpoint"],
        {
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
        response = httpx.post(
            document["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
            auth=(provider.client_id, provider.client_secret),
            timeout=TIMEOUT,
        )
        tokens = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OIDCError("The bank's sign-in service is not answering. Try again shortly.") from exc
    id_token = tokens.get("id_token") if isinstance(tokens, dict) else None
    if response.status_code != 200 or not isinstance(id_token, str):
        raise OIDCError("The bank's sign-in service refused the sign-in. Please try again.")
    try:
        try:
            token = jwt.decode(id_token, _keys(document), algorithms=ALGORITHMS)
        except JoseError:
            token = jwt.decode(id_token, _keys(document, refresh=True), algorithms=ALGORITHMS)
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": check_issuer(provider.issuer)},
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
