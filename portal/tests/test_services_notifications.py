from datetime import time
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from portal import selectors, services
from portal.audit import Actor
from portal.events import DataScope, EventType
from portal.models import (
    AuditEvent,
    MessageTemplate,
    NotificationPolicy,
    NotificationSettings,
    StaffMembership,
)
from portal.policies import Reason, decide
from portal.template_defaults import DEFAULT_TEMPLATES
from portal.tests.factories import (
    SEED,
    BankFactory,
    StaffMembershipFactory,
    template_text_approved,
)

pytestmark = pytest.mark.django_db

TXN = EventType.TRANSACTION_POSTED
BALANCE = EventType.BALANCE_UPDATED
FRAUD = EventType.FRAUD_ALERT


@pytest.fixture
def bank():
    return services.bank_create(actor=SEED, name="Harbour Bank", slug="harbour")


def policy_of(bank, event_type) -> NotificationPolicy:
    return NotificationPolicy.objects.get(bank=bank, event_type=event_type)


def template_of(bank, event_type, locale="en") -> MessageTemplate:
    return MessageTemplate.objects.get(bank=bank, event_type=event_type, locale=locale)


def operator_of(bank):
    return StaffMembershipFactory(bank=bank, role=StaffMembership.Role.OPERATOR).user


def last_audit(bank) -> AuditEvent:
    return AuditEvent.objects.filter(bank=bank).order_by("-seq").first()


def test_a_new_bank_starts_with_every_policy_on_and_templates_in_its_language():
    bank = services.bank_create(actor=SEED, name="Banque du Port", slug="port", default_locale="fr")

    policies = NotificationPolicy.objects.filter(bank=bank)
    assert sorted(p.event_type for p in policies) == sorted(EventType.values)
    assert all(p.enabled and not p.has_quiet_hours and p.min_amount is None for p in policies)
    assert NotificationSettings.objects.get(bank=bank).consent_duration_days == 90
    assert template_of(bank, TXN, "fr").body == DEFAULT_TEMPLATES["fr"][TXN]
    assert MessageTemplate.objects.filter(bank=bank).count() == len(EventType.values)
    assert AuditEvent.objects.filter(bank=bank, action="notifications.defaults_created").exists()


def test_creating_the_defaults_twice_changes_nothing(bank):
    before = AuditEvent.objects.count()

    services.notification_defaults_create(actor=SEED, bank=bank)

    assert AuditEvent.objects.count() == before
    assert NotificationPolicy.objects.filter(bank=bank).count() == len(EventType.values)


def test_a_policy_change_is_audited_with_before_and_after(bank):
    services.notification_policy_update(
        actor=SEED,
        policy=policy_of(bank, TXN),
        enabled=True,
        min_amount=Decimal("250.00"),
        quiet_hours_start=time(22),
        quiet_hours_end=time(7),
    )

    entry = last_audit(bank)
    assert entry.action == "notification_policy.updated"
    assert entry.details == {
        "event_type": TXN,
        "changed": {
            "min_amount": [None, "250.00"],
            "quiet_hours_start": [None, "22:00:00"],
            "quiet_hours_end": [None, "07:00:00"],
        },
    }


def test_marking_a_type_urgent_is_audited_and_reaches_the_rules(bank):
    policy = services.notification_policy_update(
        actor=SEED, policy=policy_of(bank, TXN), enabled=True, urgent=True
    )

    entry = last_audit(bank)
    assert entry.action == "notification_policy.updated"
    assert entry.details == {"event_type": TXN, "changed": {"urgent": [False, True]}}
    assert policy_of(bank, TXN).urgent and policy.rules().is_urgent
    assert not policy_of(bank, BALANCE).is_urgent and policy_of(bank, FRAUD).is_urgent


def test_saving_an_unchanged_policy_writes_no_audit_entry(bank):
    before = AuditEvent.objects.count()

    services.notification_policy_update(actor=SEED, policy=policy_of(bank, TXN), enabled=True)

    assert AuditEvent.objects.count() == before


def test_fraud_alerts_cannot_be_given_quiet_hours(bank):
    with pytest.raises(ValidationError) as caught:
        services.notification_policy_update(
            actor=SEED,
            policy=policy_of(bank, FRAUD),
            enabled=True,
            quiet_hours_start=time(22),
            quiet_hours_end=time(7),
        )

    assert "always sent at once" in caught.value.message_dict["quiet_hours_start"][0]
    assert not policy_of(bank, FRAUD).has_quiet_hours


def test_the_database_refuses_quiet_hours_on_fraud_alerts_even_past_the_service(bank):
    policy = policy_of(bank, FRAUD)

    with pytest.raises(IntegrityError), transaction.atomic():
        NotificationPolicy.objects.filter(pk=policy.pk).update(
            quiet_hours_start=time(22), quiet_hours_end=time(7)
        )


@pytest.mark.parametrize(
    ("event_type", "values", "field"),
    [
        (BALANCE, {"min_amount": Decimal("10")}, "min_amount"),
        (TXN, {"low_balance_below": Decimal("10")}, "low_balance_below"),
        (TXN, {"quiet_hours_start": time(22)}, "quiet_hours_end"),
        (TXN, {"quiet_hours_end": time(7)}, "quiet_hours_start"),
        (TXN, {"quiet_hours_start": time(7), "quiet_hours_end": time(7)}, "quiet_hours_end"),
        (TXN, {"min_amount": Decimal("0")}, "min_amount"),
    ],
)
def test_invalid_policies_are_refused_by_field(bank, event_type, values, field):
    before = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as caught:
        services.notification_policy_update(
            actor=SEED, policy=policy_of(bank, event_type), enabled=True, **values
        )

    assert field in caught.value.message_dict
    assert AuditEvent.objects.count() == before


def test_the_stored_policy_is_what_decide_applies(bank):
    services.notification_policy_update(
        actor=SEED, policy=policy_of(bank, BALANCE), enabled=True, low_balance_below=Decimal("50")
    )
    rules = selectors.policy_rules_for(bank)

    assert rules[BALANCE].timezone == bank.timezone
    assert decide(rules[BALANCE], BALANCE, {"balance": "900"}, bank.created_at).reason == (
        Reason.BALANCE_NOT_LOW
    )
    assert decide(policy_of(bank, BALANCE), BALANCE, {"balance": "12"}, bank.created_at).send


def test_a_bank_without_policy_rows_gets_the_default_rules():
    bank = BankFactory()

    rules = selectors.policy_rules_for(bank)

    assert set(rules) == set(EventType.values)
    assert all(r.enabled and r.min_amount is None for r in rules.values())


def test_consent_settings_are_stored_in_the_consent_screens_order_and_audited(bank):
    settings_row = services.notification_settings_update(
        actor=SEED,
        bank=bank,
        essential_scopes=["fraud_alerts", "balances", "fraud_alerts"],
        consent_duration_days=180,
    )

    assert settings_row.essential_scopes == ["balances", "fraud_alerts"]
    assert last_audit(bank).details == {
        "changed": {
            "essential_scopes": [[], ["balances", "fraud_alerts"]],
            "consent_duration_days": [90, 180],
        }
    }


@pytest.mark.parametrize(
    ("scopes", "days", "field"),
    [
        (["balances"], 0, "consent_duration_days"),
        (["balances"], 366, "consent_duration_days"),
        (["marketing"], 90, "essential_scopes"),
    ],
)
def test_consent_settings_out_of_range_are_refused(bank, scopes, days, field):
    with pytest.raises(ValidationError) as caught:
        services.notification_settings_update(
            actor=SEED, bank=bank, essential_scopes=scopes, consent_duration_days=days
        )

    assert field in caught.value.message_dict
    assert NotificationSettings.objects.get(bank=bank).consent_duration_days == 90


def test_the_portals_scopes_are_the_consents_scopes():
    from linking.models import Consent  # a test may look upwards; the code may not

    assert DataScope.choices == Consent.Scope.choices


def test_a_template_with_an_unknown_placeholder_is_refused_with_the_allowed_ones(bank):
    template = template_of(bank, BALANCE)

    with pytest.raises(ValidationError) as caught:
        services.message_template_draft(
            actor=Actor.staff(operator_of(bank)),
            bank=bank,
            event_type=template.event_type,
            locale=template.locale,
            body="Hi {nickname}",
        )

    assert "Unknown placeholder {nickname}" in caught.value.message_dict["body"][0]
    assert "{balance}" in caught.value.message_dict["body"][0]
    assert template_of(bank, BALANCE).body == DEFAULT_TEMPLATES["en"][BALANCE]


def test_a_template_edit_is_audited_with_the_old_and_new_text(bank):
    template_text_approved(bank, event_type=BALANCE, locale="en", body="Now {balance}.")

    entry = last_audit(bank)
    assert entry.action == "text_version.approved"
    assert entry.details["body_before"] == DEFAULT_TEMPLATES["en"][BALANCE]
    assert entry.details["body"] == "Now {balance}."


def test_a_template_in_another_language_is_added_and_can_be_deleted(bank):
    template = template_text_approved(
        bank, event_type=TXN, locale="de-de", body="{amount} bei {merchant}"
    )

    assert template.locale == "de_DE"
    services.message_template_delete(actor=SEED, template=template)
    assert not MessageTemplate.objects.filter(pk=template.pk).exists()
    assert last_audit(bank).action == "message_template.deleted"


def test_a_new_text_for_a_language_that_has_one_is_a_draft_of_that_template(bank):
    draft = services.message_template_draft(
        actor=Actor.staff(operator_of(bank)),
        bank=bank,
        event_type=TXN,
        locale="en",
        body="{amount}",
    )

    assert draft.key == f"{TXN}:en" and draft.number == 2
    assert MessageTemplate.objects.filter(bank=bank, event_type=TXN).count() == 1


def test_the_default_languages_template_cannot_be_deleted(bank):
    with pytest.raises(ValidationError, match="default language"):
        services.message_template_delete(actor=SEED, template=template_of(bank, TXN))


def test_a_new_default_locale_gets_templates(bank):
    services.bank_update(
        actor=SEED, bank=bank, name=bank.name, timezone_name="UTC", default_locale="de"
    )

    assert template_of(bank, FRAUD, "de").body == DEFAULT_TEMPLATES["de"][FRAUD]
    assert template_of(bank, FRAUD, "en")  # the old language stays


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("fr_CA", "fr"), ("fr", "fr"), ("pt-BR", "pt_PT"), ("es", "en"), ("en_GB", "en")],
)
def test_the_template_for_a_customer_falls_back_by_language_then_to_the_default(
    bank, locale, expected
):
    for extra in ("fr", "pt_PT"):
        template_text_approved(bank, event_type=TXN, locale=extra, body="{amount}")

    found = selectors.message_template_for(bank=bank, event_type=TXN, locale=locale)

    assert found.locale == expected
