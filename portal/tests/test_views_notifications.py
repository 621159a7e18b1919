from datetime import time
from decimal import Decimal

import pytest
from django.urls import reverse

from portal import services
from portal.events import EventType
from portal.models import (
    AuditEvent,
    NotificationPolicy,
    NotificationSettings,
    StaffMembership,
    TextVersion,
)
from portal.tests.factories import SEED, StaffMembershipFactory

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role
TXN = EventType.TRANSACTION_POSTED
FRAUD = EventType.FRAUD_ALERT


@pytest.fixture
def bank():
    return services.bank_create(
        actor=SEED, name="Harbour Bank", slug="harbour", timezone_name="Europe/Paris"
    )


@pytest.fixture
def member_client(bank, sign_in):
    def _client(role):
        return sign_in(StaffMembershipFactory(bank=bank, role=role).user)

    return _client


def policy_url(bank, event_type):
    policy = NotificationPolicy.objects.get(bank=bank, event_type=event_type)
    return reverse(
        "portal:notification_policy_edit", kwargs={"bank": bank.slug, "policy": policy.pk}
    )


def approve_draft(bank, client) -> str:
    """The bank's one draft, approved by `client`'s staff member: the page they land on."""
    draft = TextVersion.objects.get(bank=bank, state=TextVersion.State.DRAFT)
    address = reverse(
        "portal:notification_policy_version_approve",
        kwargs={"bank": bank.slug, "policy_version": draft.pk},
    )
    return client.post(address, follow=True).content.decode()


def test_an_operator_sets_a_threshold_and_quiet_hours(bank, member_client):
    client = member_client(Role.OPERATOR)

    response = client.post(
        policy_url(bank, TXN),
        {
            "enabled": "on",
            "min_amount": "250.00",
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
        },
        follow=True,
    )

    page = response.content.decode()
    policy = NotificationPolicy.objects.get(bank=bank, event_type=TXN)
    assert policy.min_amount is None and not policy.has_quiet_hours  # a draft so far
    assert "Draft saved as version 2." in page
    assert "Only for amounts of at least 250.00" in page and "Quiet hours: 22:00 to 07:00" in page

    approved = approve_draft(bank, member_client(Role.ADMIN))

    policy.refresh_from_db()
    assert (policy.min_amount, policy.quiet_hours_start) == (Decimal("250.00"), time(22))
    assert "Version 2 is approved" in approved
    listing = client.get(reverse("portal:notification_policies", kwargs={"bank": "harbour"}))
    assert "amount is at least 250.00" in listing.content.decode()
    assert AuditEvent.objects.filter(action="notification_policy.updated").count() == 1


def test_switching_a_kind_of_update_off(bank, member_client):
    client = member_client(Role.ADMIN)

    client.post(policy_url(bank, "balance.updated"), {})
    assert NotificationPolicy.objects.get(bank=bank, event_type="balance.updated").enabled
    approve_draft(bank, member_client(Role.ADMIN))

    assert not NotificationPolicy.objects.get(bank=bank, event_type="balance.updated").enabled


def test_an_admin_cannot_approve_their_own_policy_draft(bank, member_client):
    client = member_client(Role.ADMIN)
    client.post(policy_url(bank, "balance.updated"), {})

    page = approve_draft(bank, client)

    assert "another admin must approve it (four eyes)" in page
    assert NotificationPolicy.objects.get(bank=bank, event_type="balance.updated").enabled


def test_an_operator_cannot_approve_a_policy_draft(bank, member_client):
    member_client(Role.ADMIN).post(policy_url(bank, "balance.updated"), {})
    draft = TextVersion.objects.get(bank=bank, state=TextVersion.State.DRAFT)

    response = member_client(Role.OPERATOR).post(
        reverse(
            "portal:notification_policy_version_approve",
            kwargs={"bank": "harbour", "policy_version": draft.pk},
        )
    )

    assert response.status_code == 403
    assert NotificationPolicy.objects.get(bank=bank, event_type="balance.updated").enabled


def test_a_policy_rolls_back_to_its_earlier_rules_once_approved(bank, member_client):
    member_client(Role.OPERATOR).post(policy_url(bank, "balance.updated"), {})
    approve_draft(bank, member_client(Role.ADMIN))
    first = TextVersion.objects.get(bank=bank, key="balance.updated", number=1)

    member_client(Role.OPERATOR).post(
        reverse(
            "portal:notification_policy_version_rollback",
            kwargs={"bank": "harbour", "policy_version": first.pk},
        )
    )
    assert not NotificationPolicy.objects.get(bank=bank, event_type="balance.updated").enabled
    approve_draft(bank, member_client(Role.ADMIN))

    assert NotificationPolicy.objects.get(bank=bank, event_type="balance.updated").enabled


def test_the_fraud_alert_form_offers_no_quiet_hours(bank, member_client):
    page = member_client(Role.OPERATOR).get(policy_url(bank, FRAUD)).content.decode()

    assert 'name="quiet_hours_start"' not in page
    assert 'name="min_amount"' not in page
    assert "always sent at once" in page


def test_quiet_hours_posted_for_fraud_alerts_anyway_are_not_stored(bank, member_client):
    member_client(Role.OPERATOR).post(
        policy_url(bank, FRAUD),
        {"enabled": "on", "quiet_hours_start": "22:00", "quiet_hours_end": "07:00"},
    )

    assert not NotificationPolicy.objects.get(bank=bank, event_type=FRAUD).has_quiet_hours


def test_half_a_quiet_hours_window_is_explained_on_the_form(bank, member_client):
    response = member_client(Role.OPERATOR).post(
        policy_url(bank, TXN), {"enabled": "on", "quiet_hours_start": "22:00"}
    )

    assert response.status_code == 200
    assert "Give both the start and the end of the quiet hours" in response.content.decode()
    assert not AuditEvent.objects.filter(action="notification_policy.updated").exists()


def test_the_quiet_hours_help_names_the_banks_time_zone(bank, member_client):
    page = member_client(Role.OPERATOR).get(policy_url(bank, TXN)).content.decode()

    assert "Europe/Paris" in page


def test_an_operator_sets_the_essential_scopes_and_consent_duration(bank, member_client):
    client = member_client(Role.OPERATOR)

    page = client.post(
        reverse("portal:notification_settings_edit", kwargs={"bank": "harbour"}),
        {"essential_scopes": ["fraud_alerts", "balances"], "consent_duration_days": "30"},
        follow=True,
    ).content.decode()

    settings_row = NotificationSettings.objects.get(bank=bank)
    assert settings_row.essential_scopes == ["balances", "fraud_alerts"]
    assert settings_row.consent_duration_days == 30
    assert "Balances, Fraud alerts" in page and "30 days" in page


def test_a_consent_duration_over_a_year_is_refused_on_the_form(bank, member_client):
    response = member_client(Role.ADMIN).post(
        reverse("portal:notification_settings_edit", kwargs={"bank": "harbour"}),
        {"consent_duration_days": "400"},
    )

    assert "less than or equal to 365" in response.content.decode()
    assert NotificationSettings.objects.get(bank=bank).consent_duration_days == 90


def test_an_auditor_reads_the_policies_without_any_way_to_change_them(bank, member_client):
    page = (
        member_client(Role.AUDITOR)
        .get(reverse("portal:notification_policies", kwargs={"bank": "harbour"}))
        .content.decode()
    )

    assert "Card and account transactions" in page and "90 days" in page
    assert "Edit" not in page and '<form method="post" class' not in page
    assert "none: sent at once, day or night" in page


def test_saving_the_live_rules_unchanged_says_so_and_drafts_nothing(bank, member_client):
    response = member_client(Role.OPERATOR).post(policy_url(bank, TXN), {"enabled": "on"})

    assert response.status_code == 200
    assert "Nothing changed: this is what customers get now." in response.content.decode()
    assert not TextVersion.objects.filter(state=TextVersion.State.DRAFT).exists()
