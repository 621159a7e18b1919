import itertools
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from core.tests.threads import run_together
from linking import services
from linking.models import Account, AuthorizationCode, Consent, Customer
from linking.tests.factories import AccountFactory, CustomerFactory, IntegrationFactory
from portal.audit import Actor
from portal.models import AuditEvent
from portal.tests.factories import BankFactory

pytestmark = pytest.mark.django_db

CORE = Actor("api_key", "1", "core")
_tokens = itertools.count(1)


def grant(account, page_id="1029384756", scopes=("balances", "transactions")):
    """The customer says Allow on the consent screen of a Log In of their own."""
    return services.consent_authorise(
        customer=account.customer,
        accounts=[account],
        scopes=list(scopes),
        duration_days=90,
        purpose="updates",
        page_id=page_id,
        account_linking_token=f"token-{next(_tokens)}",
    )


def test_customer_upsert_creates_and_deactivates_removed_accounts():
    bank = BankFactory()
    accounts = [
        {
            "id": "a1",
            "kind": "checking",
            "name": "Everyday",
            "last4": "4821",
            "currency": "EUR",
            "balance": "10.00",
        },
        {
            "id": "c1",
            "kind": "credit_card",
            "name": "Visa",
            "last4": "9012",
            "currency": "EUR",
            "balance": "-50.25",
        },
    ]
    services.customer_upsert(
        actor=CORE, bank=bank, external_id="cu-1", name="Ana", locale="pt", accounts=accounts
    )

    customer = services.customer_upsert(
        actor=CORE, bank=bank, external_id="cu-1", name="Ana S", locale="pt", accounts=accounts[:1]
    )

    assert customer.name == "Ana S"
    assert dict(customer.accounts.values_list("external_id", "active")) == {"a1": True, "c1": False}
    assert AuditEvent.objects.filter(action="customer.updated", bank=bank).exists()


@pytest.mark.parametrize("last4", ["4111111111111111", "12345", "12a4", ""])
def test_full_numbers_are_refused_and_nothing_is_written(last4):
    bank = BankFactory()
    with pytest.raises(ValidationError, match="last 4 digits"):
        services.customer_upsert(
            actor=CORE,
            bank=bank,
            external_id="cu-1",
            name="Ana",
            locale="en",
            accounts=[
                {
                    "id": "a1",
                    "kind": "checking",
                    "name": "x",
                    "last4": last4,
                    "currency": "EUR",
                    "balance": "1",
                }
            ],
        )
    assert not Customer.objects.exists() and not Account.objects.exists()


def test_directory_login_checks_the_hashed_password():
    customer = CustomerFactory(directory_username="ana")

    assert (
        services.directory_authenticate(
            bank=customer.bank, username="ana", password="open sesame 42"
        )
        == customer
    )
    assert (
        services.directory_authenticate(bank=customer.bank, username="ana", password="wrong")
        is None
    )
    assert (
        services.directory_authenticate(
            bank=BankFactory(), username="ana", password="open sesame 42"
        )
        is None
    )
    assert "open sesame" not in Customer.objects.get().directory_password


def test_allow_records_both_transitions_and_keeps_only_the_code_hash():
    account = AccountFactory()

    granted = grant(account)

    consent = granted.consent
    assert consent.status == Consent.Status.AUTHORISED
    assert [(e.from_status, e.to_status, e.actor) for e in consent.events.all()] == [
        ("", "awaiting_authorisation", "customer"),
        ("awaiting_authorisation", "authorised", "customer"),
    ]
    assert consent.expires_at - consent.granted_at == timedelta(days=90)
    stored = AuthorizationCode.objects.get(consent=consent)
    assert granted.authorization_code not in stored.code_hash
    audit = AuditEvent.objects.get(action="consent.authorised")
    assert audit.data_categories == ["balances", "transactions"]


def test_another_customers_account_cannot_be_shared():
    mine, theirs = AccountFactory(), AccountFactory()

    with pytest.raises(ValidationError):
        services.consent_authorise(
            customer=mine.customer,
            accounts=[theirs],
            scopes=["balances"],
            duration_days=90,
            purpose="x",
            page_id="1",
            account_linking_token="t",
        )


def test_binding_consumes_the_code_once():
    integration = IntegrationFactory()
    account = AccountFactory(customer__bank=integration.bank)
    granted = grant(account, page_id=integration.page_id)

    consent = services.link_bind(
        bank=integration.bank,
        page_id=integration.page_id,
        psid="555",
        authorization_code=granted.authorization_code,
    )

    assert consent.is_linked and consent.psid == "555"
    with pytest.raises(services.LinkRefusedError, match="already used"):
        services.link_bind(
            bank=integration.bank,
            page_id=integration.page_id,
            psid="666",
            authorization_code=granted.authorization_code,
        )
    assert AuditEvent.objects.filter(action="link.refused", bank=integration.bank).count() == 1


def test_a_code_from_another_bank_is_refused():
    integration, other = IntegrationFactory(), IntegrationFactory()
    granted = grant(AccountFactory(customer__bank=integration.bank), page_id=integration.page_id)

    with pytest.raises(services.LinkRefusedError, match="another bank"):
        services.link_bind(
            bank=other.bank,
            page_id=other.page_id,
            psid="555",
            authorization_code=granted.authorization_code,
        )
    assert Consent.objects.get().psid == ""


def test_an_expired_code_is_refused():
    integration = IntegrationFactory()
    granted = grant(AccountFactory(customer__bank=integration.bank), page_id=integration.page_id)
    AuthorizationCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(services.LinkRefusedError, match="expired"):
        services.link_bind(
            bank=integration.bank,
            page_id=integration.page_id,
            psid="555",
            authorization_code=granted.authorization_code,
        )


def test_relinking_the_same_person_replaces_the_old_link():
    integration = IntegrationFactory()
    account = AccountFactory(customer__bank=integration.bank)
    first = grant(account, page_id=integration.page_id)
    services.link_bind(
        bank=integration.bank,
        page_id=integration.page_id,
        psid="555",
        authorization_code=first.authorization_code,
    )
    second = grant(account, page_id=integration.page_id)

    services.link_bind(
        bank=integration.bank,
        page_id=integration.page_id,
        psid="555",
        authorization_code=second.authorization_code,
    )

    first.consent.refresh_from_db()
    assert first.consent.status == Consent.Status.REVOKED
    assert "Replaced" in first.consent.events.last().reason
    assert Consent.objects.filter(psid="555", status="authorised").get() == second.consent


def test_revocation_is_idempotent_and_records_who(django_capture_on_commit_callbacks):
    consent = grant(AccountFactory()).consent
    staff = Actor("staff", "9", "olga")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.consent_revoke(consent=consent, actor=staff, reason="Customer called")
        services.consent_revoke(consent=consent, actor=staff, reason="again")

    consent.refresh_from_db()
    assert consent.status == Consent.Status.REVOKED
    assert consent.events.last().actor == "staff"
    assert consent.events.filter(to_status="revoked").count() == 1
    assert len(callbacks) == 1  # one link_ended signal, to stop pending notifications


def test_expiry_ends_due_consents_only():
    due = grant(AccountFactory()).consent
    fresh = grant(AccountFactory()).consent
    Consent.objects.filter(pk=due.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    assert services.consents_expire_due() == 1

    due.refresh_from_db()
    fresh.refresh_from_db()
    assert (due.status, fresh.status) == ("expired", "authorised")
    assert due.events.last().actor == "system"


def test_expiry_is_scheduled_on_beat(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "linking.expire_consents" in tasks


@pytest.mark.django_db(transaction=True)
def test_two_first_upserts_of_one_customer_both_succeed():
    bank = BankFactory()

    def upsert(name):
        services.customer_upsert(
            actor=CORE, bank=bank, external_id="cu-race", name=name, locale="en", accounts=[]
        )

    assert run_together(upsert, ["Ana", "Ana S"]) == []
    assert Customer.objects.filter(bank=bank, external_id="cu-race").count() == 1


def test_a_first_upsert_that_misses_a_customer_just_created_updates_it(monkeypatch):
    bank = BankFactory()
    services.customer_upsert(
        actor=CORE, bank=bank, external_id="cu-race", name="Ana", locale="en", accounts=[]
    )
    # As if the other first upsert committed just after this one looked for the customer.
    first = QuerySet.first
    missed = []

    def first_missing_the_customer_once(queryset):
        if queryset.model is Customer and not missed:
            missed.append(queryset)
            return None
        return first(queryset)

    monkeypatch.setattr(QuerySet, "first", first_missing_the_customer_once)

    services.customer_upsert(
        actor=CORE, bank=bank, external_id="cu-race", name="Ana S", locale="en", accounts=[]
    )

    assert missed
    assert [c.name for c in Customer.objects.filter(bank=bank, external_id="cu-race")] == ["Ana S"]
