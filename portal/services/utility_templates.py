"""Registering message templates with Meta as utility templates, and following their review."""

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from messenger import GraphClient, MessengerError, TemplateInfo
from portal.audit import Actor
from portal.events import SAMPLE_DATA
from portal.models import Bank, MessageTemplate, MessengerIntegration, UtilityTemplate
from portal.rendering import placeholder_value, to_platform
from portal.services.audit import audit_record
from portal.services.integration import page_credentials

_META_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
_NAME_UNSAFE = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class UtilityOutcome:
    """What a call to Meta about a utility template came to; `error` is for staff to read."""

    utility_template: UtilityTemplate | None
    ok: bool
    error: str = ""


def meta_language(locale: str) -> str:
    """The language code Meta takes for `locale`: `en`, `pt_BR`; else just the language."""
    return locale if _META_LANGUAGE.match(locale) else locale.split("_", 1)[0]


def utility_template_name(bank: Bank, event_type: str, version: int) -> str:
    """`harbour_transaction_posted_v2`: lowercase letters, digits and underscores, as Meta wants."""
    stem = _NAME_UNSAFE.sub("_", f"{bank.slug}_{event_type}".lower()).strip("_")
    return f"{stem}_v{version}"


def utility_template_register(
    *, actor: Actor, template: MessageTemplate, client: GraphClient
) -> UtilityOutcome:
    """Submit `template` to Meta for review as a UTILITY template.

    `{placeholder}` fields become `{{1}}`, `{{2}}`… with examples rendered from the
    sample data (masked and formatted as a customer would see them). The HTTP call runs
    outside any transaction; the registration and its audit entry are written after it,
    and a refusal is audited with Meta's error code and shown with its user message.
    """
    template = MessageTemplate.objects.select_related("bank").get(pk=template.pk)
    bank = template.bank
    integration = MessengerIntegration.objects.for_bank(bank).first()
    if integration is None:
        raise ValidationError("Enter the Page credentials before registering templates.")
    platform = to_platform(template.body)
    examples = [
        placeholder_value(name, SAMPLE_DATA[template.event_type], locale=template.locale) or "-"
        for name in platform.param_names
    ]
    latest = (
        UtilityTemplate.objects.for_bank(bank)
        .filter(event_type=template.event_type, locale=template.locale)
        .aggregate(latest=Max("version"))["latest"]
    )
    version = (latest or 0) + 1
    name = utility_template_name(bank, template.event_type, version)
    language = meta_language(template.locale)
    try:
        info = client.message_template_create(
            page_credentials(integration),
            name=name,
            language=language,
            body_text=platform.body,
            example_params=examples,
        )
    except MessengerError as exc:
        _audit_failure(actor, template, "utility_template.registration_failed", exc, name=name)
        return UtilityOutcome(None, ok=False, error=exc.user_message)
    except ValueError as exc:
        raise ValidationError(f"This template cannot be registered: {exc}.") from None
    return UtilityOutcome(
        _registered(
            actor=actor,
            template=template,
            info=info,
            version=version,
            name=name,
            language=language,
            platform_body=platform.body,
            param_names=list(platform.param_names),
        ),
        ok=True,
    )


@transaction.atomic
def _registered(
    *,
    actor: Actor,
    template: MessageTemplate,
    info: TemplateInfo,
    version: int,
    name: str,
    language: str,
    platform_body: str,
    param_names: list[str],
) -> UtilityTemplate:
    utility = UtilityTemplate.objects.create(
        bank=template.bank,
        message_template=template,
        event_type=template.event_type,
        locale=template.locale,
        version=version,
        name=info.name or name,
        language=language,
        platform_template_id=info.id,
        source_body=template.body,
        platform_body=platform_body,
        param_names=param_names,
        status=(info.status or UtilityTemplate.Status.PENDING).upper(),
        rejected_reason=_reason(info.rejected_reason),
        status_checked_at=timezone.now(),
    )
    audit_record(
        actor=actor,
        action="utility_template.submitted",
        bank=template.bank,
        target=utility,
        details={
            "event_type": template.event_type,
            "locale": template.locale,
            "name": utility.name,
            "language": language,
            "platform_template_id": info.id,
            "body": platform_body,
            "param_names": param_names,
            "status": utility.status,
        },
    )
    return utility


def utility_template_refresh(
    *, actor: Actor, utility_template: UtilityTemplate, client: GraphClient
) -> UtilityOutcome:
    """Ask Meta for the template's review status now and record it."""
    utility = UtilityTemplate.objects.select_related("bank", "message_template").get(
        pk=utility_template.pk
    )
    integration = MessengerIntegration.objects.for_bank(utility.bank).first()
    if integration is None:
        raise ValidationError("Enter the Page credentials first.")
    try:
        info = client.message_template_status(
            page_credentials(integration), utility.platform_template_id
        )
    except MessengerError as exc:
        _audit_failure(
            actor, utility.message_template, "utility_template.refresh_failed", exc, utility=utility
        )
        return UtilityOutcome(utility, ok=False, error=exc.user_message)
    updated = utility_template_status_record(
        actor=actor,
        bank=utility.bank,
        platform_template_id=utility.platform_template_id,
        status=info.status or utility.status,
        reason=info.rejected_reason or "",
    )
    return UtilityOutcome(updated, ok=True)


@transaction.atomic
def utility_template_status_record(
    *, actor: Actor, bank: Bank, platform_template_id: str, status: str, reason: str = ""
) -> UtilityTemplate | None:
    """Record a template's review status, from a refresh or Meta's status webhook.

    Returns None for a template id this bank never registered. An unchanged status
    only notes when it was checked; a change is audited.
    """
    utility = (
        UtilityTemplate.objects.for_bank(bank)
        .select_for_update()
        .filter(platform_template_id=platform_template_id)
        .first()
    )
    if utility is None:
        return None
    status = (status or "").strip().upper()[:24] or utility.status
    reason = _reason(reason)
    previous = [utility.status, utility.rejected_reason]
    utility.status, utility.rejected_reason = status, reason
    utility.status_checked_at = timezone.now()
    utility.save(update_fields=["status", "rejected_reason", "status_checked_at"])
    if previous != [status, reason]:
        audit_record(
            actor=actor,
            action="utility_template.status_changed",
            bank=bank,
            target=utility,
            details={
                "name": utility.name,
                "language": utility.language,
                "status": [previous[0], status],
                "reason": reason,
            },
        )
    return utility


def _reason(value: str | None) -> str:
    """Meta answers "NONE" when there is no rejection reason."""
    value = (value or "").strip()
    return "" if value.upper() == "NONE" else value[:300]


@transaction.atomic
def _audit_failure(
    actor: Actor,
    template: MessageTemplate,
    action: str,
    error: MessengerError,
    *,
    name: str = "",
    utility: UtilityTemplate | None = None,
) -> None:
    audit_record(
        actor=actor,
        action=action,
        bank=template.bank,
        target=utility or template,
        details={
            "event_type": template.event_type,
            "locale": template.locale,
            "name": utility.name if utility else name,
            "error": type(error).__name__,
            "code": error.code,
            "subcode": error.subcode,
            "fbtrace_id": error.fbtrace_id,
        },
    )
