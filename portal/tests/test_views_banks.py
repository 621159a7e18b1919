import re

import pytest
from django.urls import reverse

from portal.audit import Actor
from portal.models import AuditEvent, Bank, StaffMembership
from portal.services import audit_record, integration_pause
from portal.tests.factories import (
    BankFactory,
    StaffMembershipFactory,
    UserFactory,
    api_key_for,
    integration_for,
    invitation_for,
)

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role


def test_a_platform_admin_creates_a_bank_and_is_led_to_invite_its_first_admin(sign_in):
    client = sign_in(UserFactory(is_superuser=True, is_staff=True))

    response = client.post(
        reverse("portal:bank_create"),
        {
            "name": "Harbour Bank",
            "slug": "harbour",
            "timezone": "Europe/Lisbon",
            "default_locale": "pt_PT",
            "support_email": "help@harbour.example",
        },
        follow=True,
    )

    bank = Bank.objects.get(slug="harbour")
    assert (bank.timezone, bank.default_locale) == ("Europe/Lisbon", "pt_PT")
    page = response.content.decode()
    assert "Invite the first admin of Harbour Bank" in page
    assert re.search(r'value="admin"[^>]*checked', page), "the admin role is preselected"
    assert AuditEvent.objects.filter(bank=bank, action="bank.created").exists()


def test_a_duplicate_slug_is_shown_on_the_form(sign_in):
    BankFactory(slug="harbour")
    client = sign_in(UserFactory(is_superuser=True, is_staff=True))

    response = client.post(
        reverse("portal:bank_create"),
        {"name": "Other", "slug": "harbour", "timezone": "UTC", "default_locale": "en"},
    )

    assert response.status_code == 200
    assert "Bank with this Slug already exists." in response.content.decode()


def test_the_dashboard_shows_status_counts_and_recent_activity(sign_in):
    member = StaffMembershipFactory(role=Role.OPERATOR)
    bank = member.bank
    integration = integration_for(bank)
    integration_pause(actor=Actor.system("test"), integration=integration, reason="Incident 7")
    StaffMembershipFactory(bank=bank, role=Role.AUDITOR)
    api_key_for(bank, name="One")
    api_key_for(bank, name="Two")
    invitation_for(bank)
    audit_record(actor=Actor.system("test"), action="config.changed", bank=bank)

    page = (
        sign_in(member.user)
        .get(reverse("portal:dashboard", kwargs={"bank": bank.slug}))
        .content.decode()
    )

    assert "Paused" in page and "Incident 7" in page
    assert '<p class="tile-value" id="staff-count">2</p>' in page
    assert '<p class="tile-value" id="api-key-count">2</p>' in page
    assert "1 pending invitation" in page
    assert "config.changed" in page and "integration.paused" in page
    assert 'id="panel-notifications-deliveries"' in page and "No notifications yet" in page


def test_the_dashboard_of_a_new_bank_says_the_page_is_not_connected(sign_in):
    member = StaffMembershipFactory(role=Role.ADMIN)

    page = (
        sign_in(member.user)
        .get(reverse("portal:dashboard", kwargs={"bank": member.bank.slug}))
        .content.decode()
    )

    assert "Not set up" in page and "not connected yet" in page


def test_the_bank_list_shows_only_the_users_banks(sign_in):
    member = StaffMembershipFactory(role=Role.OPERATOR, bank__name="Mine")
    BankFactory(name="Somebody else's")
    StaffMembershipFactory(user=member.user, role=Role.AUDITOR, bank__name="Also mine")

    page = sign_in(member.user).get(reverse("portal:bank_list")).content.decode()

    assert "Mine" in page and "Also mine" in page
    assert "Somebody else" not in page


def test_staff_of_one_bank_go_straight_to_its_dashboard(sign_in):
    member = StaffMembershipFactory(role=Role.OPERATOR)

    response = sign_in(member.user).get(reverse("portal:staff_home"))

    assert response["Location"] == reverse("portal:dashboard", kwargs={"bank": member.bank.slug})


def test_an_admin_can_require_two_factor_for_all_staff(sign_in, settings):
    settings.STAFF_TWO_FACTOR_FOR_ALL = False
    member = StaffMembershipFactory(role=Role.ADMIN)
    bank = member.bank

    sign_in(member.user).post(
        reverse("portal:bank_settings", kwargs={"bank": bank.slug}),
        {
            "name": bank.name,
            "timezone": bank.timezone,
            "default_locale": "en",
            "require_2fa_for_all": "on",
        },
    )

    assert Bank.objects.get(pk=bank.pk).require_2fa_for_all


def test_staff_signed_in_without_a_code_are_signed_out_once_the_bank_requires_one(
    sign_in, client, settings
):
    settings.STAFF_TWO_FACTOR_FOR_ALL = False
    operator = StaffMembershipFactory(role=Role.OPERATOR)
    sign_in(operator.user)
    Bank.objects.filter(pk=operator.bank.pk).update(require_2fa_for_all=True)

    response = client.get(reverse("portal:dashboard", kwargs={"bank": operator.bank.slug}))

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_the_audit_log_pages_through_entries(sign_in):
    member = StaffMembershipFactory(role=Role.AUDITOR)
    for n in range(55):
        audit_record(
            actor=Actor.system("test"),
            action="config.changed",
            bank=member.bank,
            details={"n": n},
        )
    client = sign_in(member.user)
    url = reverse("portal:audit_log", kwargs={"bank": member.bank.slug})

    first, second = client.get(url), client.get(url + "?page=2")

    assert first.content.decode().count("<code>config.changed</code>") == 50
    assert "Page 2 of 2" in second.content.decode()
