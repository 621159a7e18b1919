"""The customer's pages through Django's test client: sign-in, dashboard, receipts."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from linking import services
from linking.models import Consent
from linking.tests.factories import AccountFactory, IntegrationFactory
from portal.models import AuditEvent, MessengerIntegration

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def linked():
    integration = IntegrationFactory(bank__slug="harbour", bank__name="Harbour Bank")
    account = AccountFactory(customer__bank=integration.bank, customer__directory_username="ana")
    granted = services.consent_authorise(
        customer=account.customer,
        accounts=[account],
        scopes=["balances"],
        duration_days=90,
        purpose="to send you updates",
        page_id=integration.page_id,
        account_linking_token="t",
    )
    services.link_bind(
        bank=integration.bank,
        page_id=integration.page_id,
        psid="777",
        authorization_code=granted.authorization_code,
    )
    return granted.consent


def sign_in(client, password="open sesame 42"):
    return client.post("/link/harbour/login", {"username": "ana", "password": password})


def test_signing_in_opens_the_dashboard(client, linked):
    assert sign_in(client).url == "/my/harbour/"

    page = client.get("/my/harbour/").content.decode()
    assert "Everyday account •••• 4821" in page and "Balances" in page
    assert "Stop sharing" in page


def test_the_dashboard_needs_a_signed_in_customer(client, linked):
    response = client.get("/my/harbour/")

    assert response.status_code == 302 and response.url == "/link/harbour/login"


def test_a_staff_session_is_not_a_customer_session(client, linked, django_user_model):
    staff = django_user_model.objects.create_superuser("root", "root@bank.example", "pw-123456789")
    client.force_login(staff)

    assert client.get("/my/harbour/").status_code == 302


def test_five_wrong_passwords_pause_sign_in(client, linked):
    for _ in range(5):
        assert sign_in(client, password="guess").status_code == 401

    blocked = sign_in(client)

    assert blocked.status_code == 429
    assert "paused for 15 minutes" in blocked.content.decode()


def test_the_consent_receipt_says_who_what_why_until_and_how_to_withdraw(client, linked):
    sign_in(client)

    response = client.get(f"/my/harbour/consents/{linked.pk}/receipt.json")

    receipt = response.json()
    assert response["Content-Disposition"].startswith("attachment")
    assert receipt["receipt_format"] == "bankside-consent-receipt/2"
    assert receipt["controller"]["name"] == "Harbour Bank"
    assert receipt["status"] == "active"
    assert receipt["updates"] == [{"type": "balances", "name": "Balances"}]
    assert receipt["accounts"] == [
        {
            "name": "Everyday account",
            "type": "current_account",
            "type_name": "Current account",
            "last4": "4821",
            "currency": "EUR",
        }
    ]
    assert "advertising" in receipt["not_used_for"]
    assert receipt["until"] == linked.expires_at.isoformat().replace("+00:00", "Z")
    assert "Manage sharing" in receipt["how_to_stop"]
    assert [h["event"] for h in receipt["history"]] == ["requested", "given"]
    assert [h["by"] for h in receipt["history"]] == ["customer", "customer"]


def test_the_export_lists_what_was_shared_under_each_consent(client, linked):
    sign_in(client)

    export = client.get("/my/harbour/shared.json").json()

    assert [r["event"] for r in export["records"]] == ["consent_given", "messenger_linked"]
    assert export["records"][-1]["data_shared"] == [{"type": "balances", "name": "Balances"}]


def test_receipts_of_other_customers_are_not_found(client, linked):
    other = AccountFactory(customer__bank=linked.bank, customer__directory_username="bob")
    theirs = services.consent_authorise(
        customer=other.customer,
        accounts=[other],
        scopes=["balances"],
        duration_days=30,
        purpose="x",
        page_id="1",
        account_linking_token="t2",
    ).consent
    sign_in(client)

    assert client.get(f"/my/harbour/consents/{theirs.pk}/receipt.json").status_code == 404


def test_a_consent_ending_soon_can_be_renewed(client, linked):
    Consent.objects.filter(pk=linked.pk).update(expires_at=timezone.now() + timedelta(days=3))
    sign_in(client)
    assert "Keep sharing for 90 more days" in client.get("/my/harbour/").content.decode()

    assert (
        "Keep sharing until"
        in client.get(f"/my/harbour/consents/{linked.pk}/renew").content.decode()
    )
    client.post(f"/my/harbour/consents/{linked.pk}/renew")

    linked.refresh_from_db()
    assert linked.expires_at > timezone.now() + timedelta(days=89)
    assert linked.events.last().reason.startswith("Renewed until")
    assert AuditEvent.objects.filter(action="consent.renewed").exists()


def test_reminders_go_once_to_linked_consents_ending_within_a_week(
    linked, django_capture_on_commit_callbacks
):
    Consent.objects.filter(pk=linked.pk).update(expires_at=timezone.now() + timedelta(days=5))

    with django_capture_on_commit_callbacks() as callbacks:
        first = services.consents_remind_expiring()
        second = services.consents_remind_expiring()

    assert (first, second) == (1, 0)
    assert len(callbacks) == 1
    linked.refresh_from_db()
    assert linked.expiry_reminded_at is not None


def test_the_consent_screen_uses_the_banks_duration_and_essential_scopes(client, linked):
    from portal.models import NotificationSettings

    NotificationSettings.objects.update_or_create(
        bank=linked.bank,
        defaults={"essential_scopes": ["fraud_alerts"], "consent_duration_days": 30},
    )
    session = client.session
    session["link_flow"] = {
        "bank": "harbour",
        "token": "t",
        "redirect_uri": "https://www.facebook.com/x",
        "page_id": "1",
        "started_at": timezone.now().isoformat(),
    }
    session.save()
    sign_in(client)

    page = client.get("/link/harbour/consent").content.decode()

    assert "30 days" in page
    assert 'value="fraud_alerts" checked' in page
    assert 'value="balances" checked' not in page


def test_the_dashboard_counts_linked_customers(linked):
    from linking.selectors import linked_customers_panel

    assert linked_customers_panel(linked.bank).value == 1
    Consent.objects.update(status=Consent.Status.REVOKED)
    assert linked_customers_panel(linked.bank) is None  # the slot shows its empty state


def test_usernames_match_whatever_the_case(client, linked):
    response = client.post("/link/harbour/login", {"username": "ANA", "password": "open sesame 42"})

    assert response.status_code == 302 and response.url == "/my/harbour/"


def test_usernames_differing_only_by_case_each_match_exactly_only(client, linked):
    from linking.tests.factories import CustomerFactory

    CustomerFactory(bank=linked.bank, directory_username="Ana", external_id="cu-other")

    wrong = client.post("/link/harbour/login", {"username": "aNa", "password": "open sesame 42"})
    assert wrong.status_code == 401
    assert sign_in(client).url == "/my/harbour/"


def test_a_wrong_password_keeps_the_username_and_every_page_leads_back_to_messenger(client, linked):
    response = client.post("/link/harbour/login", {"username": "Ana", "password": "nope"})
    page = response.content.decode()

    assert response.status_code == 401
    assert 'name="username" value="Ana"' in page
    assert 'autocapitalize="none" autocorrect="off" spellcheck="false"' in page
    assert f'href="https://m.me/{linked.page_id}"' in page
    sign_in(client)
    assert f'href="https://m.me/{linked.page_id}"' in client.get("/my/harbour/").content.decode()


def test_the_log_in_from_messenger_shows_its_time_left_then_offers_to_start_again(client, linked):
    session = client.session
    session["link_flow"] = {
        "bank": "harbour",
        "token": "t2",
        "redirect_uri": "https://www.facebook.com/x",
        "page_id": linked.page_id,
        "started_at": (timezone.now() - timedelta(minutes=2, seconds=30)).isoformat(),
    }
    session.save()
    login = client.get("/link/harbour/login").content.decode()
    assert "Finish linking within 3 minutes" in login and "data-expires-at=" in login
    sign_in(client)
    consent = client.get("/link/harbour/consent").content.decode()
    assert "Finish linking within 3 minutes" in consent
    assert "linking/countdown" in consent

    session = client.session
    session["link_flow"]["started_at"] = (timezone.now() - timedelta(minutes=6)).isoformat()
    session.save()
    expired = client.get("/link/harbour/consent")

    assert expired.status_code == 410
    page = expired.content.decode()
    assert "This Log In has expired" in page
    assert f'href="https://m.me/{linked.page_id}">Start again in Messenger' in page


def test_the_receipt_page_says_what_from_which_accounts_to_whom_and_how_to_stop(client, linked):
    from portal.models import Bank

    Bank.objects.filter(pk=linked.bank_id).update(
        support_email="privacy@harbour.example", support_phone="+33 1 23 45 67 89"
    )
    sign_in(client)

    page = client.get(f"/my/harbour/consents/{linked.pk}/receipt").content.decode()

    assert "Consent receipt" in page
    assert "Balances" in page and "Everyday account •••• 4821" in page
    assert "Messenger, operated by Meta Platforms" in page
    assert "privacy@harbour.example" in page and "+33 1 23 45 67 89" in page
    assert "Manage sharing" in page and "You allowed sharing" in page
    assert f"/my/harbour/consents/{linked.pk}/receipt.json" in page


def test_the_data_download_page_lists_each_consent_and_what_was_recorded(client, linked):
    sign_in(client)

    page = client.get("/my/harbour/shared").content.decode()

    assert "Your data shared with Messenger" in page
    assert "Your Messenger conversation was linked" in page
    assert "/my/harbour/shared.json" in page
    assert f"/my/harbour/consents/{linked.pk}/receipt" in page


def test_the_receipt_pages_need_a_signed_in_customer(client, linked):
    for url in (f"/my/harbour/consents/{linked.pk}/receipt", "/my/harbour/shared"):
        assert client.get(url).url == "/link/harbour/login"


LOG_IN_RETURN = (
    "https://www.facebook.com/messenger_platform/account_linking?account_linking_token=t2"
)


def consent_screen(client, linked):
    """A second Log In from Messenger, signed in: the consent screen's address."""
    opened = client.get(
        "/link/harbour/", {"account_linking_token": "t2", "redirect_uri": LOG_IN_RETURN}
    )
    assert opened.status_code == 302, opened.content.decode()
    sign_in(client)
    return "/link/harbour/consent"


def test_allowing_no_account_shows_the_consent_screen_again_with_the_reason(client, linked):
    screen = consent_screen(client, linked)

    again = client.post(screen, {"decision": "allow", "scopes": ["fraud_alerts"]})

    page = again.content.decode()
    assert again.status_code == 400
    assert "Choose at least one account to share." in page
    assert 'value="fraud_alerts" checked' in page and 'value="balances" checked' not in page
    assert "https://www.facebook.com" in again.headers["Content-Security-Policy"]
    assert Consent.objects.filter(status=Consent.Status.AUTHORISED).count() == 1  # linked's


def test_an_answer_other_than_allow_or_deny_is_asked_for_again(client, linked):
    screen = consent_screen(client, linked)

    answer = client.post(screen, {"decision": "later"})

    assert answer.status_code == 400
    assert "Please choose Allow or Deny." in answer.content.decode()


def test_log_in_at_a_bank_that_paused_its_updates_links_nothing(client, linked):
    MessengerIntegration.objects.filter(bank=linked.bank).update(
        status=MessengerIntegration.Status.PAUSED
    )

    opened = client.get(
        "/link/harbour/", {"account_linking_token": "t2", "redirect_uri": LOG_IN_RETURN}
    )

    assert opened.status_code == 503
    assert "Harbour Bank has paused Messenger updates." in opened.content.decode()
