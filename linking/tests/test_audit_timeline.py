"""Customers in the audit timeline: named by the name linking holds, found by it, never stored."""

import pytest
from django.urls import reverse

from linking.services.consents import customer_actor
from linking.tests.factories import CustomerFactory
from portal.models import AuditEvent, StaffMembership
from portal.services import audit_record
from portal.tests.factories import BankFactory, StaffMembershipFactory
from portal.timeline import timeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def harbour():
    return BankFactory(slug="harbour", name="Harbour Bank")


def allowed(customer):
    return audit_record(
        actor=customer_actor(customer),
        action="consent.authorised",
        bank=customer.bank,
        details={
            "scopes": ["balances", "transactions"],
            "accounts": ["chk-1", "sav-1"],
            "expires_at": "2027-03-06T10:00:00+00:00",
        },
    )


def auditor_of(bank, sign_in):
    return sign_in(StaffMembershipFactory(bank=bank, role=StaffMembership.Role.AUDITOR).user)


def test_a_customer_reads_by_name_though_the_entry_holds_only_their_id(harbour):
    ana = CustomerFactory(bank=harbour, external_id="cu-ana", name="Ana Souza")
    entry = allowed(ana)

    (said,) = timeline(harbour, [entry])

    assert entry.actor_label == "customer cu-ana"
    assert said.sentence == (
        "Ana Souza allowed balances and transactions for 2 accounts until 6 Mar 2027."
    )


def test_an_erased_customer_reads_as_their_id(harbour):
    ana = CustomerFactory(bank=harbour, external_id="cu-ana", name="Ana Souza")
    entry = allowed(ana)
    type(ana).objects.filter(pk=ana.pk).update(name="")

    (said,) = timeline(harbour, [entry])

    assert said.sentence.startswith("Customer cu-ana allowed balances")


def test_the_actor_filter_finds_a_customer_by_part_of_their_name(harbour, sign_in):
    allowed(CustomerFactory(bank=harbour, external_id="cu-ana", name="Ana Souza"))
    allowed(CustomerFactory(bank=harbour, external_id="cu-max", name="Max Mustermann"))
    client = auditor_of(harbour, sign_in)

    response = client.get(
        reverse("portal:audit_log", kwargs={"bank": harbour.slug}), {"actor": "souza"}
    )

    assert response.status_code == 200
    (event,) = response.context["page"].object_list
    assert event.actor_label == "customer cu-ana"
    assert "Ana Souza allowed balances and transactions" in response.content.decode()


def test_the_actor_filter_never_matches_another_banks_customer(harbour, sign_in):
    other = BankFactory(slug="other")
    stranger = CustomerFactory(bank=other, external_id="cu-ana", name="Ana Souza")
    # An entry of this bank whose actor id happens to be the other bank's customer's.
    audit_record(
        actor=customer_actor(stranger), action="consent.rejected", bank=harbour, details={}
    )
    client = auditor_of(harbour, sign_in)

    response = client.get(
        reverse("portal:audit_log", kwargs={"bank": harbour.slug}), {"actor": "Souza"}
    )

    assert list(response.context["page"].object_list) == []
    assert AuditEvent.objects.filter(bank=harbour).count() == 1
