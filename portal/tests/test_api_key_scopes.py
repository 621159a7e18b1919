"""What an API key may call: its scopes on every operation of `/api/v1/`, its source-address
allow-list, its expiry. The operations are read from the URL map, so an endpoint added
without a scope fails here."""

import json
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.views import APIView

from core.api.scopes import ALL_SCOPES, ANY_KEY, SCOPES, required_scope
from portal.audit import Actor
from portal.models import ApiKey
from portal.services import api_key_create

pytestmark = pytest.mark.django_db

SEED = Actor.system("test")
_PARAM = re.compile(r"<(?:\w+:)?\w+>")
NOT_KEYED = {"api/v1/schema/", "api/v1/docs/"}  # the API's description, public
# What each operation needs, as the bank's integrators are told (README, OpenAPI).
EXPECTED = {
    ("api/v1/customers/<anytext:customer_id>", "PUT"): "customers:write",
    ("api/v1/customers/<anytext:customer_id>/link-invitations", "POST"): "customers:write",
    ("api/v1/events", "POST"): "events:write",
    ("api/v1/events/<path:event_id>", "GET"): "events:read",
    ("api/v1/outcomes", "GET"): "outcomes:read",
    ("api/v1/whoami", "GET"): ANY_KEY,
}


@dataclass(frozen=True)
class Operation:
    route: str
    method: str
    view: type[APIView]

    @property
    def path(self) -> str:
        return "/" + _PARAM.sub("sample-1", self.route)

    def __str__(self) -> str:
        return f"{self.method} /{self.route}"


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def api_operations() -> list[Operation]:
    found = []
    for route, callback in _walk(get_resolver().url_patterns):
        view = getattr(callback, "cls", None)
        if not route.startswith("api/v1/") or route in NOT_KEYED:
            continue
        assert view is not None and issubclass(view, APIView), f"/{route} is not an API view"
        for method in view.http_method_names:
            if method not in ("options", "head") and hasattr(view, method):
                found.append(Operation(route, method.upper(), view))
    return found


OPERATIONS = api_operations()
SCOPED = [op for op in OPERATIONS if required_scope(op.view, op.method) != ANY_KEY]


def key_with(bank, *, scopes=ALL_SCOPES, name="Core", **options) -> str:
    return api_key_create(actor=SEED, bank=bank, name=name, scopes=scopes, **options).secret


def call(operation: Operation, secret: str, **extra):
    client = APIClient()
    body = json.dumps({}) if operation.method in ("POST", "PUT") else None
    return getattr(client, operation.method.lower())(
        operation.path,
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        **extra,
    )


def test_the_url_map_has_the_operations_this_file_knows():
    assert {(op.route, op.method) for op in OPERATIONS} >= set(EXPECTED)


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_every_operation_declares_its_scope(operation):
    declared = required_scope(operation.view, operation.method)

    assert declared is not None, f"{operation} names no scope in `required_scopes`"
    assert declared == ANY_KEY or declared in SCOPES
    if (operation.route, operation.method) in EXPECTED:
        assert declared == EXPECTED[(operation.route, operation.method)]


@pytest.mark.parametrize("operation", SCOPED, ids=str)
def test_a_key_without_the_scope_is_refused_with_a_problem(bank, operation):
    needed = required_scope(operation.view, operation.method)
    others = [scope for scope in ALL_SCOPES if scope != needed]

    response = call(operation, key_with(bank, scopes=others))

    assert response.status_code == 403, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 403
    assert problem["code"] == "insufficient_scope"
    assert needed in problem["detail"]


@pytest.mark.parametrize("operation", SCOPED, ids=str)
def test_a_key_with_only_that_scope_gets_past_the_scope_check(bank, operation):
    needed = required_scope(operation.view, operation.method)

    response = call(operation, key_with(bank, scopes=[needed]))

    assert response.status_code not in (401, 403), response.content


def test_any_key_may_ask_which_bank_it_is(bank):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_with(bank, scopes=['events:read'])}")

    response = client.get("/api/v1/whoami")

    assert response.status_code == 200
    assert response.json() == {"bank": "harbour", "key": "Core"}


def test_an_operation_that_declares_no_scope_is_refused_to_every_key(bank, monkeypatch):
    from notifications.api.views import OutcomeListApi

    monkeypatch.setattr(OutcomeListApi, "required_scopes", {})

    response = call(Operation("api/v1/outcomes", "GET", OutcomeListApi), key_with(bank))

    assert response.status_code == 403
    assert response.json()["code"] == "scope_undeclared"


# Source addresses


OUTCOMES = Operation("api/v1/outcomes", "GET", APIView)


def test_a_key_limited_to_a_block_works_from_inside_it(bank):
    secret = key_with(bank, allowed_networks=["203.0.113.0/24", "2001:db8::/32"])

    v4 = call(OUTCOMES, secret, REMOTE_ADDR="203.0.113.77")
    v6 = call(OUTCOMES, secret, REMOTE_ADDR="2001:db8::5")

    assert (v4.status_code, v6.status_code) == (200, 200)


def test_a_key_limited_to_a_block_is_refused_from_elsewhere(bank):
    secret = key_with(bank, allowed_networks=["203.0.113.0/24"])

    response = call(OUTCOMES, secret, REMOTE_ADDR="198.51.100.9")

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "address_not_allowed"


def test_a_forged_forwarded_for_does_not_get_past_the_allow_list(bank):
    secret = key_with(bank, allowed_networks=["203.0.113.0/24"])

    response = call(
        OUTCOMES, secret, REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR="203.0.113.5"
    )

    assert response.status_code == 403


def test_behind_a_trusted_proxy_the_address_it_saw_counts(bank, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    secret = key_with(bank, allowed_networks=["203.0.113.0/24"])

    inside = call(OUTCOMES, secret, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.5")
    outside = call(
        OUTCOMES,
        secret,
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.9",
    )

    assert (inside.status_code, outside.status_code) == (200, 403)


def test_an_ipv4_mapped_address_counts_as_its_ipv4_address(bank):
    secret = key_with(bank, allowed_networks=["203.0.113.0/24"])

    response = call(OUTCOMES, secret, REMOTE_ADDR="::ffff:203.0.113.8")

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("10.0.0.1/8", "did you mean 10.0.0.0/8"),
        ("300.1.2.3", "is not an IP address"),
        ("example.com", "is not an IP address"),
        ("10.0.0.0/33", "is not an IP address"),
    ],
)
def test_an_invalid_allow_list_is_refused_and_nothing_is_written(bank, entry, says):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        key_with(bank, allowed_networks=["192.0.2.0/24", entry])

    assert says in str(refused.value)
    assert not ApiKey.objects.exists()


# Expiry


def test_a_key_works_until_it_expires_and_is_refused_with_401_after(bank, monkeypatch):
    secret = key_with(bank, expires_at=timezone.now() + timedelta(days=30))
    before = call(OUTCOMES, secret)

    later = timezone.now() + timedelta(days=30, seconds=1)
    monkeypatch.setattr("portal.services.api_keys.timezone.now", lambda: later)
    after = call(OUTCOMES, secret)

    assert before.status_code == 200
    assert after.status_code == 401
    assert after["Content-Type"] == "application/problem+json"
    assert after["WWW-Authenticate"].startswith("Bearer")
    assert "has expired" in after.json()["detail"]


def test_an_expiry_in_the_past_is_refused(bank):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        key_with(bank, expires_at=timezone.now() - timedelta(minutes=1))

    assert not ApiKey.objects.exists()


def test_a_key_needs_at_least_one_known_scope(bank):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        key_with(bank, scopes=[])
    with pytest.raises(ValidationError):
        key_with(bank, scopes=["events:delete"])

    assert not ApiKey.objects.exists()


def test_the_api_description_names_each_operation_s_scope_and_its_403():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)

    for (route, method), scope in EXPECTED.items():
        operation = schema["paths"]["/" + _PARAM.sub(_openapi_param, route)][method.lower()]
        assert operation["x-required-scope"] == (scope or None), route
        assert "403" in operation["responses"], route
        assert (f"`{scope}` scope" if scope else "Any valid API key") in operation["description"]


def _openapi_param(match) -> str:
    return "{" + match.group(0).strip("<>").split(":")[-1] + "}"
