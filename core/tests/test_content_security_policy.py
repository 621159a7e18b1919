"""Every kind of page answers with the strict Content-Security-Policy, and holds nothing it
would block: the customer's pages, the sandbox, the API docs, the Django admin, the errors.

The staff pages are walked from the URL map in portal/tests/test_content_security_policy.py.
"""

import re

import httpx
import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY

from core import outbound
from core.tests.csp import assert_nothing_inline, assert_strict_policy
from linking.models import IdentityProvider
from linking.tests.factories import AccountFactory, IntegrationFactory
from portal.models import Bank
from portal.tests.factories import StaffMembershipFactory, TOTPDeviceFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "open sesame 42"


@pytest.fixture(autouse=True)
def _no_cached_discovery():
    cache.clear()  # identity providers' discovery documents
    yield
    cache.clear()


def page(response, status: int = 200) -> dict[str, list[str]]:
    """The policy of an HTML page answered with `status`, checked with what it holds."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("text/html")
    assert_nothing_inline(response.content.decode())
    return assert_strict_policy(response)


@pytest.fixture
def customer_client(client):
    integration = IntegrationFactory(bank__slug="harbour", bank__name="Harbour Bank")
    AccountFactory(customer__bank=integration.bank, customer__directory_username="ana")
    response = client.post("/link/harbour/login", {"username": "ana", "password": PASSWORD})
    assert response.status_code == 302
    return client


def start_flow(client, redirect_uri: str) -> None:
    session = client.session
    session["link_flow"] = {
        "bank": "harbour",
        "token": "t",
        "redirect_uri": redirect_uri,
        "page_id": "1",
        "started_at": timezone.now().isoformat(),
    }
    session.save()


def test_the_customer_login_page_posts_only_here(client):
    IntegrationFactory(bank__slug="harbour")

    policy = page(client.get("/link/harbour/login"))

    assert policy["form-action"] == ["'self'"]


def test_the_login_page_may_send_its_sign_in_form_on_to_the_banks_provider(client):
    integration = IntegrationFactory(bank__slug="harbour")
    IdentityProvider.objects.create(
        bank=integration.bank,
        issuer="https://login.harbour.example/realms/customers",
        client_id="bankside",
        client_secret="s3cret",
    )

    policy = page(client.get("/link/harbour/login"))

    assert policy["form-action"] == ["'self'", "https://login.harbour.example"]


def test_the_login_page_names_an_authorization_endpoint_elsewhere_than_the_issuer(
    client, monkeypatch
):
    """As with Amazon Cognito: the issuer on one host, the sign-in pages on another."""
    integration = IntegrationFactory(bank__slug="harbour")
    IdentityProvider.objects.create(
        bank=integration.bank,
        issuer="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Harbour",
        client_id="bankside",
        client_secret="s3cret",
    )
    discovered = {
        "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Harbour",
        "authorization_endpoint": "https://harbour.auth.eu-west-1.amazoncognito.com/oauth2/authorize",
        "token_endpoint": "https://harbour.auth.eu-west-1.amazoncognito.com/oauth2/token",
        "jwks_uri": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Harbour/.well-known/jwks.json",
    }
    monkeypatch.setattr(
        outbound,
        "VettedTransport",
        lambda: httpx.MockTransport(lambda request: httpx.Response(200, json=discovered)),
    )

    policy = page(client.get("/link/harbour/login"))

    assert policy["form-action"] == [
        "'self'",
        "https://cognito-idp.eu-west-1.amazonaws.com",
        "https://harbour.auth.eu-west-1.amazoncognito.com",
    ]


# The address also reaches the discovery cache's key, which warns of its spaces.
@pytest.mark.filterwarnings("ignore::django.core.cache.backends.base.CacheKeyWarning")
def test_a_provider_address_cannot_add_to_the_policy(client):
    integration = IntegrationFactory(bank__slug="harbour")
    IdentityProvider.objects.create(
        bank=integration.bank,
        issuer="https://login.harbour.example;script-src * 'unsafe-inline'",
        client_id="bankside",
        client_secret="s3cret",
    )

    response = client.get("/link/harbour/login")

    assert response["Content-Security-Policy"].count("script-src") == 1
    assert page(response)["form-action"] == ["'self'"]


def test_the_consent_screen_may_send_its_answer_back_to_messenger_only(customer_client):
    start_flow(customer_client, "https://www.facebook.com/messenger_platform/account_linking/?x=1")

    policy = page(customer_client.get("/link/harbour/consent"))

    assert policy["form-action"] == ["'self'", "https://www.facebook.com"]


def test_the_customer_dashboard_and_problem_pages(customer_client):
    page(customer_client.get("/my/harbour/"))
    page(customer_client.get("/link/harbour/consent"), status=400)  # no flow started


def test_the_sandbox_pages(client):
    created = client.post(
        "/sandbox/api/pages",
        {"page_id": "1029384756", "name": "Harbour Bank", "access_token": "EA", "app_secret": "s"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    user = client.post(
        "/sandbox/api/pages/1029384756/users", {"name": "Ana"}, content_type="application/json"
    ).json()

    page(client.get("/sandbox/"))
    page(client.get(f"/sandbox/chat/1029384756/{user['psid']}/"))
    page(client.get("/sandbox/link/done?account_linking_token=nope"), status=400)


def test_the_api_docs_run_only_scripts_of_their_own(client):
    docs = client.get(reverse("api-docs"))
    page(docs)
    scripts = re.findall(r'<script src="([^"]+)"', docs.content.decode())

    assert scripts and all(src.startswith("/") for src in scripts)
    set_up = client.get(next(src for src in scripts if src.endswith("?script=")))
    assert set_up.status_code == 200
    assert set_up["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in set_up.content.decode()


def test_api_answers_carry_the_policy_too(client):
    assert_strict_policy(client.get(reverse("api-schema")))
    assert_strict_policy(client.get("/api/v1/outcomes"))
    assert_strict_policy(client.get("/health/live"))


def test_the_django_admin(client):
    root = UserFactory(is_superuser=True, is_staff=True)
    device = TOTPDeviceFactory(user=root)
    client.force_login(root)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    bank = Bank.objects.create(name="Harbour Bank", slug="harbour")

    page(client.get(reverse("admin:index")))
    page(client.get(reverse("admin:portal_bank_changelist")))
    page(client.get(reverse("admin:portal_bank_change", args=[bank.pk])))
    page(client.get(reverse("admin:portal_auditevent_changelist")))
    page(client.get(reverse("admin:auth_user_changelist")))


def test_error_pages(client):
    operator = StaffMembershipFactory(role="operator").user
    staff = Client()
    staff.force_login(operator)
    session = staff.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDeviceFactory(user=operator).persistent_id
    session.save()

    page(client.get("/no/such/page/"), status=404)
    page(staff.get(reverse("portal:api_keys", args=[operator.memberships.get().bank.slug])), 403)
    strict = Client(enforce_csrf_checks=True)
    page(strict.post("/staff/login/", {"username": "x", "password": "y"}), status=403)
