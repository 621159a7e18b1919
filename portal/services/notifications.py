"""Notification policies, consent settings and message templates: every write, audited.

A template's text changes only through its maker-checker history (`portal.services.versions`).
"""

import copy
import json
from collections.abc import Mapping
from datetime import time
from decimal import Decimal
from typing import TypedDict

from django.core.exceptions import ValidationError
from django.db import transaction

from portal.audit import Actor
from portal.events import EventType
from portal.models import (
    Bank,
    MessageTemplate,
    NotificationPolicy,
    NotificationSettings,
    TextVersion,
    locale_validator,
)
from portal.rendering import normalise_locale, validate_template
from portal.services.audit import audit_record
from portal.services.versions import (
    VersionedSubject,
    text_version_record_live,
    text_version_retire,
)
from portal.template_defaults import default_template_text

POLICY_FIELDS = (
    "enabled",
    "min_amount",
    "low_balance_below",
    "quiet_hours_start",
    "quiet_hours_end",
    "urgent",
)


@transaction.atomic
def notification_defaults_create(*, actor: Actor, bank: Bank) -> None:
    """Give a bank what every bank starts with, keeping whatever it already has.

    Consent settings (90 days, no essential scopes), a policy per event type (on, no
    thresholds, no quiet hours) and a template per event type in the default locale.
    """
    created: list[str] = []
    _, new = NotificationSettings.objects.get_or_create(bank=bank)
    if new:
        created.append("settings")
    for event_type in EventType.values:
        _, new = NotificationPolicy.objects.get_or_create(bank=bank, event_type=event_type)
        if new:
            created.append(f"policy:{event_type}")
            live = notification_policy_live_body(bank=bank, key=event_type)
            text_version_record_live(
                bank=bank, subject=POLICY_SUBJECT, key=event_type, body=live or ""
            )
    created += [
        f"template:{t.event_type}:{t.locale}" for t in _default_locale_templates_create(bank)
    ]
    if created:
        audit_record(
            actor=actor,
            action="notifications.defaults_created",
            bank=bank,
            target=bank,
            details={"created": created},
        )


@transaction.atomic
def message_templates_ensure_default_locale(*, actor: Actor, bank: Bank) -> list[MessageTemplate]:
    """Add a template in the bank's (new) default locale for each event type lacking one."""
    added = _default_locale_templates_create(bank)
    for template in added:
        _audit_template(actor, "message_template.created", template, body=template.body)
    return added


def _default_locale_templates_create(bank: Bank) -> list[MessageTemplate]:
    locale = normalise_locale(bank.default_locale)
    existing = set(
        MessageTemplate.objects.for_bank(bank)
        .filter(locale=locale)
        .values_list("event_type", flat=True)
    )
    created = [
        MessageTemplate.objects.create(
            bank=bank,
            event_type=event_type,
            locale=locale,
            body=default_template_text(event_type, locale),
        )
        for event_type in EventType.values
        if event_type not in existing
    ]
    for template in created:  # each default text is the first version of its history
        text_version_record_live(
            bank=bank,
            subject=TEMPLATE_SUBJECT,
            key=message_template_key(template.event_type, template.locale),
            body=template.body,
        )
    return created


@transaction.atomic
def notification_policy_update(
    *,
    actor: Actor,
    policy: NotificationPolicy,
    enabled: bool,
    min_amount: Decimal | None = None,
    low_balance_below: Decimal | None = None,
    quiet_hours_start: time | None = None,
    quiet_hours_end: time | None = None,
    urgent: bool = False,
) -> NotificationPolicy:
    """Change one event type's policy. Invalid combinations raise ValidationError by field.

    Marking a type `urgent` applies to its notifications written from then on: those
    already queued keep the class they were written with.

    The rules that make a combination invalid (a threshold on the wrong event type,
    half a quiet-hours window, quiet hours on fraud alerts) live on the model and in
    the database, so no caller can get around them.
    """
    policy = NotificationPolicy.objects.select_for_update().select_related("bank").get(pk=policy.pk)
    values = {
        "enabled": enabled,
        "min_amount": min_amount,
        "low_balance_below": low_balance_below,
        "quiet_hours_start": quiet_hours_start,
        "quiet_hours_end": quiet_hours_end,
        "urgent": urgent,
    }
    changed = {}
    for field, value in values.items():
        old = getattr(policy, field)
        if old != value:
            changed[field] = [old, value]
            setattr(policy, field, value)
    if not changed:
        return policy
    policy.full_clean()
    policy.save()
    audit_record(
        actor=actor,
        action="notification_policy.updated",
        bank=policy.bank,
        target=policy,
        details={"event_type": policy.event_type, "changed": changed},
    )
    return policy


POLICY_SUBJECT = "notification_policy"


def notification_policy_body(values: Mapping[str, object]) -> str:
    """A policy's values as a version stores them: JSON, one field a line, in form order."""

    def stored(value: object) -> object:
        if isinstance(value, Decimal):
            return str(value.quantize(Decimal("0.01")))  # as the column holds it
        if isinstance(value, time):
            return value.isoformat(timespec="minutes")
        return value

    return json.dumps({field: stored(values[field]) for field in POLICY_FIELDS}, indent=1)


class PolicyValues(TypedDict):
    enabled: bool
    min_amount: Decimal | None
    low_balance_below: Decimal | None
    quiet_hours_start: time | None
    quiet_hours_end: time | None
    urgent: bool


def notification_policy_values(body: str) -> PolicyValues:
    """The values a stored policy version holds (`notification_policy_body` read back)."""
    raw = json.loads(body)

    def amount(name: str) -> Decimal | None:
        return None if raw[name] is None else Decimal(raw[name])

    def clock(name: str) -> time | None:
        return None if raw[name] is None else time.fromisoformat(raw[name])

    return PolicyValues(
        enabled=bool(raw["enabled"]),
        min_amount=amount("min_amount"),
        low_balance_below=amount("low_balance_below"),
        quiet_hours_start=clock("quiet_hours_start"),
        quiet_hours_end=clock("quiet_hours_end"),
        urgent=bool(raw["urgent"]),
    )


def notification_policy_describe(body: str) -> str:
    """A stored policy version as staff read it, a line per rule."""
    values = notification_policy_values(body)
    lines = [f"Sent: {'yes' if values['enabled'] else 'no'}"]
    if values["min_amount"] is not None:
        lines.append(f"Only for amounts of at least {values['min_amount']}")
    if values["low_balance_below"] is not None:
        lines.append(f"Only when the balance is below {values['low_balance_below']}")
    start, end = values["quiet_hours_start"], values["quiet_hours_end"]
    if start is not None and end is not None:
        lines.append(f"Quiet hours: {start:%H:%M} to {end:%H:%M}")
    else:
        lines.append("Quiet hours: none")
    lines.append(f"Urgent: {'yes' if values['urgent'] else 'no'}")
    return "\n".join(lines)


def notification_policy_live_body(*, bank: Bank, key: str) -> str | None:
    policy = NotificationPolicy.objects.for_bank(bank).filter(event_type=key).first()
    if policy is None:
        return None
    return notification_policy_body({field: getattr(policy, field) for field in POLICY_FIELDS})


@transaction.atomic
def notification_policy_draft(
    *,
    actor: Actor,
    policy: NotificationPolicy,
    enabled: bool,
    min_amount: Decimal | None = None,
    low_balance_below: Decimal | None = None,
    quiet_hours_start: time | None = None,
    quiet_hours_end: time | None = None,
    urgent: bool = False,
) -> TextVersion:
    """Write a policy's next rules as a draft: the live policy decides what is sent until an
    admin other than the author approves it (`notification_policy_approve`). Invalid
    combinations are refused now, by field, as the model would refuse them."""
    policy = NotificationPolicy.objects.select_related("bank").get(pk=policy.pk)
    values = {
        "enabled": enabled,
        "min_amount": min_amount,
        "low_balance_below": low_balance_below,
        "quiet_hours_start": quiet_hours_start,
        "quiet_hours_end": quiet_hours_end,
        "urgent": urgent,
    }
    candidate = copy.copy(policy)  # the live row with the draft's values, never saved
    for field, value in values.items():
        setattr(candidate, field, value)
    candidate.full_clean()
    return VERSIONED_POLICIES.draft(
        actor=actor, bank=policy.bank, key=policy.event_type, body=notification_policy_body(values)
    )


def _policy_publish(version: TextVersion, actor: Actor) -> NotificationPolicy:
    """Write an approved version's rules to the live policy, as the approving admin."""
    policy = NotificationPolicy.objects.for_bank(version.bank).get(event_type=version.key)
    return notification_policy_update(
        actor=actor, policy=policy, **notification_policy_values(version.body)
    )


VERSIONED_POLICIES = VersionedSubject(
    subject=POLICY_SUBJECT,
    noun="a notification policy",
    live_body=notification_policy_live_body,
    publish=_policy_publish,
)
# A policy draft made live decides the events from then on; a rollback drafts a return to
# a policy's earlier live rules, approved like any draft.
notification_policy_approve = VERSIONED_POLICIES.approve
notification_policy_reject = VERSIONED_POLICIES.reject
notification_policy_rollback = VERSIONED_POLICIES.rollback


@transaction.atomic
def notification_settings_update(
    *, actor: Actor, bank: Bank, essential_scopes: list[str], consent_duration_days: int
) -> NotificationSettings:
    """Set which scopes the consent screen pre-selects and how many days consent lasts."""
    NotificationSettings.objects.get_or_create(bank=bank)
    settings_row = NotificationSettings.objects.select_for_update().get(bank=bank)
    before = {
        "essential_scopes": list(settings_row.essential_scopes),
        "consent_duration_days": settings_row.consent_duration_days,
    }
    settings_row.essential_scopes = list(essential_scopes)
    settings_row.consent_duration_days = consent_duration_days
    settings_row.full_clean()  # also puts the scopes in their canonical order
    after = {
        "essential_scopes": settings_row.essential_scopes,
        "consent_duration_days": settings_row.consent_duration_days,
    }
    changed = {key: [before[key], after[key]] for key in after if before[key] != after[key]}
    if not changed:
        return settings_row
    settings_row.save()
    audit_record(
        actor=actor,
        action="notification_settings.updated",
        bank=bank,
        target=settings_row,
        details={"changed": changed},
    )
    return settings_row


TEMPLATE_SUBJECT = "message_template"


def message_template_key(event_type: str, locale: str) -> str:
    """The name of one template's history (`TextVersion.key`): its event type and locale."""
    return f"{event_type}:{locale}"


def message_template_key_split(key: str) -> tuple[str, str]:
    event_type, _, locale = key.partition(":")
    return event_type, locale


@transaction.atomic
def hand_back_grace_update(*, actor: Actor, bank: Bank, minutes: int) -> NotificationSettings:
    """Set how long a routine update Messenger cannot carry waits before it is handed back
    to the bank's own channels (`notification.undeliverable`)."""
    NotificationSettings.objects.get_or_create(bank=bank)
    settings_row = NotificationSettings.objects.select_for_update().get(bank=bank)
    before = settings_row.hand_back_grace_minutes
    settings_row.hand_back_grace_minutes = minutes
    settings_row.full_clean()
    if before == minutes:
        return settings_row
    settings_row.save(update_fields=["hand_back_grace_minutes", "updated_at"])
    audit_record(
        actor=actor,
        action="notification_settings.updated",
        bank=bank,
        target=settings_row,
        details={"changed": {"hand_back_grace_minutes": [before, minutes]}},
    )
    return settings_row


@transaction.atomic
def message_template_draft(
    *, actor: Actor, bank: Bank, event_type: str, locale: str, body: str
) -> TextVersion:
    """Write a template's next text (in a new language, or a change) as a draft.

    Customers keep reading the live template, or the default language's, until an admin
    other than the author approves the draft (`message_template_approve`). The text must
    suit the event type's placeholders and hold no card number.
    """
    if event_type not in EventType.values:
        raise ValidationError({"event_type": "Choose an event type."})
    locale = normalise_locale(locale)
    try:
        locale_validator(locale)
    except ValidationError as exc:
        raise ValidationError({"locale": exc.messages}) from None
    validate_template(body, event_type)
    return VERSIONED_TEMPLATES.draft(
        actor=actor, bank=bank, key=message_template_key(event_type, locale), body=body
    )


def message_template_live_body(*, bank: Bank, key: str) -> str | None:
    event_type, locale = message_template_key_split(key)
    live = MessageTemplate.objects.for_bank(bank).filter(event_type=event_type, locale=locale)
    return live.values_list("body", flat=True).first()


def message_template_publish(version: TextVersion) -> MessageTemplate:
    """Write an approved version to its live template (a new language's is created)."""
    event_type, locale = message_template_key_split(version.key)
    template = (
        MessageTemplate.objects.select_for_update()
        .filter(bank=version.bank, event_type=event_type, locale=locale)
        .first()
    )
    if template is None:
        template = MessageTemplate(
            bank=version.bank, event_type=event_type, locale=locale, body=version.body
        )
    template.body = version.body
    template.full_clean()
    template.save()
    return template


def _template_check(version: TextVersion) -> None:
    validate_template(version.body, message_template_key_split(version.key)[0])


VERSIONED_TEMPLATES = VersionedSubject(
    subject=TEMPLATE_SUBJECT,
    noun="a message template",
    live_body=message_template_live_body,
    publish=lambda version, actor: message_template_publish(version),
    check=_template_check,  # the text still suits its event type's placeholders
)
# A template draft made live is what customers get from then on; a rollback drafts a
# return to an earlier live text, approved like any draft.
message_template_approve = VERSIONED_TEMPLATES.approve
message_template_reject = VERSIONED_TEMPLATES.reject
message_template_rollback = VERSIONED_TEMPLATES.rollback


@transaction.atomic
def message_template_delete(*, actor: Actor, template: MessageTemplate) -> None:
    """Remove a template for an extra language. The default locale's template stays."""
    template = (
        MessageTemplate.objects.select_for_update().select_related("bank").get(pk=template.pk)
    )
    if template.locale == normalise_locale(template.bank.default_locale):
        raise ValidationError(
            "This is the bank's default language: every event type needs a template in it."
        )
    _audit_template(actor, "message_template.deleted", template, body_before=template.body)
    template.delete()
    text_version_retire(
        bank=template.bank,
        subject=TEMPLATE_SUBJECT,
        key=message_template_key(template.event_type, template.locale),
    )


def _audit_template(
    actor: Actor,
    action: str,
    template: MessageTemplate,
    *,
    body: str | None = None,
    body_before: str | None = None,
) -> None:
    details = {"event_type": template.event_type, "locale": template.locale}
    if body_before is not None:
        details["body_before"] = body_before
    if body is not None:
        details["body"] = body
    audit_record(actor=actor, action=action, bank=template.bank, target=template, details=details)
