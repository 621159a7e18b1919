"""Pausing banks: a bank admin pauses their bank, a platform admin several at once."""

import pytest
from django.urls import reverse

from linking.tests.factories import IntegrationFactory
from portal.models import AuditEvent, MessengerIntegration, StaffMembership
from portal.tests.factories import BankFactory, StaffMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role
Status = MessengerIntegration.Status


@pytest.fixture
def banks():
    return [
        IntegrationFactory(bank=BankFactory(slug=slug, name=slug.title()), status=status).bank
        for slug, status in (("harbour", "live"), ("north", "live"), ("south", "paused"))
    ]


def status_of(bank):
    return MessengerIntegration.objects.get(bank=bank).status


def test_a_bank_admin_pauses_their_bank_with_a_reason(banks, sign_in):
    harbour = banks[0]
    client = sign_in(StaffMembershipFactory(bank=harbour, role=Role.ADMIN).user)

    response = client.post(
        reverse("portal:bank_pause", kwargs={"bank": "harbour"}), {"reason": "Incident 9"}
    )

    assert response.status_code == 302
    integration = MessengerIntegration.objects.get(bank=harbour)
    assert (integration.status, integration.status_reason) == (Status.PAUSED, "Incident 9")
    assert integration.paused_from == Status.LIVE  # resuming returns it to live
    assert AuditEvent.objects.get(action="integration.paused", bank=harbour).details == {
        "reason": "Incident 9",
        "from": "live",
    }
    assert status_of(banks[1]) == Status.LIVE


def test_a_pause_without_a_reason_is_refused(banks, sign_in):
    client = sign_in(StaffMembershipFactory(bank=banks[0], role=Role.ADMIN).user)

    response = client.post(
        reverse("portal:bank_pause", kwargs={"bank": "harbour"}), {"reason": "  "}, follow=True
    )

    assert "Give the reason for pausing." in response.content.decode()
    assert status_of(banks[0]) == Status.LIVE


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.AUDITOR])
def test_only_an_admin_pauses_the_bank_from_the_console(banks, sign_in, role):
    client = sign_in(StaffMembershipFactory(bank=banks[0], role=role).user)

    response = client.post(
        reverse("portal:bank_pause", kwargs={"bank": "harbour"}), {"reason": "x"}
    )

    assert response.status_code == 403
    assert status_of(banks[0]) == Status.LIVE


def test_the_console_offers_admins_the_pause(banks, sign_in):
    admin = sign_in(StaffMembershipFactory(bank=banks[0], role=Role.ADMIN).user)
    links = reverse("linking:links", kwargs={"bank": "harbour"})

    assert "Pause the bank" in admin.get(links).content.decode()


def test_a_platform_admin_pauses_several_banks_at_once(banks, sign_in):
    client = sign_in(UserFactory(is_superuser=True, is_staff=True))
    listing = client.get(reverse("portal:bank_list")).content.decode()
    assert 'value="harbour" form="bulk-pause"' in listing
    assert 'value="south" form="bulk-pause"' not in listing  # already paused

    response = client.post(
        reverse("portal:banks_pause"),
        {"banks": ["harbour", "north", "south"], "reason": "Platform incident 7"},
    )

    assert response.status_code == 302
    assert [status_of(b) for b in banks] == [Status.PAUSED] * 3
    for bank in banks[:2]:
        entry = AuditEvent.objects.get(action="integration.paused", bank=bank)
        assert entry.details["reason"] == "Platform incident 7"
    bulk = AuditEvent.objects.get(action="banks.paused")
    assert bulk.bank is None
    assert bulk.details["paused"] == ["harbour", "north"]
    assert bulk.details["already_paused"] == ["south"]


def test_a_bulk_pause_needs_banks_and_a_reason(banks, sign_in):
    client = sign_in(UserFactory(is_superuser=True, is_staff=True))

    client.post(reverse("portal:banks_pause"), {"banks": ["harbour"], "reason": ""})
    client.post(reverse("portal:banks_pause"), {"reason": "no banks"})
    client.post(reverse("portal:banks_pause"), {"banks": ["nowhere"], "reason": "x"})

    assert status_of(banks[0]) == Status.LIVE
    assert not AuditEvent.objects.filter(action="banks.paused").exists()


def test_a_bank_admin_cannot_bulk_pause(banks, sign_in):
    client = sign_in(StaffMembershipFactory(bank=banks[0], role=Role.ADMIN).user)

    response = client.post(
        reverse("portal:banks_pause"), {"banks": ["harbour", "north"], "reason": "x"}
    )

    assert response.status_code == 403
    assert status_of(banks[1]) == Status.LIVE
