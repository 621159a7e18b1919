"""A small OpenID Connect provider for the tests: discovery, authorize, token and keys.

It checks what a real provider checks (client, redirect URI, PKCE S256, single-use codes)
and can be told to misbehave, so the portal's verification is exercised for real.
"""

import base64
import hashlib
import secrets
import time
from urllib.parse import urlencode

from django.http import HttpResponseBadRequest, HttpResponseRedirect, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "bankside-harbour"
CLIENT_SECRET = "idp-client-secret-0123456789"
KEY = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})

state = {"subject": "cu-ana", "tamper": None, "codes": {}, "token_requests": []}


def reset(subject="cu-ana", tamper=None) -> None:
    state.update(subject=subject, tamper=tamper, codes={}, token_requests=[], prompts=[])


def _issuer(request) -> str:
    return request.build_absolute_uri("/idp").rstrip("/")


def discovery(request):
    issuer = _issuer(request)
    return JsonResponse(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "jwks_uri": f"{issuer}/jwks",
            "code_challenge_methods_supported": ["S256"],
        }
    )


def authorize(request):
    q = request.GET
    if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
        return HttpResponseBadRequest("bad client or response_type")
    if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
        return HttpResponseBadRequest("PKCE S256 required")
    state["prompts"].append((q.get("prompt"), q.get("max_age")))
    code = secrets.token_urlsafe(16)
    state["codes"][code] = {
        "nonce": q.get("nonce"),
        "challenge": q["code_challenge"],
        "redirect_uri": q["redirect_uri"],
    }
    return HttpResponseRedirect(
        q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state", "")})
    )


@csrf_exempt
def token(request):
    auth = request.headers.get("Authorization", "")
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    if auth != f"Basic {expected}":
        return JsonResponse({"error": "invalid_client"}, status=401)
    grant = state["codes"].pop(request.POST.get("code", ""), None)
    verifier = request.POST.get("code_verifier", "")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    pkce_ok = grant is not None and challenge.decode() == grant["challenge"]
    state["token_requests"].append({"pkce_ok": pkce_ok})
    if grant is None or not pkce_ok or request.POST.get("redirect_uri") != grant["redirect_uri"]:
        return JsonResponse({"error": "invalid_grant"}, status=400)
    tamper = state["tamper"]
    claims = {
        "iss": _issuer(request),
        "aud": "someone-else" if tamper == "audience" else CLIENT_ID,
        "sub": state["subject"],
        "nonce": "not-the-nonce" if tamper == "nonce" else grant["nonce"],
        "iat": int(time.time()),
        "exp": int(time.time()) - 60 if tamper == "expired" else int(time.time()) + 300,
    }
    key = OTHER_KEY if tamper == "signature" else KEY
    id_token = jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, key)
    return JsonResponse(
        {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": id_token}
    )


def jwks(request):
    return JsonResponse({"keys": [KEY.as_dict(private=False)]})


urlpatterns = [
    path("idp/.well-known/openid-configuration", discovery),
    path("idp/authorize", authorize),
    path("idp/token", token),
    path("idp/jwks", jwks),
]


def bank_with_provider(settings, *, site_url: str, issuer_origin: str):
    """Harbour Bank (Ana Souza its customer) signing customers in at this provider, served by
    the live server at `issuer_origin` (the site's own origin, or another name for it)."""
    from django.core.cache import cache

    from linking import services
    from linking.tests.factories import CustomerFactory, IntegrationFactory
    from portal.audit import Actor

    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = True  # the provider is the live server
    settings.ROOT_URLCONF = "linking.tests.idp_urls"
    settings.PUBLIC_BASE_URL = site_url
    cache.clear()
    reset()
    integration = IntegrationFactory(bank__slug="harbour", bank__name="Harbour Bank")
    CustomerFactory(bank=integration.bank, external_id="cu-ana", name="Ana Souza")
    services.identity_provider_configure(
        actor=Actor("staff", "1", "olga"),
        bank=integration.bank,
        issuer=f"{issuer_origin}/idp",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    return integration.bank
