"""The API skips the middleware only browsers need; every other path keeps all of it."""

import pytest
from django.test import Client
from django.urls import reverse

from portal.tests.factories import BankFactory, UserFactory, api_key_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued():
    return api_key_for(BankFactory())


def test_an_api_request_runs_without_session_user_or_messages(client, issued):
    response = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {issued.secret}"})

    assert response.status_code == 200
    assert response.json()["key"] == "Core banking"
    request = response.wsgi_request
    assert not hasattr(request, "session")
    assert not hasattr(request, "_messages")
    assert "sessionid" not in response.cookies


def test_an_api_response_keeps_the_security_headers_and_request_id(client, issued):
    response = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {issued.secret}"})

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert len(response["X-Request-ID"]) == 32


def test_a_signed_in_staff_session_does_not_authenticate_the_api(client):
    client.force_login(UserFactory())

    response = client.get("/api/v1/whoami")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_staff_pages_still_get_sessions_csrf_and_messages(client):
    response = client.get(reverse("portal:login"))

    assert response.status_code == 200
    request = response.wsgi_request
    assert hasattr(request, "session") and hasattr(request, "_messages")
    assert request.user.is_anonymous
    assert "csrftoken" in response.cookies


def test_staff_forms_still_refuse_a_post_without_a_csrf_token():
    browser = Client(enforce_csrf_checks=True)

    response = browser.post(reverse("portal:login"), {"username": "a", "password": "b"})

    assert response.status_code == 403


def test_a_path_merely_starting_like_the_api_is_not_the_api(client):
    """Only `/api/…` is the API: `/apiary` and the like are ordinary pages."""
    response = client.get("/apiary")

    assert hasattr(response.wsgi_request, "session")
