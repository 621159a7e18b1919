from dataclasses import dataclass

from django.db import transaction

from portal.audit import Actor
from portal.models import ApiKey, Bank, MessengerIntegration
from portal.models.banks import disclosure_required
from portal.services.api_keys import api_key_create
from portal.services.audit import audit_record
from portal.services.integration import integration_configure
from portal.services.notifications import (
    message_templates_ensure_default_locale,
    notification_defaults_create,
)


@transaction.atomic
def bank_create(
    *,
    actor: Actor,
    name: str,
    slug: str,
    timezone_name: str = "UTC",
    country: str = "",
    default_locale: str = "en",
    support_email: str = "",
    support_phone: str = "",
    require_2fa_for_all: bool = False,
    idle_timeout_minutes: int = 15,
    disclose_automation: bool | None = None,
) -> Bank:
    """Create a bank with its notification defaults; invalid fields raise ValidationError
    and nothing is written. The automated-chat disclosure starts on where the bank's
    region requires it (by its country, else its time zone), unless `disclose_automation`
    says otherwise."""
    country = country.strip().upper()
    if disclose_automation is None:
        disclose_automation = disclosure_required(timezone_name, country)
    bank = Bank(
        name=name,
        slug=slug,
        timezone=timezone_name,
        country=country,
        default_locale=default_locale,
        support_email=support_email,
        support_phone=support_phone,
        require_2fa_for_all=require_2fa_for_all,
        idle_timeout_minutes=idle_timeout_minutes,
        disclose_automation=disclose_automation,
    )
    bank.full_clean()
    bank.save()
    audit_record(
        actor=actor,
        action="bank.created",
        bank=bank,
        target=bank,
        details={
            "name": name,
            "slug": slug,
            "timezone": timezone_name,
            "country": country,
            "default_locale": default_locale,
            "require_2fa_for_all": require_2fa_for_all,
            "idle_timeout_minutes": idle_timeout_minutes,
            "disclose_automation": disclose_automation,
        },
    )
    notification_defaults_create(actor=actor, bank=bank)
    return bank


@transaction.atomic
def bank_update(
    *,
    actor: Actor,
    bank: Bank,
    name: str,
    timezone_name: str,
    default_locale: str,
    support_email: str = "",
    support_phone: str = "",
    require_2fa_for_all: bool | None = None,
    idle_timeout_minutes: int | None = None,
    disclose_automation: bool | None = None,
    country: str | None = None,
) -> Bank:
    """Change a bank's settings. The slug never changes: Meta and the bank hold URLs with it.

    A new default locale gets a template for every event type that lacks one in it. A
    new country leaves the disclosure as it is: it is the admins' to change.
    """
    bank = Bank.objects.select_for_update().get(pk=bank.pk)
    values = {
        "name": name,
        "timezone": timezone_name,
        "country": bank.country if country is None else country.strip().upper(),
        "default_locale": default_locale,
        "support_email": support_email,
        "support_phone": support_phone,
        "require_2fa_for_all": bank.require_2fa_for_all
        if require_2fa_for_all is None
        else require_2fa_for_all,
        "idle_timeout_minutes": bank.idle_timeout_minutes
        if idle_timeout_minutes is None
        else idle_timeout_minutes,
        "disclose_automation": bank.disclose_automation
        if disclose_automation is None
        else disclose_automation,
    }
    changed = {}
    for field, value in values.items():
        if getattr(bank, field) != value:
            changed[field] = value
            setattr(bank, field, value)
    if not changed:
        return bank
    bank.full_clean()
    bank.save()
    audit_record(
        actor=actor, action="bank.updated", bank=bank, target=bank, details={"changed": changed}
    )
    if "default_locale" in changed:
        message_templates_ensure_default_locale(actor=actor, bank=bank)
    return bank


@dataclass(frozen=True)
class OnboardedBank:
    """What `bank_onboard` created, with the secrets that are shown this once."""

    bank: Bank
    integration: MessengerIntegration
    api_key: ApiKey
    api_key_secret: str
    signing_secret: str


@transaction.atomic
def bank_onboard(
    *,
    actor: Actor,
    name: str,
    slug: str,
    page_id: str,
    page_access_token: str,
    app_secret: str,
    verify_token: str | None = None,
    callback_url: str = "",
    api_key_name: str = "Core banking",
    app_id: str = "",
    support_phone: str = "",
    country: str = "",
) -> OnboardedBank:
    """Create a bank, its Messenger integration and a first API key in one transaction.

    Any invalid value raises ValidationError and nothing at all is written.
    """
    bank = bank_create(
        actor=actor, name=name, slug=slug, support_phone=support_phone, country=country
    )
    configured = integration_configure(
        actor=actor,
        bank=bank,
        page_id=page_id,
        page_access_token=page_access_token,
        app_secret=app_secret,
        verify_token=verify_token,
        callback_url=callback_url,
        app_id=app_id,
    )
    issued = api_key_create(actor=actor, bank=bank, name=api_key_name)
    return OnboardedBank(
        bank=bank,
        integration=configured.integration,
        api_key=issued.api_key,
        api_key_secret=issued.secret,
        signing_secret=configured.signing_secret,
    )
