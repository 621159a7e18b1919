from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from portal.audit import Actor
from portal.models import ApiKey
from portal.services import api_key_revoke
from portal.tests.factories import BankFactory, api_key_for

pytestmark = pytest.mark.django_db

WHOAMI = "/api/v1/whoami"


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def issued():
    return api_key_for(BankFactory(slug="harbour"), name="Core banking")


def call(api, key=None, *, header=None):
    if header is None and key is not None:
        header = f"Bearer {key}"
    return api.get(WHOAMI, HTTP_AUTHORIZATION=header) if header else api.get(WHOAMI)


def assert_problem(response, status):
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    return body


def test_a_valid_key_is_answered_with_its_bank_and_name(api, issued):
    response = call(api, issued.secret)

    assert response.status_code == 200
    assert response.json() == {"bank": "harbour", "key": "Core banking"}


def test_a_missing_header_is_401_problem_with_a_bearer_challenge(api):
    response = call(api)

    body = assert_problem(response, 401)
    assert body["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_key_is_401_problem(api, issued):
    prefix = issued.api_key.prefix

    response = call(api, f"bsk_{prefix}_not-the-secret")

    body = assert_problem(response, 401)
    assert body["code"] == "authentication_failed"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_malformed_key_is_401_problem(api):
    assert_problem(call(api, "hello"), 401)
    assert_problem(call(api, header="Bearer two parts"), 401)


def test_a_revoked_key_is_refused_at_once(api, issued):
    assert call(api, issued.secret).status_code == 200

    api_key_revoke(actor=Actor.system("test"), api_key=issued.api_key)
    response = call(api, issued.secret)

    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_key_of_one_bank_names_only_that_bank(api, issued):
    other = api_key_for(BankFactory(slug="other"), name="Other core")

    assert call(api, other.secret).json() == {"bank": "other", "key": "Other core"}
    assert call(api, issued.secret).json()["bank"] == "harbour"


def test_use_is_recorded_at_most_once_a_minute(api, issued, kept_callers_clock):
    call(api, issued.secret)
    first = ApiKey.objects.get(pk=issued.api_key.pk).last_used_at

    call(api, issued.secret)
    unchanged = ApiKey.objects.get(pk=issued.api_key.pk).last_used_at
    # A minute on: the use recorded is that old, and the process's copy of the key too.
    ApiKey.objects.filter(pk=issued.api_key.pk).update(
        last_used_at=timezone.now() - timedelta(seconds=61)
    )
    kept_callers_clock.now += 61
    call(api, issued.secret)
    refreshed = ApiKey.objects.get(pk=issued.api_key.pk).last_used_at

    assert first is not None
    assert unchanged == first
    assert refreshed > first


def test_only_a_hash_of_the_key_is_stored(issued):
    stored = ApiKey.objects.get(pk=issued.api_key.pk)
    secret_part = issued.secret.split("_", 2)[2]

    assert secret_part not in stored.secret_hash
    assert issued.secret.startswith(f"bsk_{stored.prefix}_")
    assert len(stored.secret_hash) == 64


def test_a_problem_names_its_occurrence_by_the_request_id(api):
    response = call(api)

    body = assert_problem(response, 401)
    assert body["instance"] == f"urn:bankside:request:{response['X-Request-ID']}"


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/customers", "/api/v1/events/"])
def test_a_path_the_api_does_not_have_is_a_404_problem(api, issued, path):
    response = api.get(path, HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    body = assert_problem(response, 404)
    assert body["code"] == "not_found"
    assert body["instance"] == f"urn:bankside:request:{response['X-Request-ID']}"


def test_a_page_outside_the_api_that_does_not_exist_is_still_the_html_page(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
