"""Managing sharing without linking again: changing accounts and updates (a new, audited
version pointing to the words confirmed), renewing only after signing in with the bank
again, stopping only once confirmed, the chat's *Manage sharing* and its single-use
dashboard pass, and the consent texts kept once each."""

import hashlib
import json
from datetime import timedelta

import httpx
import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone

import messenger
from linking import services
from linking.models import (
    Consent,
    ConsentText,
    ConsentVersion,
    DashboardPass,
    LinkMessage,
)
from linking.tests.factories import AccountFactory, CustomerFactory, IntegrationFactory
from linking.tests.test_webhooks import envelope, post
from portal.models import AuditEvent
from portal.tests.factories import BankFactory

pytestmark = pytest.mark.django_db
TEXT = "Link Harbour Bank to Messenger? Which accounts? Everyday account •••• 4821"


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def linked():
    integration = IntegrationFactory(bank__slug="harbour", bank__name="Harbour Bank")
    customer = CustomerFactory(bank=integration.bank, directory_username="ana")
    checking = AccountFactory(customer=customer, external_id="chk", last4="4821")
    card = AccountFactory(customer=customer, external_id="visa", kind="credit_card", last4="9012")
    granted = services.consent_authorise(
        customer=customer,
        accounts=[checking, card],
        scopes=["balances", "fraud_alerts"],
        duration_days=90,
        purpose="to send you updates",
        page_id=integration.page_id,
        account_linking_token="t",
        text=TEXT,
        language="en",
    )
    services.link_bind(
        bank=integration.bank,
        page_id=integration.page_id,
        psid="777",
        authorization_code=granted.authorization_code,
    )
    consent = granted.consent
    consent.checking, consent.card = checking, card
    return consent


def actor(consent):
    return services.customer_actor(consent.customer)


def sign_in(client):
    return client.post("/link/harbour/login", {"username": "ana", "password": "open sesame 42"})


# Consent texts


def test_the_words_agreed_to_are_kept_once_and_each_consent_points_to_them(linked):
    customer = linked.customer
    again = services.consent_authorise(
        customer=customer,
        accounts=[linked.checking],
        scopes=["balances"],
        duration_days=90,
        purpose="to send you updates",
        page_id=linked.page_id,
        account_linking_token="t2",
        text=TEXT,
        language="en",
    ).consent

    (text,) = ConsentText.objects.all()
    assert text.body == TEXT and text.digest == hashlib.sha256(TEXT.encode()).hexdigest()
    assert linked.text == text and again.text == text
    (first,) = linked.versions.all()
    assert (first.number, first.text, first.scopes) == (1, text, ["balances", "fraud_alerts"])


def test_the_consent_screen_keeps_what_the_customer_read_and_chose(client, linked):
    session = client.session
    session["link_flow"] = {
        "bank": "harbour",
        "token": "t-screen",
        "redirect_uri": "https://www.facebook.com/messenger_platform/account_linking?x=1",
        "page_id": linked.page_id,
        "started_at": timezone.now().isoformat(),
        "messenger_name": "Ana S.",
    }
    session.save()
    sign_in(client)

    client.post(
        "/link/harbour/consent",
        {"decision": "allow", "accounts": [linked.card.pk], "scopes": ["fraud_alerts"]},
    )

    consent = Consent.objects.exclude(pk=linked.pk).get()
    body = consent.text.body
    assert "Link Harbour Bank to Messenger?" in body
    assert "•••• 9012" in body and "•••• 4821" not in body
    assert "Fraud alerts" in body and "Balances" not in body
    assert "<strong>" not in body and "Ana S." in body
    assert consent.versions.get().text == consent.text


# Changing what is shared


def test_changing_what_is_shared_records_a_new_audited_version(linked):
    changed = services.consent_change(
        consent=linked,
        actor=actor(linked),
        accounts=[linked.checking],
        scopes=["balances"],
        text="Change what you share: Everyday account; Balances",
        language="en",
    )

    assert changed.scopes == ["balances"]
    assert list(changed.accounts.all()) == [linked.checking]
    versions = list(ConsentVersion.objects.filter(consent=linked).order_by("number"))
    assert [v.number for v in versions] == [1, 2]
    assert versions[1].scopes == ["balances"] and list(versions[1].accounts.all()) == [
        linked.checking
    ]
    assert versions[1].text.body.startswith("Change what you share")
    assert changed.text == versions[1].text and versions[0].text.body == TEXT
    last = changed.events.last()
    assert (last.from_status, last.to_status) == ("authorised", "authorised")
    assert last.reason == "Changed what is shared (version 2)"
    (entry,) = AuditEvent.objects.filter(action="consent.changed")
    assert entry.details["scopes"] == {
        "before": ["balances", "fraud_alerts"],
        "after": ["balances"],
    }
    assert entry.details["accounts"] == {"before": ["chk", "visa"], "after": ["chk"]}
    assert entry.details["version"] == 2


def test_changing_nothing_is_refused_and_writes_nothing(linked):
    with pytest.raises(ValidationError, match="Nothing was changed"):
        services.consent_change(
            consent=linked,
            actor=actor(linked),
            accounts=[linked.card, linked.checking],
            scopes=["fraud_alerts", "balances"],
            text="same",
            language="en",
        )
    assert linked.versions.count() == 1
    assert not AuditEvent.objects.filter(action="consent.changed").exists()


def test_another_customers_account_cannot_be_added(linked):
    theirs = AccountFactory(customer__bank=linked.bank, external_id="other")
    with pytest.raises(ValidationError):
        services.consent_change(
            consent=linked,
            actor=actor(linked),
            accounts=[linked.checking, theirs],
            scopes=["balances"],
            text="x",
            language="en",
        )
    assert list(linked.accounts.order_by("pk")) == [linked.checking, linked.card]


def test_an_ended_consent_cannot_be_changed(linked):
    services.consent_revoke(consent=linked, actor=actor(linked), reason="stop")
    with pytest.raises(ValidationError, match="ended"):
        services.consent_change(
            consent=linked,
            actor=actor(linked),
            accounts=[linked.checking],
            scopes=["balances"],
            text="x",
            language="en",
        )


def test_the_change_page_saves_and_the_dashboard_timeline_shows_it(client, linked):
    sign_in(client)
    page = client.get(f"/my/harbour/consents/{linked.pk}/change").content.decode()
    assert f'value="{linked.card.pk}" checked' in page

    response = client.post(
        f"/my/harbour/consents/{linked.pk}/change",
        {"accounts": [linked.checking.pk], "scopes": ["balances"]},
    )

    assert response.status_code == 302 and response.url == "/my/harbour/?done=changed"
    dashboard = client.get(response.url).content.decode()
    assert "only what you chose is shared" in dashboard
    assert "You changed what is shared (version 2)" in dashboard
    assert "Visa card •••• 9012" not in dashboard
    linked.refresh_from_db()
    assert "Which updates? Balances" in linked.text.body


def test_the_change_page_says_what_is_wrong_and_keeps_the_choice(client, linked):
    sign_in(client)
    response = client.post(
        f"/my/harbour/consents/{linked.pk}/change", {"accounts": [], "scopes": ["balances"]}
    )
    assert response.status_code == 400
    assert "Choose at least one account" in response.content.decode()
    assert linked.versions.count() == 1


# Renewal: only after signing in with the bank again


def test_renewing_needs_a_fresh_sign_in_with_the_bank(linked):
    Consent.objects.filter(pk=linked.pk).update(expires_at=timezone.now() + timedelta(days=3))
    for when in (None, timezone.now() - timedelta(minutes=20)):
        with pytest.raises(services.ReauthenticationRequiredError):
            services.consent_renew(consent=linked, actor=actor(linked), authenticated_at=when)
    linked.refresh_from_db()
    assert linked.expires_at < timezone.now() + timedelta(days=4)

    services.consent_renew(
        consent=linked, actor=actor(linked), authenticated_at=timezone.now() - timedelta(minutes=1)
    )

    linked.refresh_from_db()
    assert linked.expires_at > timezone.now() + timedelta(days=89)
    assert AuditEvent.objects.filter(action="consent.renewed").count() == 1


def test_from_the_chats_pass_renewing_asks_for_the_banks_sign_in_first(client, linked):
    token = services.dashboard_pass_issue(consent=linked)
    assert client.get(f"/my/harbour/pass/{token}").url == "/my/harbour/"

    opened = client.get(f"/my/harbour/consents/{linked.pk}/renew")
    assert opened.status_code == 302 and opened.url == "/link/harbour/login?again=1"
    assert "sign in again" in client.get(opened.url).content.decode()
    refused = client.post(f"/my/harbour/consents/{linked.pk}/renew")
    assert refused.url == "/link/harbour/login?again=1"

    back = sign_in(client)
    assert back.url == f"/my/harbour/consents/{linked.pk}/renew"
    assert "Keep sharing until" in client.get(back.url).content.decode()
    done = client.post(back.url)

    assert done.url == "/my/harbour/?done=renewed"
    linked.refresh_from_db()
    assert linked.expires_at > timezone.now() + timedelta(days=89)


# Stopping: only once confirmed


def test_stopping_needs_the_customers_confirmation(linked):
    with pytest.raises(services.StopNotConfirmedError):
        services.consent_stop(consent=linked, actor=actor(linked), confirmed=False)
    linked.refresh_from_db()
    assert linked.status == Consent.Status.AUTHORISED

    services.consent_stop(consent=linked, actor=actor(linked), confirmed=True)
    linked.refresh_from_db()
    assert linked.status == Consent.Status.REVOKED


def test_the_stop_page_says_what_stops_and_then_confirms_it(client, linked):
    sign_in(client)
    page = client.get(f"/my/harbour/consents/{linked.pk}/stop").content.decode()
    assert "Updates not yet sent are cancelled" in page and "Everyday account •••• 4821" in page

    unconfirmed = client.post(f"/my/harbour/consents/{linked.pk}/revoke")
    assert unconfirmed.status_code == 400
    linked.refresh_from_db()
    assert linked.status == Consent.Status.AUTHORISED

    stopped = client.post(f"/my/harbour/consents/{linked.pk}/revoke", {"confirm": "stop"})
    assert stopped.url == f"/my/harbour/consents/{linked.pk}/stopped"
    assert "You have stopped sharing" in client.get(stopped.url).content.decode()
    linked.refresh_from_db()
    assert linked.status == Consent.Status.REVOKED


# The dashboard pass and tenancy


def test_a_pass_signs_in_once(client, linked):
    token = services.dashboard_pass_issue(consent=linked)

    assert client.get(f"/my/harbour/pass/{token}").url == "/my/harbour/"
    assert "Everyday account •••• 4821" in client.get("/my/harbour/").content.decode()
    client.post("/my/harbour/logout")
    again = client.get(f"/my/harbour/pass/{token}")

    assert again.status_code == 410 and "works once" in again.content.decode()
    assert client.get("/my/harbour/").status_code == 302
    assert AuditEvent.objects.filter(action="dashboard_pass.refused").count() == 1


def test_an_expired_pass_is_refused(client, linked):
    token = services.dashboard_pass_issue(
        consent=linked, now=timezone.now() - timedelta(minutes=DashboardPass.LIFETIME_MINUTES + 1)
    )
    response = client.get(f"/my/harbour/pass/{token}")
    assert response.status_code == 410
    assert client.get("/my/harbour/").status_code == 302


def test_another_banks_pass_is_refused(client, linked):
    other = BankFactory(slug="quay", name="Quay Bank")
    token = services.dashboard_pass_issue(consent=linked)

    response = client.get(f"/my/{other.slug}/pass/{token}")

    assert response.status_code == 410
    assert client.get("/my/harbour/").status_code == 302  # not signed in anywhere
    assert DashboardPass.objects.get().used_at is None


def test_another_customers_consent_pages_are_not_found(client, linked):
    other = AccountFactory(customer__bank=linked.bank, external_id="bob-acc")
    theirs = services.consent_authorise(
        customer=other.customer,
        accounts=[other],
        scopes=["balances"],
        duration_days=30,
        purpose="x",
        page_id=linked.page_id,
        account_linking_token="t-bob",
    ).consent
    sign_in(client)

    for page in ("change", "stop", "renew", "receipt", "receipt.json", "stopped"):
        assert client.get(f"/my/harbour/consents/{theirs.pk}/{page}").status_code == 404, page
    revoke = client.post(f"/my/harbour/consents/{theirs.pk}/revoke", {"confirm": "stop"})
    assert revoke.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Consent.Status.AUTHORISED


# Manage sharing from the chat


class Platform:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(json.loads(request.content))
        return httpx.Response(200, json={"recipient_id": "777", "message_id": "m_1"})


@pytest.fixture
def platform(monkeypatch):
    fake = Platform()
    client = messenger.GraphClient(
        "https://graph.test", "v27.0", transport=httpx.MockTransport(fake)
    )
    monkeypatch.setattr(messenger, "get_client", lambda: client)
    return fake


def test_manage_sharing_in_the_chat_answers_with_a_single_use_dashboard_link(
    client, linked, platform, django_capture_on_commit_callbacks
):
    integration = linked.bank.integration
    tap = {"postback": {"title": "Manage sharing", "payload": "MANAGE_SHARING", "mid": "m_tap"}}
    with django_capture_on_commit_callbacks():
        response = post(client, integration, envelope(integration, ("777", 1_767_225_600_000, tap)))
    assert response.status_code == 200
    (message,) = LinkMessage.objects.filter(kind=LinkMessage.Kind.MANAGE_LINK)

    services.link_message_attempt(actor=services.MESSAGE_SENDER, message_id=message.pk)

    (body,) = platform.sent
    assert body["recipient"] == {"id": "777"}
    template = body["message"]["attachment"]["payload"]
    assert "works once, within 10 minutes" in template["text"]
    (button,) = template["buttons"]
    assert button["type"] == "web_url" and button["title"] == "Open my dashboard"
    path = button["url"].split("://", 1)[1].split("/", 1)[1]
    assert client.get("/" + path).url == "/my/harbour/"
    assert client.get("/" + path).status_code == 410


def test_manage_sharing_from_a_chat_without_a_link_owes_nothing(client, linked):
    integration = linked.bank.integration
    tap = {"postback": {"title": "Manage sharing", "payload": "MANAGE_SHARING", "mid": "m_x"}}
    post(client, integration, envelope(integration, ("999", 1_767_225_600_000, tap)))
    assert not LinkMessage.objects.filter(kind=LinkMessage.Kind.MANAGE_LINK).exists()


def test_the_confirmation_carries_manage_sharing_and_the_reminder_renew(linked, platform):
    services.link_messages_send(
        actor=services.MESSAGE_SENDER, consent_id=linked.pk, kind=LinkMessage.Kind.CONFIRMATION
    )
    Consent.objects.filter(pk=linked.pk).update(expires_at=timezone.now() + timedelta(days=3))
    services.consents_remind_expiring()
    services.link_messages_send(
        actor=services.MESSAGE_SENDER, consent_id=linked.pk, kind=LinkMessage.Kind.EXPIRY_REMINDER
    )

    confirmation, reminder = (body["message"]["attachment"]["payload"] for body in platform.sent)
    assert confirmation["buttons"] == [
        {"type": "postback", "title": "Manage sharing", "payload": "MANAGE_SHARING"}
    ]
    renew, manage = reminder["buttons"]
    assert renew["title"] == "Renew"
    assert renew["url"].endswith(f"/my/harbour/consents/{linked.pk}/renew")
    assert manage["payload"] == "MANAGE_SHARING"
    assert "tap Renew and sign in with Harbour Bank" in reminder["text"]


def test_taps_while_the_answer_waits_share_it(client, linked, django_capture_on_commit_callbacks):
    integration = linked.bank.integration
    taps = [
        ("777", 1_767_225_600_000 + n, {"postback": {"payload": "MANAGE_SHARING", "mid": f"m{n}"}})
        for n in range(3)
    ]
    with django_capture_on_commit_callbacks():
        post(client, integration, envelope(integration, *taps))

    assert LinkMessage.objects.filter(kind=LinkMessage.Kind.MANAGE_LINK).count() == 1
    assert AuditEvent.objects.filter(action="dashboard_pass.requested").count() == 1


def test_where_no_button_can_be_sent_the_answer_names_the_dashboard(linked, platform, settings):
    settings.PUBLIC_BASE_URL = "http://bank.example"  # Messenger takes https buttons only
    message = services.manage_link_schedule(consent=linked)

    services.link_message_attempt(actor=services.MESSAGE_SENDER, message_id=message.pk)

    (body,) = platform.sent
    assert body["message"]["text"].endswith("sharing dashboard: http://bank.example/my/harbour/")
    message.refresh_from_db()
    assert message.state == LinkMessage.State.SENT
