"""Linking with a real OpenID provider (node-oidc-provider), over HTTP from end to end."""

from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from django.core.cache import cache

from linking import services
from linking.tests.factories import AccountFactory, CustomerFactory, IntegrationFactory
from linking.tests.real_idp import CLIENT_ID, CLIENT_SECRET, provider_running, submit
from portal.audit import Actor

pytestmark = pytest.mark.django_db(transaction=True)

MESSENGER_RETURN = "https://www.facebook.com/messenger_platform/account_linking/?x=1"


@pytest.fixture(params=["/", "/oidc"], ids=["issuer-with-trailing-slash", "issuer-with-path"])
def issuer(request, live_server, settings):
    """The bank's provider, running, and the bank pointed at it (both on loopback)."""
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = True
    settings.PUBLIC_BASE_URL = live_server.url
    cache.clear()
    integration = IntegrationFactory(bank__slug="harbour", bank__name="Harbour Bank")
    customer = CustomerFactory(bank=integration.bank, external_id="cu-ana", name="Ana Souza")
    AccountFactory(customer=customer, external_id="chk-001", last4="4821")
    callback = f"{live_server.url}/link/harbour/oidc/callback"
    with provider_running(path=request.param, redirect_uri=callback) as running:
        services.identity_provider_configure(
            actor=Actor("staff", "1", "olga"),
            bank=integration.bank,
            issuer=running,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
        yield running


@pytest.fixture
def browser():
    with httpx.Client(timeout=15, follow_redirects=True) as client:
        yield client


def to_the_provider(live_server, browser) -> httpx.Response:
    """Messenger opens the Log In URL; the customer chooses the bank's sign-in."""
    query = urlencode({"account_linking_token": "tok-ana", "redirect_uri": MESSENGER_RETURN})
    login = browser.get(f"{live_server.url}/link/harbour/?{query}")
    assert "Continue with Harbour Bank sign-in" in login.text
    return submit(browser, login, {}, action="/oidc/start")


def answer_from_the_provider(live_server, browser) -> str:
    """Sign in and consent at the provider; returns where it sends the browser back to."""
    sign_in_page = to_the_provider(live_server, browser)
    assert sign_in_page.url.host == "127.0.0.1" and 'name="login"' in sign_in_page.text
    consent_page = submit(browser, sign_in_page, {"login": "cu-ana", "password": "any"})
    assert 'name="prompt" value="consent"' in consent_page.text
    browser.follow_redirects = False
    response = submit(browser, consent_page, {})
    while not response.headers["location"].startswith(f"{live_server.url}/link/"):
        response = browser.get(urljoin_location(response))
    browser.follow_redirects = True
    return response.headers["location"]


def urljoin_location(response: httpx.Response) -> str:
    return str(response.url.join(response.headers["location"]))


def with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update({k: v for k, v in changes.items() if v is not None})
    for name in (k for k, v in changes.items() if v is None):
        query.pop(name, None)
    return parts._replace(query=urlencode(query)).geturl()


def signed_in(live_server, browser) -> bool:
    return browser.get(f"{live_server.url}/my/harbour/").url.path == "/my/harbour/"


def test_a_customer_signs_in_at_the_provider_and_reaches_the_consent_screen(
    live_server, issuer, browser
):
    back = answer_from_the_provider(live_server, browser)
    assert dict(parse_qsl(urlsplit(back).query))["iss"] == issuer

    consent = browser.get(back)

    assert consent.status_code == 200
    assert str(consent.url) == f"{live_server.url}/link/harbour/consent"
    assert "Link Harbour Bank to Messenger?" in consent.text
    assert "Hello Ana Souza." in consent.text
    assert signed_in(live_server, browser)


@pytest.mark.parametrize(
    "iss", ["http://127.0.0.1:1/", "https://login.other-bank.example/", None], ids=str
)
def test_an_answer_naming_another_issuer_or_none_signs_nobody_in(live_server, issuer, browser, iss):
    back = answer_from_the_provider(live_server, browser)

    page = browser.get(with_query(back, iss=iss))

    assert page.status_code == 400
    assert "did not come from Harbour Bank" in page.text
    assert not signed_in(live_server, browser)


def test_an_answer_with_another_state_signs_nobody_in(live_server, issuer, browser):
    back = answer_from_the_provider(live_server, browser)

    page = browser.get(with_query(back, state="x" * 43))

    assert page.status_code == 400 and "not started here" in page.text
    assert not signed_in(live_server, browser)
