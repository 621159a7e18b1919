import base64
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import outbound
from messenger import (
    BadRequestError,
    BadTokenError,
    GraphClient,
    MessengerError,
    PageCredentials,
    builders,
)
from portal.audit import Actor
from portal.models import PAGE_TAKEN, Bank, MessengerIntegration
from portal.services.audit import audit_record

Status = MessengerIntegration.Status
CREDENTIAL_FIELDS = ("page_id", "page_access_token", "app_secret")
# Every Page webhook field the product uses (messenger-platform.md §2): what people write
# and tap, m.me referrals, delivery and read receipts, echoes of what the Page sent,
# reactions, account linking, opt-ins, Meta's policy actions, the standby channel and
# utility templates' reviews.
TEMPLATE_STATUS_FIELD = "message_template_status_update"
TEMPLATE_STATUS_FIELD_OLDER = "messenger_template_status_update"
SUBSCRIBED_FIELDS = (
    "messages",
    "messaging_postbacks",
    "messaging_referrals",
    "message_deliveries",
    "message_reads",
    "message_echoes",
    "message_reactions",
    "messaging_account_linking",
    "messaging_optins",
    "messaging_policy_enforcement",
    "standby",
    TEMPLATE_STATUS_FIELD,
)


# The chat's persistent menu (Messenger Profile API) and the Get Started button it needs.
# `MANAGE_SHARING_PAYLOAD` is answered by linking with a button to a fresh dashboard pass.
GET_STARTED_PAYLOAD = "GET_STARTED"
MANAGE_SHARING_PAYLOAD = "MANAGE_SHARING"
# Messenger's locales for the languages bankside speaks (the bank's own is `default`).
MENU_LOCALES = {"en": "en_US", "fr": "fr_FR", "de": "de_DE", "es": "es_ES"}


def messenger_profile_for(bank: Bank) -> dict[str, Any]:
    """The Page's Messenger profile as bankside sets it: Get Started, and a persistent menu
    with *Manage sharing* in each language bankside speaks, the bank's default first."""
    from django.utils.translation import gettext

    from portal.languages import speaking, speaking_locale

    def item() -> dict[str, str]:
        title = gettext("Manage sharing")
        return {"type": "postback", "title": title, "payload": MANAGE_SHARING_PAYLOAD}

    menus: dict[str, list[dict[str, str]]] = {}
    with speaking(speaking_locale("", bank.default_locale)):
        menus["default"] = [item()]
    for language, locale in MENU_LOCALES.items():
        with speaking(language):
            menus[locale] = [item()]
    return {
        "get_started": {"payload": GET_STARTED_PAYLOAD},
        "persistent_menu": builders.persistent_menu(menus),
    }


@dataclass(frozen=True)
class IntegrationChange:
    """An integration after a change, and the signing secret if this change generated one.

    `signing_secret` is the only moment the plaintext is handed out: show it once.
    """

    integration: MessengerIntegration
    signing_secret: str = ""


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of asking the Graph API whether the Page credentials work."""

    integration: MessengerIntegration
    ok: bool
    page_name: str = ""
    error: str = ""


def signing_secret_new() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def verify_token_new() -> str:
    return secrets.token_urlsafe(32)


@transaction.atomic
def integration_configure(
    *,
    actor: Actor,
    bank: Bank,
    page_id: str,
    page_access_token: str = "",
    app_secret: str = "",
    verify_token: str | None = None,
    callback_url: str = "",
    callback_signing_secret: str = "",
    send_rate_limit: int | None = None,
    app_id: str | None = None,
) -> IntegrationChange:
    """Store the bank's Page credentials (encrypted at rest).

    A blank token or secret keeps the stored one, so an edit form never shows them again.
    New credentials send the integration back to draft until the connection is checked.
    A signing secret for callbacks to the bank is generated with the integration.
    The callback URL must be https and public (`core.outbound`): staff must not be able
    to point bankside's calls at the network it runs in.
    The audit entry records which fields changed, never their values, except the Page's
    `send_rate_limit` (no secret), whose old and new values it records. None keeps the
    stored limit (300, the platform's, for a new integration); the delivery workers pick a
    change up with their next claim (`notifications.page_limits`).
    """
    callback_url = callback_url.strip()
    if callback_url:
        try:
            outbound.check_url(callback_url)
        except outbound.UnsafeURL as exc:
            raise ValidationError({"callback_url": str(exc)}) from exc
    integration = MessengerIntegration.objects.select_for_update().filter(bank=bank).first()
    created = integration is None
    if integration is None:
        integration = MessengerIntegration(bank=bank)
    generated = ""
    if not callback_signing_secret and not integration.callback_signing_secret:
        callback_signing_secret = generated = signing_secret_new()
    values = {
        "page_id": page_id.strip(),
        "page_access_token": page_access_token.strip() or integration.page_access_token,
        "app_secret": app_secret.strip() or integration.app_secret,
        "verify_token": verify_token or integration.verify_token or verify_token_new(),
        "callback_url": callback_url,
        "callback_signing_secret": callback_signing_secret or integration.callback_signing_secret,
        "send_rate_limit": integration.send_rate_limit
        if send_rate_limit is None
        else send_rate_limit,
        "app_id": integration.app_id if app_id is None else app_id.strip(),
    }
    old_rate_limit = integration.send_rate_limit
    changed = ["created"] if created else []
    for name, value in values.items():
        if getattr(integration, name, None) != value:
            changed.append(name)
            setattr(integration, name, value)
    if not changed:
        return IntegrationChange(integration)
    if created or any(name in changed for name in CREDENTIAL_FIELDS):
        integration.status = Status.DRAFT
        integration.status_reason = (
            "New credentials: check the connection to verify them."
            if created
            else "Credentials changed: check the connection again."
        )
        integration.paused_from = ""
        integration.page_name = ""
        integration.checked_at = None
    _refuse_another_bank_s_page(bank=bank, page_id=integration.page_id)
    integration.full_clean()
    try:
        with transaction.atomic():
            integration.save()
    except IntegrityError:
        _refuse_another_bank_s_page(bank=bank, page_id=integration.page_id)  # a concurrent save
        raise
    details: dict[str, object] = {"page_id": integration.page_id, "fields_changed": changed}
    if "send_rate_limit" in changed:
        details["send_rate_limit"] = [old_rate_limit, integration.send_rate_limit]
    audit_record(
        actor=actor,
        action="integration.configured",
        bank=bank,
        target=integration,
        details=details,
    )
    return IntegrationChange(integration, signing_secret=generated)


def _refuse_another_bank_s_page(*, bank: Bank, page_id: str) -> None:
    """A Page serves one bank: its webhooks, PSIDs and Send API calls are the Page's, so a
    bank naming another bank's Page could speak for that bank and reach its customers."""
    if page_id and MessengerIntegration.objects.filter(page_id=page_id).exclude(bank=bank).exists():
        raise ValidationError({"page_id": PAGE_TAKEN})


SIGNING_OVERLAP_MAX = timedelta(days=30)


@transaction.atomic
def integration_signing_secret_rotate(
    *, actor: Actor, integration: MessengerIntegration, overlap: timedelta = timedelta(0)
) -> IntegrationChange:
    """Replace the secret that signs calls to the bank.

    With an `overlap` (up to 30 days), callbacks are signed with both the new and the old
    secret until it ends, so the bank's receiver keeps accepting them whichever secret it
    holds while it switches; without one, the old secret stops signing at once. A secret
    still in an earlier overlap is dropped: only the last two ever sign.
    """
    if not timedelta(0) <= overlap <= SIGNING_OVERLAP_MAX:
        raise ValidationError({"overlap": "Choose an overlap from none to 30 days."})
    integration = _locked(integration)
    previous = integration.callback_signing_secret
    now = timezone.now()
    until = now + overlap if overlap and previous else None
    integration.callback_signing_secret_previous = previous if until else ""
    integration.callback_signing_secret_previous_until = until
    integration.callback_signing_secret = secret = signing_secret_new()
    integration.save(
        update_fields=[
            "callback_signing_secret",
            "callback_signing_secret_previous",
            "callback_signing_secret_previous_until",
            "updated_at",
        ]
    )
    audit_record(
        actor=actor,
        action="integration.signing_secret_rotated",
        bank=integration.bank,
        target=integration,
        details={
            "overlap_seconds": int(overlap.total_seconds()) if until else 0,
            "old_signature_sent_until": until.isoformat() if until else None,
        },
    )
    return IntegrationChange(integration, signing_secret=secret)


def integration_check(
    *, actor: Actor, integration: MessengerIntegration, client: GraphClient
) -> ConnectionCheck:
    """Check the Page ID, token and app secret against the Graph API and record the outcome.

    The HTTP call runs outside any transaction, so a slow Graph API never holds a lock.
    Success verifies a draft (a live or paused integration keeps its status), and a live
    integration's Page is subscribed to its webhooks again: Meta unsubscribes an app whose
    webhook failed for an hour. A bad token pauses the integration, since nothing can be
    sent with it; any other failure is reported and changes nothing.
    """
    try:
        page = client.page_check(page_credentials(integration))
    except MessengerError as exc:
        return _check_failed(actor=actor, integration=integration, error=exc)
    checked = _check_passed(
        actor=actor, integration=integration, page_name=page.name or "", resume=False
    )
    return _subscribed_if_live(actor=actor, check=checked, client=client)


def _subscribed_if_live(
    *, actor: Actor, check: ConnectionCheck, client: GraphClient
) -> ConnectionCheck:
    if check.integration.status != Status.LIVE:
        return check
    try:
        integration = integration_subscribe(
            actor=actor, integration=check.integration, client=client
        )
    except MessengerError as exc:
        return ConnectionCheck(
            check.integration,
            ok=False,
            page_name=check.page_name,
            error="The Page's credentials work, but subscribing it to webhooks failed: "
            + exc.user_message,
        )
    return ConnectionCheck(integration, ok=True, page_name=check.page_name)


def integration_subscribe(
    *, actor: Actor, integration: MessengerIntegration, client: GraphClient
) -> MessengerIntegration:
    """Subscribe the Page to every webhook field the product uses, and record it.

    The call runs outside any transaction. Meta's utility-messages page names the
    template-status field `message_template_status_update`; should the Graph API refuse
    that name, the older `messenger_template_status_update` is tried once. A failure is
    audited and raised (a bad token also pauses the integration).
    """
    try:
        fields = _subscribe_call(client, page_credentials(integration))
    except MessengerError as exc:
        _subscription_failed(actor=actor, integration=integration, error=exc)
        raise
    integration = _subscription_record(actor=actor, integration=integration, fields=fields)
    integration_menu_set(actor=actor, integration=integration, client=client)
    return integration


def integration_menu_set(
    *, actor: Actor, integration: MessengerIntegration, client: GraphClient
) -> bool:
    """Set the Page's Get Started button and persistent menu (*Manage sharing*), when the
    integration goes live and at each check of a live one; whether Messenger took it.

    The call runs outside any transaction. A failure is audited and reported, and does not
    stop the integration: customers can still manage sharing from the link confirmation.
    """
    profile = messenger_profile_for(integration.bank)
    try:
        client.messenger_profile_set(page_credentials(integration), profile)
    except MessengerError as exc:
        _menu_record(
            actor=actor,
            integration=integration,
            action="integration.menu_failed",
            details={"error": type(exc).__name__, "code": exc.code, "subcode": exc.subcode},
        )
        return False
    _menu_record(
        actor=actor,
        integration=integration,
        action="integration.menu_set",
        details={
            "locales": [menu["locale"] for menu in profile["persistent_menu"]],
            "payloads": [MANAGE_SHARING_PAYLOAD],
        },
    )
    return True


@transaction.atomic
def _menu_record(
    *, actor: Actor, integration: MessengerIntegration, action: str, details: dict[str, Any]
) -> None:
    audit_record(
        actor=actor, action=action, bank=integration.bank, target=integration, details=details
    )


def _subscribe_call(client: GraphClient, creds: PageCredentials) -> list[str]:
    fields = list(SUBSCRIBED_FIELDS)
    try:
        client.subscribed_apps_set(creds, fields)
    except BadRequestError as exc:
        if exc.code != 100 or TEMPLATE_STATUS_FIELD not in str(exc):
            raise
        fields = [TEMPLATE_STATUS_FIELD_OLDER if f == TEMPLATE_STATUS_FIELD else f for f in fields]
        client.subscribed_apps_set(creds, fields)
    return fields


@transaction.atomic
def _subscription_record(
    *, actor: Actor, integration: MessengerIntegration, fields: list[str]
) -> MessengerIntegration:
    integration = _locked(integration)
    integration.subscribed_fields = fields
    integration.subscribed_at = timezone.now()
    integration.subscribed_by = (actor.label or actor.type)[:200]
    integration.save(
        update_fields=["subscribed_fields", "subscribed_at", "subscribed_by", "updated_at"]
    )
    audit_record(
        actor=actor,
        action="integration.subscribed",
        bank=integration.bank,
        target=integration,
        details={"page_id": integration.page_id, "fields": fields},
    )
    return integration


@transaction.atomic
def _subscription_failed(
    *, actor: Actor, integration: MessengerIntegration, error: MessengerError
) -> None:
    integration = _locked(integration)
    previous = integration.status
    if isinstance(error, BadTokenError):
        _pause(integration, reason=error.user_message[:300])
        integration.save()
    audit_record(
        actor=actor,
        action="integration.subscription_failed",
        bank=integration.bank,
        target=integration,
        details={
            "error": type(error).__name__,
            "code": error.code,
            "subcode": error.subcode,
            "fbtrace_id": error.fbtrace_id,
            "status": [previous, integration.status],
        },
    )


def integration_resume(
    *, actor: Actor, integration: MessengerIntegration, client: GraphClient
) -> ConnectionCheck:
    """Resume a paused integration once its credentials check out again.

    It returns to the status it was paused from (a draft comes back verified). If the
    check fails the integration stays paused.
    """
    if integration.status != Status.PAUSED:
        raise ValidationError("Only a paused integration can be resumed.")
    try:
        page = client.page_check(page_credentials(integration))
    except MessengerError as exc:
        return _check_failed(actor=actor, integration=integration, error=exc)
    checked = _check_passed(
        actor=actor, integration=integration, page_name=page.name or "", resume=True
    )
    return _subscribed_if_live(actor=actor, check=checked, client=client)


def integration_go_live(
    *, actor: Actor, integration: MessengerIntegration, client: GraphClient
) -> MessengerIntegration:
    """Start sending to customers. Only a verified integration can go live, and only once
    its Page is subscribed to every webhook field the product uses (`SUBSCRIBED_FIELDS`):
    without them, what customers write and what Meta reports would never arrive."""
    integration = MessengerIntegration.objects.select_related("bank").get(pk=integration.pk)
    if integration.status != Status.VERIFIED:
        raise ValidationError(
            "Only a verified integration can go live: check the connection first."
        )
    try:
        integration = integration_subscribe(actor=actor, integration=integration, client=client)
    except MessengerError as exc:
        raise ValidationError(
            f"The Page could not be subscribed to webhooks, so it is not live: {exc.user_message}"
        ) from exc
    return _went_live(actor=actor, integration=integration)


@transaction.atomic
def _went_live(*, actor: Actor, integration: MessengerIntegration) -> MessengerIntegration:
    integration = _locked(integration)
    if integration.status != Status.VERIFIED:
        raise ValidationError(
            "Only a verified integration can go live: check the connection first."
        )
    integration.status = Status.LIVE
    integration.status_reason = ""
    integration.save(update_fields=["status", "status_reason", "updated_at"])
    audit_record(
        actor=actor, action="integration.went_live", bank=integration.bank, target=integration
    )
    return integration


@transaction.atomic
def integration_pause(
    *, actor: Actor, integration: MessengerIntegration, reason: str = ""
) -> MessengerIntegration:
    """Stop all sending for the bank until someone resumes it."""
    integration = _locked(integration)
    if integration.status == Status.PAUSED:
        raise ValidationError("The integration is already paused.")
    reason = reason.strip() or f"Paused by {actor.label or 'staff'}."
    _pause(integration, reason=reason[:300])
    integration.save()
    audit_record(
        actor=actor,
        action="integration.paused",
        bank=integration.bank,
        target=integration,
        details={"reason": integration.status_reason, "from": integration.paused_from},
    )
    return integration


def page_credentials(integration: MessengerIntegration) -> PageCredentials:
    return PageCredentials(
        page_id=integration.page_id,
        access_token=integration.page_access_token,
        app_secret=integration.app_secret,
    )


def _locked(integration: MessengerIntegration) -> MessengerIntegration:
    return (
        MessengerIntegration.objects.select_related("bank")
        .select_for_update()
        .get(pk=integration.pk)
    )


def _pause(integration: MessengerIntegration, *, reason: str) -> None:
    if integration.status != Status.PAUSED:
        integration.paused_from = integration.status
    integration.status = Status.PAUSED
    integration.status_reason = reason


@transaction.atomic
def _check_passed(
    *, actor: Actor, integration: MessengerIntegration, page_name: str, resume: bool
) -> ConnectionCheck:
    integration = _locked(integration)
    integration.page_name = page_name[:200]
    integration.checked_at = timezone.now()
    previous = integration.status
    resumable = (Status.VERIFIED, Status.LIVE)
    if resume and integration.status == Status.PAUSED:
        back_to = integration.paused_from
        integration.status = back_to if back_to in resumable else Status.VERIFIED
    elif integration.status == Status.DRAFT:
        integration.status = Status.VERIFIED
    if integration.status != previous:
        integration.status_reason = ""
        integration.paused_from = ""
    integration.save()
    audit_record(
        actor=actor,
        action="integration.resumed" if resume else "integration.checked",
        bank=integration.bank,
        target=integration,
        details={
            "outcome": "ok",
            "page_name": integration.page_name,
            "status": [previous, integration.status],
        },
    )
    return ConnectionCheck(integration, ok=True, page_name=integration.page_name)


@transaction.atomic
def _check_failed(
    *, actor: Actor, integration: MessengerIntegration, error: MessengerError
) -> ConnectionCheck:
    integration = _locked(integration)
    integration.checked_at = timezone.now()
    previous = integration.status
    if isinstance(error, BadTokenError):
        _pause(integration, reason=error.user_message[:300])
    integration.save()
    audit_record(
        actor=actor,
        action="integration.checked",
        bank=integration.bank,
        target=integration,
        details={
            "outcome": "failed",
            "error": type(error).__name__,
            "code": error.code,
            "subcode": error.subcode,
            "fbtrace_id": error.fbtrace_id,
            "status": [previous, integration.status],
        },
    )
    return ConnectionCheck(integration, ok=False, error=error.user_message)
