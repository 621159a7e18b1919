"""Managing what a linked customer shares, without linking again: the texts they agreed
to, the versions of a consent, changing its accounts and updates, stopping after a
confirmation, and the short-lived dashboard sign-in the chat's *Manage sharing* sends.

Renewal, which PSD2 ties to a fresh sign-in with the bank, is `consents.consent_renew`.
"""

import secrets
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from linking import signals
from linking.models import (
    Account,
    Consent,
    ConsentEvent,
    Customer,
    DashboardPass,
    LinkMessage,
)
from linking.services.consents import CONSENT_ACTOR, consent_choice_check, consent_revoke
from linking.services.texts import consent_text_record, consent_version_record
from portal.audit import Actor
from portal.models import Bank
from portal.services import audit_record
from portal.services.integration import MANAGE_SHARING_PAYLOAD

Status = Consent.Status
# MANAGE_SHARING_PAYLOAD: the chat's *Manage sharing* (persistent menu and the
# confirmation's button), answered with a button to a fresh dashboard pass.
__all__ = ["MANAGE_SHARING_PAYLOAD"]


class StopNotConfirmedError(Exception):
    """Stopping was asked for without the customer confirming what stops."""


class DashboardPassRefusedError(Exception):
    """A dashboard pass that cannot sign anyone in: unknown, used, expired or foreign."""


@transaction.atomic
def consent_change(
    *,
    consent: Consent,
    actor: Actor,
    accounts: list[Account],
    scopes: list[str],
    text: str,
    language: str,
) -> Consent:
    """Change which accounts and which updates a live consent shares, without linking again.

    A new version of the consent is recorded with the words the customer confirmed, a
    timeline entry and an audit entry. Within this transaction the apps above hear of it
    (`signals.sharing_changed`), so that updates already queued for what is no longer
    shared are cancelled with the change or not at all; later events follow the new terms.
    The end date does not move: renewing is a separate, re-authenticated step.
    """
    consent = Consent.objects.select_for_update().select_related("bank").get(pk=consent.pk)
    if consent.status != Status.AUTHORISED:
        raise ValidationError(_("This consent has ended: link again from Messenger to share."))
    customer = Customer.objects.get(pk=consent.customer_id)
    scopes = consent_choice_check(
        customer=customer, accounts=accounts, scopes=scopes, duration_days=consent.duration_days
    )
    before_accounts = sorted(a.external_id for a in consent.accounts.all())
    after_accounts = sorted(a.external_id for a in accounts)
    before_scopes = sorted(consent.scopes)
    if before_accounts == after_accounts and before_scopes == scopes:
        raise ValidationError(_("Nothing was changed: choose other accounts or updates."))
    stored = consent_text_record(bank=consent.bank, body=text, language=language)
    if not consent.versions.exists():  # given before versions were kept: version 1 first
        consent_version_record(
            consent=consent,
            accounts=list(consent.accounts.all()),
            scopes=consent.scopes,
            text=consent.text,
        )
    version = consent_version_record(consent=consent, accounts=accounts, scopes=scopes, text=stored)
    consent.scopes = scopes
    consent.text = stored
    consent.save(update_fields=["scopes", "text"])
    consent.accounts.set(accounts)
    ConsentEvent.objects.create(
        consent=consent,
        from_status=Status.AUTHORISED,
        to_status=Status.AUTHORISED,
        actor=CONSENT_ACTOR[actor.type],
        actor_label=actor.label,
        reason=f"Changed what is shared (version {version.number})",
    )
    audit_record(
        actor=actor,
        action="consent.changed",
        bank=consent.bank,
        target=consent,
        details={
            "version": version.number,
            "text_digest": stored.digest,
            "accounts": {"before": before_accounts, "after": after_accounts},
            "scopes": {"before": before_scopes, "after": scopes},
        },
        data_categories=scopes,
    )
    signals.sharing_changed.send(
        sender=Consent,
        consent_id=consent.pk,
        scopes=list(scopes),
        account_ids=[a.pk for a in accounts],
    )
    return consent


def consent_stop(
    *, consent: Consent, actor: Actor, confirmed: bool, reason: str = "Withdrawn by the customer"
) -> Consent:
    """The customer stops sharing, after a page that said what stops: only a confirmed
    request revokes (`consent_revoke` does the rest: the link ends, pending updates stop,
    Messenger and the bank are told)."""
    if not confirmed:
        raise StopNotConfirmedError("stopping needs the customer's confirmation")
    return consent_revoke(consent=consent, actor=actor, reason=reason)


def manage_link_schedule(*, consent: Consent, now: datetime | None = None) -> LinkMessage:
    """The customer tapped *Manage sharing* in the chat: owe them, in the caller's
    transaction, a button to a fresh dashboard pass. The pass is minted when the message
    is sent, so it is as fresh as the message."""
    from linking.services.link_messages import GRACE

    now = now or timezone.now()
    return LinkMessage.objects.create(
        bank_id=consent.bank_id,
        consent=consent,
        kind=LinkMessage.Kind.MANAGE_LINK,
        expires_at=None,
        next_attempt_at=now + GRACE,
    )


def link_manage_requested(*, bank: Bank, page_id: str, psid: str) -> LinkMessage | None:
    """*Manage sharing* from a chat: its live link is owed a dashboard pass; a chat with no
    live link gets nothing here (the conversation answers it as unlinked). Taps while an
    answer is still waiting to go out share that answer."""
    consent = (
        Consent.objects.select_for_update()
        .filter(bank=bank, page_id=page_id, psid=psid, status=Status.AUTHORISED)
        .first()
    )
    if consent is None:
        return None
    waiting = LinkMessage.objects.filter(
        consent=consent, kind=LinkMessage.Kind.MANAGE_LINK, state=LinkMessage.State.PENDING
    ).first()
    if waiting is not None:
        return waiting
    message = manage_link_schedule(consent=consent)
    audit_record(
        actor=Actor("customer", str(consent.customer_id), "customer in Messenger"),
        action="dashboard_pass.requested",
        bank=bank,
        target=consent,
    )
    from linking import tasks

    message_id = message.pk
    transaction.on_commit(lambda: tasks.send_link_message.delay(message_id))
    return message


def dashboard_pass_issue(*, consent: Consent, now: datetime | None = None) -> str:
    """Mint a single-use pass for `consent`'s customer; the token is returned, its digest
    stored."""
    now = now or timezone.now()
    token = secrets.token_urlsafe(32)
    DashboardPass.objects.create(
        bank_id=consent.bank_id,
        consent=consent,
        token_digest=DashboardPass.digest(token),
        expires_at=now + timedelta(minutes=DashboardPass.LIFETIME_MINUTES),
    )
    return token


def dashboard_pass_redeem(*, bank: Bank, token: str, now: datetime | None = None) -> Customer:
    """Spend a pass: the customer it signs in. Refused, and the attempt audited, when it is
    unknown, another bank's, used, expired, or its link has ended."""
    try:
        with transaction.atomic():
            return _dashboard_pass_redeem(bank=bank, token=token, now=now or timezone.now())
    except DashboardPassRefusedError as refused:
        audit_record(
            actor=Actor("customer", "", "someone with a dashboard link"),
            action="dashboard_pass.refused",
            bank=bank,
            target_type="linking.dashboardpass",
            details={"reason": str(refused)},
        )
        raise


def _dashboard_pass_redeem(*, bank: Bank, token: str, now: datetime) -> Customer:
    found = (
        DashboardPass.objects.select_for_update()
        .select_related("consent")
        .filter(token_digest=DashboardPass.digest(token))
        .first()
        if token and len(token) <= 200
        else None
    )
    if found is None:
        raise DashboardPassRefusedError("unknown")
    if found.bank_id != bank.pk:
        raise DashboardPassRefusedError("another bank's")
    if found.used_at is not None:
        raise DashboardPassRefusedError("already used")
    if found.expires_at <= now:
        raise DashboardPassRefusedError("expired")
    if found.consent.status != Status.AUTHORISED:
        raise DashboardPassRefusedError(f"consent {found.consent.status}")
    found.used_at = now
    found.save(update_fields=["used_at"])
    customer = Customer.objects.get(pk=found.consent.customer_id, bank=bank)
    audit_record(
        actor=Actor("customer", str(customer.pk), f"customer {customer.external_id}"),
        action="dashboard_pass.used",
        bank=bank,
        target=found.consent,
    )
    return customer
