"""Customer sign-in at the bank's OpenID Connect provider, over real HTTP."""

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError

from linking import services
from linking.tests import fake_idp
from linking.tests.factories import IntegrationFactory
from portal.audit import Actor
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def idp_bank(live_server, settings):
    return fake_idp.bank_with_provider(
        settings, site_url=live_server.url, issuer_origin=live_server.url
    )


def sign_in_with_idp(live_server, browser_http):
    login = browser_http.get(f"{live_server.url}/link/harbour/login")
    assert "Continue with Harbour Bank sign-in" in login.text
    return browser_http.submit(login, {}, action=f"{live_server.url}/link/harbour/oidc/start")


def test_signing_in_at_the_bank_opens_the_dashboard(live_server, idp_bank, browser_http):
    page = sign_in_with_idp(live_server, browser_http)

    assert str(page.url) == f"{live_server.url}/my/harbour/"
    assert "What you share with Messenger" in page.text
    assert fake_idp.state["token_requests"] == [{"pkce_ok": True}]


@pytest.mark.parametrize("tamper", ["nonce", "audience", "signature", "expired"])
def test_an_id_token_that_does_not_verify_signs_nobody_in(
    live_server, idp_bank, browser_http, tamper
):
    fake_idp.reset(tamper=tamper)

    page = sign_in_with_idp(live_server, browser_http)

    assert page.status_code == 400 and "could not be verified" in page.text
    assert browser_http.get(f"{live_server.url}/my/harbour/").url.path == "/link/harbour/login"


def test_a_callback_with_a_foreign_state_is_refused(live_server, idp_bank, browser_http):
    sign_in_with_idp(live_server, browser_http)  # uses up this browser's sign-in
    code_holder = browser_http.get(
        f"{live_server.url}/link/harbour/oidc/callback?code=stolen&state=guessed"
    )

    assert code_holder.status_code == 400 and "not started here" in code_holder.text


def test_a_person_unknown_to_the_bank_is_not_signed_in(live_server, idp_bank, browser_http):
    fake_idp.reset(subject="cu-stranger")

    page = sign_in_with_idp(live_server, browser_http)

    assert page.status_code == 403 and "set up for Messenger yet" in page.text


def test_the_provider_secret_is_stored_encrypted_and_never_audited(idp_bank):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT client_secret FROM linking_identityprovider")
        [(stored,)] = cursor.fetchall()
    assert fake_idp.CLIENT_SECRET not in stored
    entry = AuditEvent.objects.get(action="identity_provider.configured")
    assert fake_idp.CLIENT_SECRET not in str(entry.details)


def test_an_issuer_without_https_is_refused(idp_bank, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = False
    with pytest.raises(ValidationError, match="https"):
        services.identity_provider_configure(
            actor=Actor("staff", "1", "olga"),
            bank=idp_bank,
            issuer="http://idp.example",
            client_id="c",
            client_secret="s",
        )


def test_the_command_reads_the_secret_from_the_environment(idp_bank, live_server, monkeypatch):
    import io

    from django.core.management import call_command

    from linking.models import IdentityProvider

    monkeypatch.setenv("OIDC_CLIENT_SECRET", "rotated-secret-value")
    out = io.StringIO()
    call_command(
        "identity_provider",
        "--bank",
        "harbour",
        "--issuer",
        f"{live_server.url}/idp",
        "--client-id",
        "new-client",
        stdout=out,
    )

    provider = IdentityProvider.objects.get(bank=idp_bank)
    assert (provider.client_id, provider.client_secret) == ("new-client", "rotated-secret-value")
    assert "customer sign-in at" in out.getvalue()


def test_a_bank_admin_sets_the_provider_from_the_staff_pages(
    live_server, idp_bank, client, sign_in
):
    from portal.tests.factories import StaffMembershipFactory

    sign_in(StaffMembershipFactory(bank=idp_bank, role="admin").user)
    url = "/staff/banks/harbour/customer-sign-in/"

    page = client.get(url).content.decode()
    assert "Customer sign-in" in page and fake_idp.CLIENT_SECRET not in page
    response = client.post(
        url,
        {
            "issuer": f"{live_server.url}/idp",
            "client_id": "renamed-client",
            "client_secret": "",
            "customer_claim": "sub",
            "scopes": "openid",
            "enabled": "on",
        },
        follow=True,
    )

    assert "discovery document answered" in response.content.decode()
    from linking.models import IdentityProvider

    provider = IdentityProvider.objects.get(bank=idp_bank)
    assert provider.client_id == "renamed-client"
    assert provider.client_secret == fake_idp.CLIENT_SECRET  # blank kept the stored one


# The provider's addresses cannot be turned against the network bankside runs in.

NOT_PUBLIC = "must be on the public internet"


@pytest.fixture
def harbour_admin(client, sign_in, settings):
    from portal.tests.factories import StaffMembershipFactory

    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = False
    cache.clear()
    integration = IntegrationFactory(bank__slug="harbour", bank__name="Harbour Bank")
    sign_in(StaffMembershipFactory(bank=integration.bank, role="admin").user)
    return integration.bank


def save_provider(client, issuer: str):
    return client.post(
        "/staff/banks/harbour/customer-sign-in/",
        {
            "issuer": issuer,
            "client_id": "harbour",
            "client_secret": "s3cret",
            "customer_claim": "sub",
            "scopes": "openid",
            "enabled": "on",
        },
        follow=True,
    )


@pytest.mark.parametrize(
    "issuer",
    [
        "https://127.0.0.1/",
        "https://localhost:5432",
        "https://10.0.0.1",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/",
        "https://[fd00::1]/",
    ],
)
def test_a_bank_admin_cannot_point_customer_sign_in_inside_the_network(
    harbour_admin, client, issuer
):
    from linking.models import IdentityProvider

    response = save_provider(client, issuer)

    assert response.status_code == 200
    (error,) = response.context["form"].errors["issuer"]
    assert NOT_PUBLIC in error
    assert not IdentityProvider.objects.exists()


def test_a_stored_provider_on_loopback_is_never_connected_to(harbour_admin, client, listener):
    from linking.models import IdentityProvider

    port = listener.getsockname()[1]
    IdentityProvider.objects.create(  # stored before the address rules existed
        bank=harbour_admin, issuer=f"https://localhost:{port}", client_id="c", client_secret="s"
    )

    page = client.post("/link/harbour/oidc/start")

    assert page.status_code == 503
    assert "Sign-in is not available right now" in page.content.decode()
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        pass
    else:
        pytest.fail("bankside connected to a loopback address")


@pytest.mark.parametrize("field", ["jwks_uri", "token_endpoint"])
@pytest.mark.parametrize(
    "address",
    [
        "https://10.0.0.1/keys",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]:5432/",
        "https://[::ffff:127.0.0.1]/",
        "https://localhost/keys",
        "http://idp.harbour.example/keys",
    ],
)
def test_a_discovery_document_pointing_inside_the_network_is_refused(
    harbour_admin, client, monkeypatch, field, address
):
    """The provider is public (played at the network boundary); its document is not."""
    import httpx

    from core import outbound

    issuer = "https://idp.harbour.example"
    document = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        field: address,
    }
    seen: list[str] = []

    def provider(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=document)
        return httpx.Response(200, json={"keys": []})

    monkeypatch.setattr(outbound, "VettedTransport", lambda: httpx.MockTransport(provider))

    response = save_provider(client, issuer)

    page = response.content.decode()
    assert f"gives a {field} that bankside does not call" in page
    assert "discovery document answered" not in page
    assert seen == [f"{issuer}/.well-known/openid-configuration"]
    assert not cache.get(f"linking:oidc:discovery:{issuer}")


def test_renewing_from_the_chat_signs_in_again_at_the_bank_then_renews(
    live_server, idp_bank, browser_http
):
    from datetime import timedelta

    from django.utils import timezone

    from linking.models import Consent, Customer

    customer = Customer.objects.get(external_id="cu-ana")
    consent = Consent.objects.create(
        bank=idp_bank,
        customer=customer,
        status=Consent.Status.AUTHORISED,
        scopes=["balances"],
        purpose="updates",
        duration_days=90,
        page_id="1",
        psid="42",
        granted_at=timezone.now(),
        expires_at=timezone.now() + timedelta(days=3),
    )
    token = services.dashboard_pass_issue(consent=consent)
    browser_http.get(f"{live_server.url}/my/harbour/pass/{token}")
    assert fake_idp.state["prompts"] == []  # the chat's pass signs in without the bank

    renew = browser_http.get(f"{live_server.url}/my/harbour/consents/{consent.pk}/renew")

    assert fake_idp.state["prompts"] == [("login", "0")]  # asked to sign in again
    assert str(renew.url) == f"{live_server.url}/my/harbour/consents/{consent.pk}/renew"
    done = browser_http.submit(renew, {})
    assert str(done.url) == f"{live_server.url}/my/harbour/?done=renewed"
    consent.refresh_from_db()
    assert consent.expires_at > timezone.now() + timedelta(days=89)
