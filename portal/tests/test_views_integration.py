import httpx
import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import escape

from messenger import BadTokenError, GraphClient, TransientError
from portal import services
from portal.audit import Actor
from portal.models import AuditEvent, MessengerIntegration, StaffMembership
from portal.tests.factories import BankFactory, StaffMembershipFactory, integration_for
from portal.views import integration as integration_views

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role
Status = MessengerIntegration.Status
PAGE_ID = "1234567890"


def graph_answering(monkeypatch, handler) -> list[httpx.Request]:
    """Make the views' Graph client answer through `handler`; returns the requests seen."""
    seen: list[httpx.Request] = []

    def transport(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = GraphClient("https://graph.example", "v27.0", transport=httpx.MockTransport(transport))
    monkeypatch.setattr(integration_views, "graph_client", lambda: client)
    return seen


def page_found(request):
    if request.url.path.endswith("/subscribed_apps"):
        return httpx.Response(200, json={"success": True})
    return httpx.Response(200, json={"id": PAGE_ID, "name": "Harbour Bank Help"})


def bad_token(request):
    return httpx.Response(
        400,
        json={
            "error": {
                "message": "Error validating access token",
                "code": 190,
                "type": "OAuthException",
            }
        },
    )


def graph_down(request):
    return httpx.Response(500, json={"error": {"message": "Service unavailable", "code": 2}})


@pytest.fixture
def operator(sign_in):
    member = StaffMembershipFactory(role=Role.OPERATOR, bank=BankFactory(slug="harbour"))
    integration_for(member.bank, page_id=PAGE_ID)
    return sign_in(member.user), member.bank


def url(name, bank):
    return reverse(f"portal:{name}", kwargs={"bank": bank.slug})


def status_of(bank) -> str:
    return MessengerIntegration.objects.get(bank=bank).status


def test_a_successful_check_verifies_and_shows_the_page_name(operator, monkeypatch):
    client, bank = operator
    seen = graph_answering(monkeypatch, page_found)

    response = client.post(url("integration_check", bank), follow=True)

    page = response.content.decode()
    assert "Connected to Harbour Bank Help" in page
    assert status_of(bank) == Status.VERIFIED
    assert seen[0].url.path == f"/v27.0/{PAGE_ID}"
    assert "appsecret_proof" in seen[0].url.params


def test_a_bad_token_pauses_the_integration_with_the_reason_on_the_dashboard(operator, monkeypatch):
    client, bank = operator
    graph_answering(monkeypatch, bad_token)

    response = client.post(url("integration_check", bank), follow=True)

    reason = escape(BadTokenError.default_user_message)
    assert reason in response.content.decode()
    integration = MessengerIntegration.objects.get(bank=bank)
    assert integration.status == Status.PAUSED
    assert integration.status_reason == BadTokenError.default_user_message
    dashboard = client.get(url("dashboard", bank)).content.decode()
    assert "Paused:" in dashboard and reason in dashboard


def test_a_transient_error_is_shown_and_changes_nothing(operator, monkeypatch):
    client, bank = operator
    graph_answering(monkeypatch, graph_down)

    response = client.post(url("integration_check", bank), follow=True)

    assert escape(TransientError.default_user_message) in response.content.decode()
    assert status_of(bank) == Status.DRAFT


def test_go_live_is_offered_only_once_verified(operator, monkeypatch):
    client, bank = operator
    graph_answering(monkeypatch, page_found)

    refused = client.post(url("integration_go_live", bank), follow=True)
    client.post(url("integration_check", bank))
    client.post(url("integration_go_live", bank))

    assert "Only a verified integration can go live" in refused.content.decode()
    assert status_of(bank) == Status.LIVE


def test_going_live_subscribes_the_page_to_its_echoes(operator, monkeypatch):
    client, bank = operator

    def page_and_subscription(request):
        if request.url.path.endswith("/subscribed_apps"):
            return httpx.Response(200, json={"success": True})
        return page_found(request)

    seen = graph_answering(monkeypatch, page_and_subscription)
    client.post(url("integration_check", bank))
    client.post(url("integration_go_live", bank))

    (subscribe,) = [r for r in seen if r.url.path.endswith("/subscribed_apps")]
    assert subscribe.method == "POST"
    assert (
        subscribe.url.path == f"/{settings.MESSENGER_GRAPH_API_VERSION}/{PAGE_ID}/subscribed_apps"
    )
    fields = subscribe.url.params["subscribed_fields"].split(",")
    assert "message_echoes" in fields and "messages" in fields
    assert AuditEvent.objects.filter(action="integration.subscribed").count() == 1


def test_pause_and_resume_return_a_live_integration_to_live(operator, monkeypatch):
    client, bank = operator
    graph_answering(monkeypatch, page_found)
    client.post(url("integration_check", bank))
    client.post(url("integration_go_live", bank))

    client.post(url("integration_pause", bank), {"reason": "Incident 1432"})
    paused = MessengerIntegration.objects.get(bank=bank)
    client.post(url("integration_resume", bank))

    assert (paused.status, paused.status_reason) == (Status.PAUSED, "Incident 1432")
    assert status_of(bank) == Status.LIVE


def test_resume_stays_paused_while_the_token_is_still_bad(operator, monkeypatch):
    client, bank = operator
    graph_answering(monkeypatch, bad_token)
    client.post(url("integration_check", bank))

    response = client.post(url("integration_resume", bank), follow=True)

    assert "Still paused" in response.content.decode()
    assert status_of(bank) == Status.PAUSED


def test_the_overview_shows_the_webhook_and_log_in_urls(operator, settings):
    client, bank = operator

    page = client.get(url("integration", bank)).content.decode()

    assert f"{settings.PUBLIC_BASE_URL}/webhooks/messenger/harbour/" in page
    assert f"{settings.PUBLIC_BASE_URL}/link/harbour/" in page


def subscriptions(seen) -> list[str]:
    return [
        r.url.params["subscribed_fields"]
        for r in seen
        if r.method == "POST" and r.url.path == f"/v27.0/{PAGE_ID}/subscribed_apps"
    ]


def test_going_live_shows_the_subscription_and_a_check_renews_it(operator, monkeypatch):
    client, bank = operator
    seen = graph_answering(monkeypatch, page_found)
    before = client.get(url("integration", bank)).content.decode()
    client.post(url("integration_check", bank))

    client.post(url("integration_go_live", bank))
    page = client.get(url("integration", bank)).content.decode()
    checked = client.post(url("integration_check", bank), follow=True).content.decode()

    assert "not subscribed to webhooks yet" in before
    fields = services.SUBSCRIBED_FIELDS
    assert subscriptions(seen) == [",".join(fields)] * 2
    assert all(f"<code>{field}</code>" in page for field in fields)
    operator_name = MessengerIntegration.objects.get(bank=bank).subscribed_by
    assert operator_name and f"by {operator_name}" in page
    assert "subscribed again" in checked
    entries = AuditEvent.objects.filter(bank=bank, action="integration.subscribed")
    assert [e.actor_label for e in entries] == [operator_name, operator_name]


def test_going_live_is_refused_while_the_page_cannot_be_subscribed(operator, monkeypatch):
    client, bank = operator

    def no_permission(request):
        if request.url.path.endswith("/subscribed_apps"):
            return httpx.Response(
                400, json={"error": {"code": 200, "message": "(#200) Permissions error"}}
            )
        return page_found(request)

    graph_answering(monkeypatch, no_permission)
    client.post(url("integration_check", bank))

    response = client.post(url("integration_go_live", bank), follow=True)

    assert "could not be subscribed to webhooks" in response.content.decode()
    assert status_of(bank) == Status.VERIFIED


# Credentials (admins)


@pytest.fixture
def admin(sign_in):
    member = StaffMembershipFactory(role=Role.ADMIN, bank=BankFactory(slug="harbour"))
    return sign_in(member.user), member.bank


def save_credentials(client, bank, **fields):
    data = {"page_id": PAGE_ID, "page_access_token": "", "app_secret": "", "callback_url": ""}
    data.update(fields)
    return client.post(url("integration_credentials", bank), data, follow=True)


def test_first_credentials_need_the_token_and_the_secret(admin):
    client, bank = admin

    response = save_credentials(client, bank)

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not MessengerIntegration.objects.filter(bank=bank).exists()


def test_saved_secrets_are_shown_masked(admin):
    client, bank = admin
    token = "EAAG-very-secret-page-token-3f2a"

    response = save_credentials(client, bank, page_access_token=token, app_secret="s" * 32)

    page = response.content.decode()
    assert "••••••3f2a" in page
    assert token not in page


def test_a_blank_secret_on_edit_keeps_the_stored_one(admin):
    client, bank = admin
    save_credentials(client, bank, page_access_token="token-one-0123456789", app_secret="a" * 32)

    save_credentials(client, bank, page_access_token="", app_secret="b" * 32)

    integration = MessengerIntegration.objects.get(bank=bank)
    assert integration.page_access_token == "token-one-0123456789"
    assert integration.app_secret == "b" * 32


def test_the_app_id_is_kept_and_must_be_digits(admin):
    client, bank = admin
    save_credentials(client, bank, page_access_token="t" * 20, app_secret="a" * 32)

    refused = save_credentials(client, bank, app_id="my-app")
    save_credentials(client, bank, app_id="1517776481860111")

    assert "An App ID is all digits." in refused.content.decode()
    assert MessengerIntegration.objects.get(bank=bank).app_id == "1517776481860111"


def test_the_signing_secret_is_shown_once_when_generated(admin):
    client, bank = admin

    first = save_credentials(client, bank, page_access_token="t" * 20, app_secret="a" * 32)
    again = client.get(url("integration_credentials", bank))

    secret = MessengerIntegration.objects.get(bank=bank).callback_signing_secret
    assert secret.startswith("whsec_")
    assert secret in first.content.decode()
    assert secret not in again.content.decode()


NOT_HTTPS = "The address must start with https:// and name a host."
NOT_PUBLIC = (
    "The address must be on the public internet: bankside does not call loopback, "
    "private, link-local or reserved addresses."
)


@pytest.mark.parametrize(
    ("callback_url", "error"),
    [
        ("http://127.0.0.1:5432/", NOT_HTTPS),
        ("https://10.0.0.1/", NOT_PUBLIC),
        ("https://169.254.169.254/latest/meta-data", NOT_PUBLIC),
        ("https://[::1]/", NOT_PUBLIC),
        ("https://localhost/", NOT_PUBLIC),
        ("https://[::ffff:192.168.1.1]/hook", NOT_PUBLIC),
        ("https://100.64.0.1/", NOT_PUBLIC),
    ],
)
def test_a_callback_url_inside_the_network_is_refused(admin, callback_url, error):
    client, bank = admin
    save_credentials(
        client,
        bank,
        page_access_token="t" * 20,
        app_secret="a" * 32,
        callback_url="https://core.harbour.example/callbacks",
    )

    response = save_credentials(client, bank, callback_url=callback_url)

    assert response.status_code == 200
    assert response.context["form"].errors["callback_url"] == [error]
    stored = MessengerIntegration.objects.get(bank=bank).callback_url
    assert stored == "https://core.harbour.example/callbacks"


def test_rotating_the_signing_secret_shows_the_new_one_once(admin):
    client, bank = admin
    save_credentials(client, bank, page_access_token="t" * 20, app_secret="a" * 32)
    old = MessengerIntegration.objects.get(bank=bank).callback_signing_secret

    shown = client.post(
        url("signing_secret_rotate", bank), {"overlap": "0"}, follow=True
    ).content.decode()
    later = client.get(url("integration_credentials", bank)).content.decode()

    new = MessengerIntegration.objects.get(bank=bank).callback_signing_secret
    assert new != old
    assert new in shown
    assert new not in later


def test_the_verify_token_is_shown_for_meta_s_dashboard(admin):
    client, bank = admin
    save_credentials(client, bank, page_access_token="t" * 20, app_secret="a" * 32)

    page = client.get(url("integration_credentials", bank)).content.decode()

    assert MessengerIntegration.objects.get(bank=bank).verify_token in page


def test_new_credentials_send_a_live_integration_back_to_draft(admin, monkeypatch):
    client, bank = admin
    graph_answering(monkeypatch, page_found)
    save_credentials(client, bank, page_access_token="t" * 20, app_secret="a" * 32)
    client.post(url("integration_check", bank))
    client.post(url("integration_go_live", bank))

    save_credentials(client, bank, page_access_token="u" * 20)

    assert status_of(bank) == Status.DRAFT


def test_a_non_numeric_page_id_is_refused(admin):
    client, bank = admin

    response = save_credentials(
        client, bank, page_id="harbour", page_access_token="t" * 20, app_secret="a" * 32
    )

    assert "A Page ID is all digits." in response.content.decode()
    assert not MessengerIntegration.objects.filter(bank=bank).exists()


PAGE_TAKEN = "This Page is already connected to another bank"


def test_another_bank_s_page_id_is_refused_with_a_clear_error(admin):
    client, bank = admin
    other = integration_for(BankFactory(slug="riverside"), page_id="5550001111")
    save_credentials(client, bank, page_access_token="t" * 20, app_secret="a" * 32)

    response = save_credentials(client, bank, page_id=other.page_id)

    assert response.status_code == 200
    assert PAGE_TAKEN in response.content.decode()
    assert MessengerIntegration.objects.get(bank=bank).page_id == PAGE_ID
    assert MessengerIntegration.objects.get(pk=other.pk).page_id == "5550001111"


def test_first_credentials_naming_another_bank_s_page_are_refused(admin):
    client, bank = admin
    other = integration_for(BankFactory(slug="riverside"), page_id="5550001111")

    response = save_credentials(
        client, bank, page_id=other.page_id, page_access_token="t" * 20, app_secret="a" * 32
    )

    assert PAGE_TAKEN in response.content.decode()
    assert not MessengerIntegration.objects.filter(bank=bank).exists()


# The Page's Send API limit (admins)

RATE_REFUSED = (
    "Enter a whole number of calls per second from 1 to 300: Meta allows at most 300 "
    "Send API calls per second per Page."
)


def rate_changes(bank) -> list[dict]:
    return [
        event.details
        for event in AuditEvent.objects.filter(bank=bank, action="integration.configured")
        if "send_rate_limit" in event.details["fields_changed"]
    ]


def test_the_send_rate_is_300_by_default_and_shown_with_its_help(admin):
    client, bank = admin
    save_credentials(client, bank, page_access_token="t" * 20, app_secret="a" * 32)

    page = client.get(url("integration_credentials", bank)).content.decode()

    assert MessengerIntegration.objects.get(bank=bank).send_rate_limit == 300
    assert "Send API calls per second" in page
    assert escape("Meta allows 300; set less if other systems send from this Page.") in page
    assert 'name="send_rate_limit" value="300"' in page


def test_an_admin_lowers_the_send_rate_and_the_audit_log_records_it(admin, monkeypatch):
    client, bank = admin
    graph_answering(monkeypatch, page_found)
    save_credentials(client, bank, page_access_token="t" * 20, app_secret="a" * 32)
    client.post(url("integration_check", bank))
    client.post(url("integration_go_live", bank))

    response = save_credentials(client, bank, send_rate_limit="120")

    integration = MessengerIntegration.objects.get(bank=bank)
    assert integration.send_rate_limit == 120
    assert integration.status == Status.LIVE  # not a credential: the Page keeps sending
    assert 'name="send_rate_limit" value="120"' in response.content.decode()
    assert rate_changes(bank) == [
        {"page_id": PAGE_ID, "fields_changed": ["send_rate_limit"], "send_rate_limit": [300, 120]}
    ]


def test_a_blank_send_rate_keeps_the_stored_one(admin):
    client, bank = admin
    save_credentials(client, bank, page_access_token="t" * 20, app_secret="a" * 32)
    save_credentials(client, bank, send_rate_limit="50")

    save_credentials(client, bank, send_rate_limit="", callback_url="https://core.example/cb")

    assert MessengerIntegration.objects.get(bank=bank).send_rate_limit == 50


@pytest.mark.parametrize("value", ["0", "301", "-5", "fast", "1.5"])
def test_a_send_rate_outside_1_to_300_is_refused_and_nothing_is_written(admin, value):
    client, bank = admin
    save_credentials(client, bank, page_access_token="t" * 20, app_secret="a" * 32)
    before = AuditEvent.objects.count()

    response = save_credentials(
        client, bank, send_rate_limit=value, callback_url="https://core.example/cb"
    )

    assert response.status_code == 200
    assert response.context["form"].errors["send_rate_limit"] == [RATE_REFUSED]
    integration = MessengerIntegration.objects.get(bank=bank)
    assert (integration.send_rate_limit, integration.callback_url) == (300, "")
    assert AuditEvent.objects.count() == before


def test_the_service_refuses_a_send_rate_above_the_platform_s(admin):
    client, bank = admin
    save_credentials(client, bank, page_access_token="t" * 20, app_secret="a" * 32)
    before = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as refused:
        services.integration_configure(
            actor=Actor.system("test"), bank=bank, page_id=PAGE_ID, send_rate_limit=301
        )

    assert refused.value.message_dict == {"send_rate_limit": [RATE_REFUSED]}
    assert MessengerIntegration.objects.get(bank=bank).send_rate_limit == 300
    assert AuditEvent.objects.count() == before


def test_an_operator_cannot_change_the_send_rate(operator):
    client, bank = operator
    before = AuditEvent.objects.count()

    response = client.post(
        url("integration_credentials", bank), {"page_id": PAGE_ID, "send_rate_limit": "10"}
    )

    assert response.status_code == 403
    assert MessengerIntegration.objects.get(bank=bank).send_rate_limit == 300
    assert AuditEvent.objects.count() == before
