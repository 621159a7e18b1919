"""Linking from the bank's own channel: the invitation's consent screen, then the m.me
link's ref, brought to the Page in an existing thread (`messaging_referrals`) or a new one
(*Get Started*), posted as signed webhooks to the real endpoint.

The platform is faked at the messenger client boundary and records what reached the
Send API; the database is real.
"""

import hashlib
import hmac
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.utils import timezone

import messenger
from linking import services, tasks
from linking.models import Consent, LinkingFlows, LinkInvitation
from linking.tests.factories import AccountFactory, CustomerFactory, IntegrationFactory
from portal.audit import Actor
from portal.models import AuditEvent, MessengerIntegration
from portal.tests.factories import BankFactory

pytestmark = pytest.mark.django_db

PAGE_ID = "1122334455"
ANA_PSID = "24681357902468"
STRANGER_PSID = "13579246801357"
CORE = Actor("api_key", "1", "Core banking")


class Platform:
    """Messenger at the client boundary: every Send API call succeeds and is recorded."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if "message" not in body:  # the unlink API
            return httpx.Response(200, json={"result": "unlink account success"})
        message = body["message"]
        text = message.get("text") or message["attachment"]["payload"]["text"]
        self.sent.append((body["recipient"]["id"], text))
        answer = {"recipient_id": body["recipient"]["id"], "message_id": "m_1"}
        return httpx.Response(200, json=answer)

    def to(self, psid: str) -> list[str]:
        return [text for recipient, text in self.sent if recipient == psid]


@pytest.fixture
def platform(monkeypatch):
    fake = Platform()
    client = messenger.GraphClient(
        "https://graph.test", "v27.0", transport=httpx.MockTransport(fake)
    )
    monkeypatch.setattr(messenger, "get_client", lambda: client)
    yield fake
    client.close()


@pytest.fixture
def nudges(monkeypatch, platform):
    """The nudges after a commit run at once, in this thread, as a worker would run them."""
    monkeypatch.setattr(
        tasks.send_link_confirmation, "delay", lambda pk: tasks.send_link_confirmation(pk)
    )
    monkeypatch.setattr(
        tasks.send_referral_refusal, "delay", lambda *args: tasks.send_referral_refusal(*args)
    )


@pytest.fixture
def harbour():
    bank = BankFactory(slug="harbour", name="Harbour Bank")
    IntegrationFactory(bank=bank, page_id=PAGE_ID)
    return bank


@pytest.fixture
def ana(harbour):
    customer = CustomerFactory(bank=harbour, external_id="cu-ana", name="Ana Souza")
    AccountFactory(customer=customer, external_id="chk-001", name="Everyday", last4="4821")
    return customer


def open_invitation(client, customer) -> str:
    """The bank's app opens a fresh invitation: the consent screen's address."""
    issued = services.link_invitation_issue(actor=CORE, customer=customer)
    response = client.get(urlsplit(issued.url).path)
    assert response.status_code == 302
    return response["Location"]


def allow(client, customer) -> str:
    """The customer allows their first account's balances: the m.me link they are sent to."""
    consent_page = open_invitation(client, customer)
    account = customer.accounts.first()
    response = client.post(
        consent_page, {"decision": "allow", "accounts": [account.pk], "scopes": ["balances"]}
    )
    assert response.status_code == 302, response.content
    return response["Location"]


def ref_of(m_me_url: str) -> str:
    return parse_qs(urlsplit(m_me_url).query)["ref"][0]


def post_webhook(client, item: dict, *, page_id: str = PAGE_ID, slug: str = "harbour"):
    integration = MessengerIntegration.objects.get(bank__slug=slug)
    body = {
        "object": "page",
        "entry": [
            {
                "id": page_id,
                "time": 1,
                "messaging": [
                    {
                        "recipient": {"id": page_id},
                        "timestamp": int(timezone.now().timestamp() * 1000),
                        **item,
                    }
                ],
            }
        ],
    }
    raw = json.dumps(body).encode()
    signature = hmac.new(integration.app_secret.encode(), raw, hashlib.sha256).hexdigest()
    response = client.post(
        f"/webhooks/messenger/{slug}/",
        data=raw,
        content_type="application/json",
        headers={"X-Hub-Signature-256": "sha256=" + signature},
    )
    assert response.status_code == 200
    return response


def existing_thread(psid: str, ref: str, **referral) -> dict:
    """Someone with a thread already opens the m.me link: `messaging_referrals`."""
    return {
        "sender": {"id": psid},
        "referral": {"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD", **referral},
    }


def new_thread(psid: str, ref: str) -> dict:
    """Someone new opens the m.me link and taps Get Started: the postback carries it."""
    return {
        "sender": {"id": psid},
        "postback": {
            "mid": "m_get_started",
            "title": "Get Started",
            "payload": "GET_STARTED",
            "referral": {"ref": ref, "source": "SHORT-URL", "type": "OPEN_THREAD"},
        },
    }


def bring(client, item, django_capture_on_commit_callbacks, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(client, item, **kwargs)


# The consent screen


def test_allow_sends_the_customer_to_the_banks_page_with_a_fresh_ref(client, ana):
    m_me = allow(client, ana)

    parts = urlsplit(m_me)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "m.me", f"/{PAGE_ID}")
    ref = ref_of(m_me)
    assert ref.startswith("link_") and len(ref) >= len("link_") + 32  # 24 random bytes
    consent = Consent.objects.get(customer=ana)
    assert (consent.status, consent.psid, consent.scopes) == ("authorised", "", ["balances"])
    assert [e.reason for e in consent.events.all()] == [
        "Invitation from the bank's app",
        "Allowed on the consent screen",
    ]


def test_the_ref_is_stored_only_as_a_keyed_digest_bound_to_the_page(client, ana):
    ref = ref_of(allow(client, ana))

    invitation = LinkInvitation.objects.get()
    assert invitation.ref_digest == LinkInvitation.ref_digest_of(ref)
    assert not LinkInvitation.objects.filter(ref_digest__contains=ref).exists()
    assert invitation.page_id == PAGE_ID
    assert timedelta(hours=23) < invitation.ref_expires_at - timezone.now() <= timedelta(hours=24)


def test_the_refs_lifetime_is_a_setting(client, ana, settings):
    settings.LINK_INVITATION_REF_HOURS = 2

    allow(client, ana)

    left = LinkInvitation.objects.get().ref_expires_at - timezone.now()
    assert timedelta(hours=1) < left <= timedelta(hours=2)


def test_the_consent_screen_is_the_one_log_in_shows(client, ana):
    page = client.get(open_invitation(client, ana)).content.decode()

    assert "Link Harbour Bank to Messenger?" in page
    assert "Which accounts?" in page and "Which updates?" in page
    assert "nothing beyond these updates" in page or "never used for" in page
    assert "Tap Log Out" not in page  # no Log Out button where Log In is unavailable


def test_deny_shares_nothing_and_mints_no_ref(client, ana):
    response = client.post(open_invitation(client, ana), {"decision": "deny"})

    assert response.status_code == 200
    assert "Nothing was shared" in response.content.decode()
    assert Consent.objects.get(customer=ana).status == "rejected"
    assert LinkInvitation.objects.get().ref_digest is None


def test_the_consent_screen_answers_once(client, ana):
    consent_page = open_invitation(client, ana)
    account = ana.accounts.first()
    choice = {"decision": "allow", "accounts": [account.pk], "scopes": ["balances"]}
    client.post(consent_page, choice)

    again = client.post(consent_page, choice)

    assert again.status_code in {400, 410}
    assert Consent.objects.filter(customer=ana).count() == 1


def test_an_invitation_that_expires_on_the_consent_screen_cannot_allow(client, ana):
    consent_page = open_invitation(client, ana)
    LinkInvitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    account = ana.accounts.first()

    response = client.post(
        consent_page, {"decision": "allow", "accounts": [account.pk], "scopes": ["balances"]}
    )

    assert response.status_code == 410
    assert not Consent.objects.exists()


def test_the_consent_screen_without_an_invitation_shares_nothing(client, ana):
    response = client.post(
        "/link/harbour/invitation", {"decision": "allow", "scopes": ["balances"]}
    )

    assert "Start from your bank" in response.content.decode()
    assert not Consent.objects.exists()


def test_every_step_is_audited_with_its_actor(client, ana, django_capture_on_commit_callbacks):
    ref = ref_of(allow(client, ana))
    bring(client, existing_thread(ANA_PSID, ref), django_capture_on_commit_callbacks)

    actors = list(
        AuditEvent.objects.filter(bank=ana.bank).order_by("pk").values_list("action", "actor_type")
    )
    assert actors == [
        ("link_invitation.issued", "api_key"),
        ("link_invitation.opened", "customer"),
        ("consent.authorised", "customer"),
        ("link.bound", "platform"),
    ]
    bound = AuditEvent.objects.get(action="link.bound")
    assert bound.details["via"] == "m.me invitation"


# The ref brought to the Page


def test_an_existing_thread_links_and_the_bank_confirms_in_the_chat(
    client, ana, nudges, platform, django_capture_on_commit_callbacks
):
    ref = ref_of(allow(client, ana))

    bring(client, existing_thread(ANA_PSID, ref), django_capture_on_commit_callbacks)

    consent = Consent.objects.get(customer=ana)
    assert (consent.psid, consent.page_id, consent.is_linked) == (ANA_PSID, PAGE_ID, True)
    (confirmation,) = platform.to(ANA_PSID)
    assert confirmation.startswith("You're linked to Harbour Bank.")
    assert "Everyday •••• 4821" in confirmation
    assert "Log Out" not in confirmation
    assert "/my/harbour/" in confirmation


def test_a_new_thread_links_through_get_started(
    client, ana, nudges, platform, django_capture_on_commit_callbacks
):
    ref = ref_of(allow(client, ana))

    bring(client, new_thread(ANA_PSID, ref), django_capture_on_commit_callbacks)

    assert Consent.objects.get(customer=ana).psid == ANA_PSID
    assert platform.to(ANA_PSID)[0].startswith("You're linked to Harbour Bank.")


def test_a_referral_without_a_source_links_as_people_in_europe_send_it(
    client, ana, django_capture_on_commit_callbacks
):
    ref = ref_of(allow(client, ana))
    item = {"sender": {"id": ANA_PSID}, "referral": {"ref": ref, "type": "OPEN_THREAD"}}

    bring(client, item, django_capture_on_commit_callbacks)

    assert Consent.objects.get(customer=ana).psid == ANA_PSID


def test_the_referral_opens_the_24_hour_window(client, ana, django_capture_on_commit_callbacks):
    from linking.models import Contact

    ref = ref_of(allow(client, ana))

    bring(client, existing_thread(ANA_PSID, ref), django_capture_on_commit_callbacks)

    assert Contact.objects.filter(psid=ANA_PSID, page_id=PAGE_ID).exists()


def test_a_second_person_with_the_same_ref_is_refused_politely(
    client, ana, nudges, platform, django_capture_on_commit_callbacks
):
    ref = ref_of(allow(client, ana))
    bring(client, existing_thread(ANA_PSID, ref), django_capture_on_commit_callbacks)

    bring(client, new_thread(STRANGER_PSID, ref), django_capture_on_commit_callbacks)

    consent = Consent.objects.get(customer=ana)
    assert (consent.psid, consent.status) == (ANA_PSID, "authorised")
    assert not Consent.objects.filter(psid=STRANGER_PSID).exists()
    (refusal,) = platform.to(STRANGER_PSID)
    assert refusal.startswith("Sorry, this link was already used")
    assert "Nothing was shared" in refusal
    assert "Ana" not in refusal and "4821" not in refusal
    refused = AuditEvent.objects.get(action="link.refused")
    assert refused.details["reason"] == "m.me ref was already used by another person"
    assert refused.actor_type == "platform"
    assert AuditEvent.objects.filter(action="link.refusal_sent").count() == 1


def test_the_same_person_bringing_the_ref_again_changes_nothing(
    client, ana, nudges, platform, django_capture_on_commit_callbacks
):
    ref = ref_of(allow(client, ana))
    bring(client, existing_thread(ANA_PSID, ref), django_capture_on_commit_callbacks)

    bring(client, existing_thread(ANA_PSID, ref), django_capture_on_commit_callbacks)

    assert len(platform.to(ANA_PSID)) == 1  # the one confirmation, no refusal
    assert not AuditEvent.objects.filter(action="link.refused").exists()
    assert AuditEvent.objects.filter(action="link.bound").count() == 1


def test_an_expired_ref_is_refused_politely(
    client, ana, nudges, platform, django_capture_on_commit_callbacks
):
    ref = ref_of(allow(client, ana))
    LinkInvitation.objects.update(ref_expires_at=timezone.now() - timedelta(seconds=1))

    bring(client, existing_thread(ANA_PSID, ref), django_capture_on_commit_callbacks)

    assert Consent.objects.get(customer=ana).psid == ""
    (refusal,) = platform.to(ANA_PSID)
    assert "this link has expired" in refusal
    assert AuditEvent.objects.get(action="link.refused").details["reason"] == (
        "m.me ref has expired"
    )


def test_a_ref_issued_for_another_page_is_refused(
    client, ana, nudges, platform, django_capture_on_commit_callbacks
):
    ref = ref_of(allow(client, ana))
    # The bank connected another Page since the ref was issued for the first one.
    MessengerIntegration.objects.filter(bank=ana.bank).update(page_id="5566778899")

    bring(
        client,
        existing_thread(ANA_PSID, ref),
        django_capture_on_commit_callbacks,
        page_id="5566778899",
    )

    assert Consent.objects.get(customer=ana).psid == ""
    assert platform.to(ANA_PSID)[0].startswith("Sorry, this link can't link an account here.")
    assert AuditEvent.objects.get(action="link.refused").details["reason"] == (
        "m.me ref was issued for another Page"
    )


def test_another_banks_ref_is_refused_on_this_banks_page(
    client, ana, nudges, platform, django_capture_on_commit_callbacks
):
    rival = BankFactory(slug="rival", name="Rival Bank")
    IntegrationFactory(bank=rival, page_id="9988776655")
    rival_customer = CustomerFactory(bank=rival, external_id="cu-rival")
    AccountFactory(customer=rival_customer)
    ref = ref_of(allow(client, rival_customer))

    bring(client, existing_thread(ANA_PSID, ref), django_capture_on_commit_callbacks)

    assert not Consent.objects.filter(psid=ANA_PSID).exists()
    assert LinkInvitation.objects.get(bank=rival).bound_at is None
    refused = AuditEvent.objects.get(action="link.refused")
    assert (refused.bank_id, refused.details["reason"]) == (ana.bank_id, "unknown m.me ref")


def test_a_ref_whose_consent_was_withdrawn_is_refused(
    client, ana, django_capture_on_commit_callbacks
):
    ref = ref_of(allow(client, ana))
    consent = Consent.objects.get(customer=ana)
    services.consent_revoke(consent=consent, actor=CORE, reason="Changed their mind")

    bring(client, existing_thread(ANA_PSID, ref), django_capture_on_commit_callbacks)

    assert Consent.objects.get(customer=ana).psid == ""
    assert AuditEvent.objects.get(action="link.refused").details["reason"] == ("consent is revoked")


def test_a_ref_that_is_not_an_invitations_is_left_alone(
    client, ana, nudges, platform, django_capture_on_commit_callbacks
):
    bring(client, existing_thread(ANA_PSID, "spring-campaign"), django_capture_on_commit_callbacks)

    assert platform.sent == []
    assert not AuditEvent.objects.filter(action="link.refused").exists()


def test_a_made_up_ref_of_our_shape_is_refused(
    client, ana, nudges, platform, django_capture_on_commit_callbacks
):
    bring(
        client, existing_thread(ANA_PSID, "link_guessed-value"), django_capture_on_commit_callbacks
    )

    assert platform.to(ANA_PSID)[0].startswith("Sorry, this link can't link an account here.")
    assert AuditEvent.objects.get(action="link.refused").details["reason"] == "unknown m.me ref"


def test_erasing_the_customer_erases_the_psid_that_brought_the_ref(
    client, ana, nudges, platform, django_capture_on_commit_callbacks
):
    ref = ref_of(allow(client, ana))
    bring(client, existing_thread(ANA_PSID, ref), django_capture_on_commit_callbacks)

    services.subject_erase(customer=ana, actor=CORE, reason="The customer asked")

    assert LinkInvitation.objects.get().bound_psid == ""
    assert not LinkInvitation.objects.filter(bound_psid=ANA_PSID).exists()


def test_a_consent_whose_link_was_never_opened_ends_when_its_ref_expires(
    client, ana, django_capture_on_commit_callbacks
):
    ref_of(allow(client, ana))
    LinkInvitation.objects.update(ref_expires_at=timezone.now() - timedelta(seconds=1))

    assert services.link_invitations_expire_unused() == 1

    consent = Consent.objects.get(customer=ana)
    assert consent.status == "expired" and consent.ended_at is not None
    assert consent.events.last().reason == "The m.me link was not opened in time"
    assert AuditEvent.objects.filter(action="consent.expired", target_id=str(consent.pk)).exists()
    assert services.link_invitations_expire_unused() == 0


def test_a_linked_consent_outlives_its_ref(client, ana, django_capture_on_commit_callbacks):
    ref = ref_of(allow(client, ana))
    bring(client, existing_thread(ANA_PSID, ref), django_capture_on_commit_callbacks)
    LinkInvitation.objects.update(ref_expires_at=timezone.now() - timedelta(seconds=1))

    assert services.link_invitations_expire_unused() == 0
    assert Consent.objects.get(customer=ana).is_linked


def test_unused_invitations_are_ended_on_beat(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE["expire-unused-invitations"]

    assert schedule["task"] == tasks.expire_unused_invitations.name


# The bank's linking flows


def test_a_bank_without_log_in_refuses_the_log_in_button(client, harbour):
    LinkingFlows.objects.create(bank=harbour, log_in=False, invitations=True)

    response = client.get(
        "/link/harbour/",
        {
            "account_linking_token": "T",
            "redirect_uri": "https://www.facebook.com/messenger_platform/account_linking?x=1",
        },
    )

    assert response.status_code == 403
    assert "Link from your bank" in response.content.decode()


@pytest.fixture
def staff(harbour, sign_in):
    from portal.models import StaffMembership
    from portal.tests.factories import StaffMembershipFactory

    def as_role(role):
        return sign_in(StaffMembershipFactory(bank=harbour, role=role).user)

    return as_role, StaffMembership.Role


def test_staff_see_which_flows_the_bank_offers(staff):
    as_role, Role = staff
    page = as_role(Role.AUDITOR).get("/staff/banks/harbour/linking-flows/").content.decode()

    assert "Log In linking" in page and "m.me invitations" in page
    assert "unavailable for people and Pages in the EEA, the UK and Japan" in page
    assert "<form" not in page.split("<main")[1]  # an auditor sees, never changes


def test_an_admin_turns_log_in_off_and_it_is_audited(staff, harbour):
    as_role, Role = staff
    admin = as_role(Role.ADMIN)

    response = admin.post("/staff/banks/harbour/linking-flows/", {"invitations": "on"})

    assert response.status_code == 302
    flows = LinkingFlows.objects.get(bank=harbour)
    assert (flows.log_in, flows.invitations) == (False, True)
    entry = AuditEvent.objects.get(action="linking_flows.updated")
    assert entry.actor_type == "staff"
    assert entry.details["after"] == {"log_in": False, "invitations": True}


def test_a_bank_must_offer_one_way_to_link(staff, harbour):
    as_role, Role = staff

    response = as_role(Role.ADMIN).post("/staff/banks/harbour/linking-flows/", {})

    assert response.status_code == 200
    assert "Offer at least one way to link" in response.content.decode()
    assert not LinkingFlows.objects.exists()


def test_a_european_bank_is_told_log_in_does_not_work_there(staff, harbour):
    harbour.timezone = "Europe/Lisbon"
    harbour.save()
    as_role, Role = staff

    page = as_role(Role.ADMIN).get("/staff/banks/harbour/linking-flows/").content.decode()

    assert 'id="region-hint"' in page
    assert "Europe/Lisbon" in page


def test_a_bank_in_japan_by_its_country_is_told_log_in_does_not_work_there(staff, harbour):
    harbour.country, harbour.timezone = "JP", "UTC"
    harbour.save()
    as_role, Role = staff

    page = as_role(Role.ADMIN).get("/staff/banks/harbour/linking-flows/").content.decode()

    assert 'id="region-hint"' in page
    assert "Your bank's country (Japan) is in the EEA, the UK or Japan" in page


def test_a_banks_country_outweighs_its_european_time_zone(staff, harbour):
    harbour.country, harbour.timezone = "US", "Europe/Lisbon"
    harbour.save()
    as_role, Role = staff

    page = as_role(Role.ADMIN).get("/staff/banks/harbour/linking-flows/").content.decode()

    assert 'id="region-hint"' not in page


def test_an_operator_cannot_change_the_flows(staff, harbour):
    as_role, Role = staff

    response = as_role(Role.OPERATOR).post("/staff/banks/harbour/linking-flows/", {})

    assert response.status_code in {403, 404}
    assert not LinkingFlows.objects.exists()


def test_a_used_invitation_is_refused_in_the_customers_language(client, ana):
    issued = services.link_invitation_issue(actor=CORE, customer=ana)
    path = urlsplit(issued.url).path
    client.get(path)

    again = client.get(path, headers={"Accept-Language": "fr-FR,fr;q=0.9"})

    assert again.status_code == 410
    page = again.content.decode()
    assert "Ce lien a déjà été utilisé" in page
    assert "This link was already used" not in page


def test_allowing_no_account_shows_the_screen_again_with_the_reason(client, ana):
    consent_page = open_invitation(client, ana)

    again = client.post(consent_page, {"decision": "allow", "scopes": ["balances"]})

    page = again.content.decode()
    assert again.status_code == 400
    assert "Choose at least one account to share." in page
    assert 'value="balances" checked' in page
    assert "https://m.me" in again.headers["Content-Security-Policy"]
    assert not Consent.objects.filter(customer=ana).exists()


def test_an_answer_other_than_allow_or_deny_is_asked_for_again(client, ana):
    answer = client.post(open_invitation(client, ana), {"decision": "later"})

    assert answer.status_code == 400
    assert "Please choose Allow or Deny." in answer.content.decode()


def test_a_bank_that_pauses_while_the_screen_is_open_links_nothing(client, ana):
    consent_page = open_invitation(client, ana)
    MessengerIntegration.objects.filter(bank=ana.bank).update(
        status=MessengerIntegration.Status.PAUSED
    )
    account = ana.accounts.first()

    answer = client.post(
        consent_page, {"decision": "allow", "accounts": [account.pk], "scopes": ["balances"]}
    )

    assert answer.status_code == 503
    assert "Harbour Bank has paused Messenger updates." in answer.content.decode()
    assert not Consent.objects.filter(customer=ana).exists()
