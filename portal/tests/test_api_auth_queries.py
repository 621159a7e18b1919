"""The gate of every core-banking API request, authentication then rate limit, reads the
key, its bank, the bank's signing setting and the key's rate limit in one query. A web
process keeps what it read for `API_CALLER_CACHE_SECONDS`: a busy key costs no query, a
change saved in the process applies to its next request, and one made elsewhere once the
kept copy is that old."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from bankside.settings.base import api_caller_seconds_from_env
from core.api.auth import SignedApiKeyAuthentication
from core.api.throttling import ApiKeyRateThrottle
from notifications.tests.problems import assert_problem
from portal.api_callers import api_caller_get
from portal.audit import Actor
from portal.models import ApiKey, ApiKeyRateLimit, ApiSigning
from portal.services import api_key_revoke
from portal.services.api_settings import api_signing_disable, api_signing_enable

pytestmark = pytest.mark.django_db

WHOAMI = "/api/v1/whoami"
ADMIN = Actor.system("test")


def gate(secret: str) -> tuple[Request, bool]:
    """Authenticate and rate-limit one `POST /api/v1/events` as DRF does for every view."""
    request = Request(
        APIRequestFactory().post(
            "/api/v1/events",
            b"{}",
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        ),
        authenticators=[SignedApiKeyAuthentication()],
    )
    request.user  # noqa: B018  (authenticates)
    return request, ApiKeyRateThrottle().allow_request(request, None)


def test_a_request_is_authenticated_and_rate_limited_with_one_query(issued, settings):
    settings.API_CALLER_CACHE_SECONDS = 0  # every request reads the key
    gate(issued.secret)  # the first use of the minute also records it

    with CaptureQueriesContext(connection) as queries:
        request, allowed = gate(issued.secret)

    assert len(queries) == 1
    assert allowed
    assert request.user.bank.slug == "harbour"
    assert request.auth.pk == issued.api_key.pk


def test_signing_and_rate_limit_settings_cost_no_query_of_their_own(issued, bank, settings):
    settings.API_CALLER_CACHE_SECONDS = 0
    ApiSigning.objects.create(bank=bank, secret="", required=False)
    ApiKeyRateLimit.objects.create(api_key=issued.api_key, per_second=5, burst=10)
    gate(issued.secret)

    with CaptureQueriesContext(connection) as queries:
        _, allowed = gate(issued.secret)

    assert len(queries) == 1
    assert allowed


def test_a_key_read_lately_costs_no_query_until_it_is_a_second_old(issued, kept_callers_clock):
    clock = kept_callers_clock
    with CaptureQueriesContext(connection) as first:
        gate(issued.secret)
    clock.now += 0.9
    with CaptureQueriesContext(connection) as soon:
        request, allowed = gate(issued.secret)
    clock.now += 0.2
    with CaptureQueriesContext(connection) as later:
        gate(issued.secret)

    assert len(first) >= 1
    assert len(soon) == 0
    assert allowed and request.user.bank.slug == "harbour"
    assert request.auth.pk == issued.api_key.pk
    assert len(later) == 1


def test_a_wrong_secret_with_a_kept_key_is_refused(issued):
    gate(issued.secret)
    prefix = issued.api_key.prefix

    with pytest.raises(AuthenticationFailed):
        gate(f"bsk_{prefix}_not-the-secret")


def test_an_unknown_prefix_is_read_every_time(db):
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries, pytest.raises(AuthenticationFailed):
            gate("bsk_0123456789ab_whatever")
        assert len(queries) == 1


def test_a_key_revoked_in_this_process_is_refused_at_once(api, issued):
    assert api.get(WHOAMI).status_code == 200

    api_key_revoke(actor=ADMIN, api_key=ApiKey.objects.get(pk=issued.api_key.pk))

    assert assert_problem(api.get(WHOAMI), 401)["detail"] == (
        "The API key is not valid, has expired or has been revoked."
    )


def test_a_key_revoked_by_another_process_is_refused_once_the_kept_copy_expires(
    api, issued, kept_callers_clock
):
    clock = kept_callers_clock
    assert api.get(WHOAMI).status_code == 200
    # As another web process revokes it: no signal reaches this one.
    ApiKey.objects.filter(pk=issued.api_key.pk).update(revoked_at=timezone.now())

    kept = api.get(WHOAMI)
    clock.now += 1.01
    expired = api.get(WHOAMI)

    assert kept.status_code == 200
    assert assert_problem(expired, 401)["code"] == "authentication_failed"


def test_the_time_a_key_is_kept_is_configured_within_bounds():
    assert api_caller_seconds_from_env("2.5") == 2.5
    assert api_caller_seconds_from_env("0") == 0
    for wrong in ("-1", "61", "soon", "nan"):
        with pytest.raises(ImproperlyConfigured, match="API_CALLER_CACHE_SECONDS"):
            api_caller_seconds_from_env(wrong)


def test_the_first_use_in_a_minute_adds_only_its_record(issued):
    ApiKey.objects.filter(pk=issued.api_key.pk).update(
        last_used_at=timezone.now() - timedelta(seconds=61)
    )

    with CaptureQueriesContext(connection) as queries:
        gate(issued.secret)

    assert len(queries) == 2
    assert queries.captured_queries[1]["sql"].startswith("UPDATE")


def test_a_whoami_call_makes_one_query_and_none_with_the_key_kept(api, issued, settings):
    api.get(WHOAMI)
    with CaptureQueriesContext(connection) as kept:
        response = api.get(WHOAMI)
    settings.API_CALLER_CACHE_SECONDS = 0
    with CaptureQueriesContext(connection) as read:
        api.get(WHOAMI)

    assert response.status_code == 200
    assert len(kept) == 0
    assert len(read) == 1


def test_signing_made_mandatory_applies_to_the_next_request(api, bank):
    assert api.get(WHOAMI).status_code == 200

    api_signing_enable(actor=ADMIN, bank=bank)
    refused = api.get(WHOAMI)
    api_signing_disable(actor=ADMIN, bank=bank)
    accepted = api.get(WHOAMI)

    assert assert_problem(refused, 401)["code"] == "invalid_signature"
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert accepted.status_code == 200


def test_a_rate_limit_override_applies_to_the_next_request(api, issued):
    assert api.get(WHOAMI).status_code == 200

    ApiKeyRateLimit.objects.create(api_key=issued.api_key, per_second=0.1, burst=1)
    answers = [api.get(WHOAMI) for _ in range(2)]

    assert [answer.status_code for answer in answers] == [200, 429]
    assert 1 <= int(answers[1]["Retry-After"]) <= 10


def test_a_changed_rate_limit_override_applies_to_the_next_request(api, issued):
    override = ApiKeyRateLimit.objects.create(api_key=issued.api_key, per_second=50, burst=100)
    assert api.get(WHOAMI).status_code == 200

    override.per_second, override.burst = 0.1, 1
    override.save()
    answers = [api.get(WHOAMI).status_code for _ in range(2)]

    assert answers == [200, 429]


def test_the_caller_is_the_key_and_bank_a_queryset_reads(issued, bank):
    ApiKey.objects.filter(pk=issued.api_key.pk).update(last_used_at=timezone.now())
    expected = ApiKey.objects.select_related("bank").get(pk=issued.api_key.pk)

    caller = api_caller_get(prefix=issued.api_key.prefix)

    for model, found, wanted in (
        (ApiKey, caller.api_key, expected),
        (type(bank), caller.api_key.bank, expected.bank),
    ):
        for field in model._meta.concrete_fields:
            value = getattr(found, field.attname)
            assert value == getattr(wanted, field.attname), field.name
            assert type(value) is type(getattr(wanted, field.attname)), field.name
        assert not found._state.adding
        assert found._state.db == wanted._state.db
    assert caller.signing_required is False
    assert caller.rate_limit == (50.0, 100)


def test_the_caller_carries_the_bank_signing_setting_and_the_key_override(issued, bank):
    ApiSigning.objects.create(bank=bank, secret="", required=True)
    ApiKeyRateLimit.objects.create(api_key=issued.api_key, per_second=2.5, burst=7)

    caller = api_caller_get(prefix=issued.api_key.prefix)

    assert caller.signing_required is True
    assert caller.rate_limit == (2.5, 7)


def test_no_key_has_an_unknown_prefix(issued):
    assert api_caller_get(prefix="0123456789ab") is None
