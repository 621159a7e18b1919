"""One Page, one bank: another bank's admin cannot reach a bank's customers through its Page."""

import contextlib
import hashlib
import hmac
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from bankside.celery import app as celery_app
from conversation.models import Conversation, ConversationMessage
from linking import services as linking_services
from linking.models import Consent, Contact
from linking.tests.factories import AccountFactory, CustomerFactory, IntegrationFactory
from notifications.tests.factories import contact_for, link_for
from portal.models import MessengerIntegration, StaffMembership
from portal.tests.factories import BankFactory, StaffMembershipFactory, integration_for

pytestmark = pytest.mark.django_db

A_PAGE, B_PAGE = "4440001111", "5550002222"
B_PSID = "7100000000000001"


@contextlib.contextmanager
def workers_run_at_once():
    """Tasks run where they are enqueued, so whatever a worker would send is seen here."""
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = False


@pytest.fixture
def riverside(db):
    """Bank B: its Page, Ana linked on it, her contact and her conversation."""
    bank = BankFactory(slug="riverside", notification_defaults=True)
    IntegrationFactory(bank=bank, page_id=B_PAGE)
    customer = CustomerFactory(bank=bank, name="Ana Souza")
    consent = link_for(
        customer,
        [AccountFactory(customer=customer)],
        scopes=["balances"],
        page_id=B_PAGE,
        psid=B_PSID,
    )
    contact = contact_for(consent, hours_ago=3)
    conversation = Conversation.objects.create(
        bank=bank, page_id=B_PAGE, psid=B_PSID, consent=consent, customer=customer
    )
    return bank, consent, contact, conversation


@pytest.fixture
def harbour_admin(sign_in):
    """Bank A's admin, signed in, with A's own Page and a customer of A's who said Allow."""
    member = StaffMembershipFactory(
        role=StaffMembership.Role.ADMIN,
        bank=BankFactory(slug="harbour", notification_defaults=True),
    )
    integration = integration_for(member.bank, page_id=A_PAGE)
    return sign_in(member.user), member.bank, integration


def signed_webhook(client, bank, secret: str, body: dict):
    raw = json.dumps(body).encode()
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post(
        reverse("messenger-webhook", args=[bank.slug]),
        raw,
        content_type="application/json",
        headers={"X-Hub-Signature-256": "sha256=" + signature},
    )


def batch_on_b_page(*actions: dict) -> dict:
    """A webhook batch from B's Page for its customer: `actions` in order, 1 ms apart."""
    now_ms = int(timezone.now().timestamp() * 1000)
    messaging = [
        {"sender": {"id": B_PSID}, "recipient": {"id": B_PAGE}, "timestamp": now_ms + i, **action}
        for i, action in enumerate(actions)
    ]
    return {"object": "page", "entry": [{"id": B_PAGE, "time": now_ms, "messaging": messaging}]}


def linked(authorization_code: str) -> dict:
    return {"account_linking": {"status": "linked", "authorization_code": authorization_code}}


def test_a_bank_cannot_take_another_bank_s_page_and_its_customers(
    riverside, harbour_admin, graph, django_capture_on_commit_callbacks
):
    b_bank, b_consent, b_contact, b_conversation = riverside
    client, a_bank, a_integration = harbour_admin
    b_contact_at = b_contact.last_inbound_at

    form = client.post(
        reverse("portal:integration_credentials", kwargs={"bank": a_bank.slug}),
        {"page_id": B_PAGE, "page_access_token": "", "app_secret": "", "callback_url": ""},
        follow=True,
    )
    a_customer = CustomerFactory(bank=a_bank)
    granted = linking_services.consent_authorise(
        customer=a_customer,
        accounts=[AccountFactory(customer=a_customer)],
        scopes=["balances"],
        duration_days=30,
        purpose="updates",
        page_id=MessengerIntegration.objects.get(bank=a_bank).page_id,
        account_linking_token="token-from-a-s-own-log-in",
    )
    body = batch_on_b_page(
        {"message": {"mid": "m_forged", "text": "hi"}}, linked(granted.authorization_code)
    )
    with workers_run_at_once(), django_capture_on_commit_callbacks(execute=True):
        answer = signed_webhook(client, a_bank, a_integration.app_secret, body)

    assert answer.status_code == 200
    b_consent.refresh_from_db()
    assert (b_consent.status, b_consent.psid) == (Consent.Status.AUTHORISED, B_PSID)
    assert not Consent.objects.filter(bank=a_bank, psid=B_PSID).exists()
    assert list(Contact.objects.filter(psid=B_PSID).values_list("bank_id", "last_inbound_at")) == [
        (b_bank.pk, b_contact_at)
    ]
    assert list(Conversation.objects.filter(psid=B_PSID)) == [b_conversation]
    assert not ConversationMessage.objects.exists()
    assert graph.sent == []
    assert "This Page is already connected to another bank" in form.content.decode()
    assert MessengerIntegration.objects.get(bank=a_bank).page_id == A_PAGE


def test_a_page_that_moved_to_another_bank_leaves_the_old_bank_s_rows_alone(
    riverside, graph, client, django_capture_on_commit_callbacks
):
    """B's Page was once A's. A's rows for the same person on it are A's history: B's
    webhook for that person links, counts and files B's own rows, and A's stay as they were.
    """
    b_bank, b_consent, b_contact, b_conversation = riverside
    a_bank = BankFactory(slug="harbour", notification_defaults=True)
    IntegrationFactory(bank=a_bank, page_id=A_PAGE)
    # The rows for Ana on the Page are A's, from when A served it.
    a_conversation = b_conversation
    Conversation.objects.filter(pk=a_conversation.pk).update(bank=a_bank)
    Contact.objects.filter(pk=b_contact.pk).update(bank=a_bank)
    a_customer = CustomerFactory(bank=a_bank)
    Consent.objects.filter(pk=b_consent.pk).update(bank=a_bank, customer=a_customer)
    a_contact_at = Contact.objects.get(pk=b_contact.pk).last_inbound_at
    b_customer = CustomerFactory(bank=b_bank)
    granted = linking_services.consent_authorise(
        customer=b_customer,
        accounts=[AccountFactory(customer=b_customer)],
        scopes=["balances"],
        duration_days=30,
        purpose="updates",
        page_id=B_PAGE,
        account_linking_token="token-from-b-s-log-in",
    )
    b_integration = MessengerIntegration.objects.get(bank=b_bank)
    body = batch_on_b_page(
        linked(granted.authorization_code), {"message": {"mid": "m_b", "text": "hi"}}
    )
    with workers_run_at_once(), django_capture_on_commit_callbacks(execute=True):
        answer = signed_webhook(client, b_bank, b_integration.app_secret, body)

    assert answer.status_code == 200
    a_link = Consent.objects.get(pk=b_consent.pk)
    assert (a_link.bank, a_link.status, a_link.psid) == (a_bank, Consent.Status.AUTHORISED, B_PSID)
    b_link = Consent.objects.get(pk=granted.consent.pk)
    assert (b_link.bank, b_link.psid, b_link.page_id) == (b_bank, B_PSID, B_PAGE)
    assert Contact.objects.get(bank=a_bank, psid=B_PSID).last_inbound_at == a_contact_at
    assert Contact.objects.filter(bank=b_bank, page_id=B_PAGE, psid=B_PSID).exists()
    assert not ConversationMessage.objects.filter(conversation=a_conversation).exists()
    (message,) = ConversationMessage.objects.filter(direction="in")
    assert (message.bank, message.conversation.bank, message.text) == (b_bank, b_bank, "hi")
    assert set(ConversationMessage.objects.values_list("conversation__bank", flat=True)) == {
        b_bank.pk
    }
    assert {body["recipient"]["id"] for body in graph.sent} == {B_PSID}
