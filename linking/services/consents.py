"""The consent lifecycle and the Messenger link: authorise or reject, bind, revoke,
expire, renew and remind; each transition recorded on the consent and audited."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.digests import sha256_hex
from linking import signals
from linking.models import (
    Account,
    AuthorizationCode,
    Consent,
    ConsentEvent,
    Customer,
    LinkingTokenUse,
    LinkMessage,
)
from linking.services.link_messages import link_message_about_schedule, link_message_schedule
from linking.services.texts import consent_terms_record
from linking.services.unlinks import platform_unlink_schedule
from portal.audit import Actor
from portal.models import Bank
from portal.pseudonyms import pseudonym
from portal.services import audit_record

Status = Consent.Status

ALLOWED_TRANSITIONS = {
    "": {Status.AWAITING_AUTHORISATION},
    Status.AWAITING_AUTHORISATION: {Status.AUTHORISED, Status.REJECTED},
    Status.AUTHORISED: {Status.REVOKED, Status.EXPIRED},
}
# The actor column of a consent transition, for each kind of audit actor.
CONSENT_ACTOR = {
    "customer": ConsentEvent.Actor.CUSTOMER,
    "staff": ConsentEvent.Actor.STAFF,
    "platform": ConsentEvent.Actor.PLATFORM,
    "system": ConsentEvent.Actor.SYSTEM,
    "api_key": ConsentEvent.Actor.SYSTEM,
}
MAX_DURATION_DAYS = 365
MESSENGER_NAME_MAX = 80
LINK_CREATED = "link.created"
LINK_ENDED = "link.ended"


class EndedBecause:
    """Why a link ended, as `link.ended` tells the bank (its `reason`)."""

    CUSTOMER_STOPPED = "customer_stopped"
    NOT_MADE_BY_CUSTOMER = "not_made_by_customer"
    UNLINKED_IN_MESSENGER = "unlinked_in_messenger"
    REPLACED = "replaced"
    EXPIRED = "expired"
    BANK_STAFF = "bank_staff"
    BANK = "bank"
    ERASED = "erased"


ENDED_BY_ACTOR = {
    "customer": EndedBecause.CUSTOMER_STOPPED,
    "staff": EndedBecause.BANK_STAFF,
    "platform": EndedBecause.UNLINKED_IN_MESSENGER,
    "system": EndedBecause.BANK,
    "api_key": EndedBecause.BANK,
}


class LinkRefusedError(Exception):
    """An `authorization_code` that cannot bind a link: unknown, used, expired or foreign."""


class LinkingTokenUsedError(Exception):
    """An `account_linking_token` that has already completed a Log In."""


def _linking_token_spend(*, bank: Bank, token: str) -> str:
    """Record that `token` completed a Log In; raise LinkingTokenUsedError if it had.

    The insert is the check: of two flows finishing with one token at the same moment,
    the second waits on the first's row and then fails on the unique digest.
    """
    digest = LinkingTokenUse.digest(token)
    try:
        with transaction.atomic():
            LinkingTokenUse.objects.create(bank=bank, token_digest=digest)
    except IntegrityError as exc:
        raise LinkingTokenUsedError("this account_linking_token was already used") from exc
    return digest


def customer_actor(customer: Customer) -> Actor:
    """The customer as an actor: named by the bank's id, never by name, since audit
    entries cannot be erased."""
    return Actor("customer", str(customer.pk), f"customer {customer.external_id}")


PLATFORM = Actor("platform", "", "Messenger")


# Consent lifecycle


def _transition(consent: Consent, to: str, *, actor: Actor, reason: str) -> None:
    current = consent.status if consent.pk else ""
    if to not in ALLOWED_TRANSITIONS.get(current, set()):
        raise ValueError(f"A consent cannot go from {current or 'nothing'} to {to}.")
    consent.status = to
    if consent.pk is None:
        consent.save()
    ConsentEvent.objects.create(
        consent=consent,
        from_status=current,
        to_status=to,
        actor=CONSENT_ACTOR[actor.type],
        actor_label=actor.label,
        reason=reason,
    )


def _consent_details(consent: Consent) -> dict[str, Any]:
    return {
        "scopes": consent.scopes,
        "accounts": [a.external_id for a in consent.accounts.all()],
        "status": consent.status,
    }


def consent_choice_check(
    *, customer: Customer, accounts: list[Account], scopes: list[str], duration_days: int
) -> list[str]:
    """What the customer chose on the consent screen, checked; the scopes, sorted."""
    if not accounts:
        raise ValidationError(_("Choose at least one account to share."))
    if any(a.customer_id != customer.pk or not a.active for a in accounts):
        raise ValidationError(_("Only your own active accounts can be shared."))
    scopes = sorted(set(scopes))
    if not scopes or not set(scopes) <= set(Consent.Scope.values):
        raise ValidationError(_("Choose at least one kind of update."))
    if not 1 <= duration_days <= MAX_DURATION_DAYS:
        raise ValidationError(
            _("A consent lasts from 1 to %(days)d days.") % {"days": MAX_DURATION_DAYS}
        )
    return scopes


@dataclass(frozen=True)
class GrantedConsent:
    consent: Consent
    authorization_code: str


@transaction.atomic
def consent_authorise(
    *,
    customer: Customer,
    accounts: list[Account],
    scopes: list[str],
    duration_days: int,
    purpose: str,
    page_id: str,
    account_linking_token: str,
    messenger_name: str = "",
    text: str = "",
    language: str = "",
) -> GrantedConsent:
    """The customer allows: store the consent and mint its single-use authorization code.

    The Log In's `account_linking_token` is spent here: a token that already completed a
    Log In raises LinkingTokenUsedError and nothing is written. `messenger_name` is the
    Messenger account's minimised name the consent screen showed, if it could; `text` the
    words it showed, in `language`, kept as the proof of consent (`ConsentText`).
    """
    messenger_name = " ".join(messenger_name.split())
    if len(messenger_name) > MESSENGER_NAME_MAX:
        raise ValidationError(f"A Messenger name has at most {MESSENGER_NAME_MAX} characters.")
    scopes = consent_choice_check(
        customer=customer, accounts=accounts, scopes=scopes, duration_days=duration_days
    )
    token_digest = _linking_token_spend(bank=customer.bank, token=account_linking_token)
    actor = customer_actor(customer)
    now = timezone.now()
    consent = Consent(
        bank=customer.bank,
        customer=customer,
        scopes=scopes,
        purpose=purpose,
        duration_days=duration_days,
        page_id=page_id,
        messenger_name=messenger_name,
    )
    _transition(consent, Status.AWAITING_AUTHORISATION, actor=actor, reason="Log In from Messenger")
    consent.accounts.set(accounts)
    _transition(consent, Status.AUTHORISED, actor=actor, reason="Allowed on the consent screen")
    consent.granted_at, consent.expires_at = now, now + timedelta(days=duration_days)
    consent.save()
    consent_terms_record(consent=consent, text=text, language=language)
    code = secrets.token_urlsafe(32)
    AuthorizationCode.objects.create(
        consent=consent,
        bank=customer.bank,
        code_hash=sha256_hex(code),
        linking_token_hash=token_digest,
        expires_at=now + timedelta(minutes=AuthorizationCode.LIFETIME_MINUTES),
    )
    audit_record(
        actor=actor,
        action="consent.authorised",
        bank=customer.bank,
        target=consent,
        details={**_consent_details(consent), "expires_at": consent.expires_at},
        data_categories=scopes,
    )
    return GrantedConsent(consent, code)


@transaction.atomic
def consent_reject(*, customer: Customer, page_id: str, account_linking_token: str) -> Consent:
    """The customer denies: the consent is recorded as rejected and nothing is shared.

    Denying completes the Log In too: its `account_linking_token` is spent.
    """
    _linking_token_spend(bank=customer.bank, token=account_linking_token)
    actor = customer_actor(customer)
    consent = Consent(
        bank=customer.bank,
        customer=customer,
        scopes=[],
        purpose="",
        duration_days=0,
        page_id=page_id,
    )
    _transition(consent, Status.AWAITING_AUTHORISATION, actor=actor, reason="Log In from Messenger")
    _transition(consent, Status.REJECTED, actor=actor, reason="Denied on the consent screen")
    consent.ended_at = timezone.now()
    consent.save()
    audit_record(actor=actor, action="consent.rejected", bank=customer.bank, target=consent)
    return consent


def link_bind(*, bank: Bank, page_id: str, psid: str, authorization_code: str) -> Consent:
    """Bind a Messenger PSID to the consent behind `authorization_code`, once.

    The code must be this bank's, unused and unexpired. A person already linked on this
    Page has their old link revoked and replaced, explicitly. Each of the customer's other
    linked chats is owed a notice of the new link (with "That wasn't me", `new_links`), and
    the bank a `link.created`, all in this transaction. A refused code raises
    LinkRefusedError after auditing the attempt.
    """
    try:
        with transaction.atomic():
            return _link_bind(bank=bank, page_id=page_id, psid=psid, code=authorization_code)
    except LinkRefusedError as refused:
        audit_record(
            actor=PLATFORM,
            action="link.refused",
            bank=bank,
            target_type="messenger.psid",
            target_id=pseudonym(psid),
            details={"reason": str(refused), "page_id": page_id},
        )
        raise


def _link_bind(*, bank: Bank, page_id: str, psid: str, code: str) -> Consent:
    found = (
        AuthorizationCode.objects.select_for_update()
        .select_related("consent")
        .filter(code_hash=sha256_hex(code))
        .first()
    )
    if found is None:
        raise LinkRefusedError("unknown authorization code")
    if found.bank_id != bank.pk:
        raise LinkRefusedError("authorization code belongs to another bank")
    if found.used_at is not None:
        raise LinkRefusedError("authorization code was already used")
    if found.expires_at <= timezone.now():
        raise LinkRefusedError("authorization code has expired")
    # One bind at a time per customer, so a link bound at the same moment as another still
    # finds it and announces itself there (`_other_links`); the customer before the
    # consents, as an erasure locks them.
    Customer.objects.select_for_update().filter(pk=found.consent.customer_id).first()
    consent = Consent.objects.select_for_update().get(pk=found.consent_id)
    if consent.status != Status.AUTHORISED:
        raise LinkRefusedError(f"consent is {consent.status}")
    if consent.page_id and consent.page_id != page_id:
        raise LinkRefusedError("authorization code was issued for another Page")
    found.used_at = timezone.now()
    found.save(update_fields=["used_at"])
    return link_psid_bind(consent=consent, bank=bank, page_id=page_id, psid=psid)


def link_psid_bind(
    *, consent: Consent, bank: Bank, page_id: str, psid: str, via: str = "log_in"
) -> Consent:
    """Make the locked, authorised `consent` the link of `psid` on `page_id`, in the
    caller's transaction: whatever proved the person (a Log In's code, an m.me link's ref)
    was checked and spent by the caller. The person's previous link on the Page is
    revoked and replaced; the confirmation is owed; the binding is audited."""
    previous = Consent.objects.select_for_update().filter(
        bank=bank, page_id=page_id, psid=psid, status=Status.AUTHORISED
    )
    for old in previous:
        _revoke(
            old,
            actor=PLATFORM,
            reason="Replaced: the same Messenger user linked again",
            platform_knows=True,
            ended_because=EndedBecause.REPLACED,
        )
    consent.page_id, consent.psid, consent.linked_at = page_id, psid, timezone.now()
    consent.save(update_fields=["page_id", "psid", "linked_at"])
    link_message_schedule(consent=consent, kind=LinkMessage.Kind.CONFIRMATION)
    others = _other_links(consent)
    for other in others:
        link_message_about_schedule(
            consent=other, kind=LinkMessage.Kind.NEW_LINK_NOTICE, about=consent
        )
    audit_record(
        actor=PLATFORM,
        action="link.bound",
        bank=bank,
        target=consent,
        details={"psid": psid, "page_id": page_id, "via": via, **_consent_details(consent)},
        data_categories=consent.scopes,
    )
    _link_changed(
        consent,
        LINK_CREATED,
        consent.linked_at,
        active_links=len(others) + 1,
        accounts=[a.external_id for a in consent.accounts.all()],
        scopes=consent.scopes,
    )
    transaction.on_commit(lambda: signals.link_bound.send(sender=Consent, consent_id=consent.pk))
    return consent


def _other_links(consent: Consent) -> list[Consent]:
    """The customer's other live links, each a chat that hears of this new one."""
    return list(
        Consent.objects.filter(
            bank_id=consent.bank_id, customer_id=consent.customer_id, status=Status.AUTHORISED
        )
        .exclude(psid="")
        .exclude(pk=consent.pk)
        .exclude(page_id=consent.page_id, psid=consent.psid)
        .order_by("pk")
    )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def _link_changed(
    consent: Consent, type_: str, at: datetime | None, *, name: bool = True, **extra: Any
) -> None:
    """Tell the apps above, inside this transaction, that the bank is owed `type_`."""
    data = {
        "link_id": str(consent.pk),
        "customer_id": consent.customer.external_id,
        "messenger_name": (consent.messenger_name or None) if name else None,
        "linked_at": _iso(consent.linked_at),
        **extra,
    }
    signals.link_changed.send(
        sender=Consent, bank_id=consent.bank_id, type=type_, data=data, occurred_at=at
    )


def _link_ended(consent: Consent, because: str) -> None:
    """A link that was bound has ended: the bank hears why (`link.ended`)."""
    if consent.linked_at is None:
        return
    _link_changed(
        consent,
        LINK_ENDED,
        consent.ended_at,
        # The name is about to be erased: it is never sent on.
        name=because != EndedBecause.ERASED,
        ended_at=_iso(consent.ended_at),
        reason=because,
    )


def _revoke(
    consent: Consent,
    *,
    actor: Actor,
    reason: str,
    platform_knows: bool,
    ended_because: str | None = None,
) -> None:
    _transition(consent, Status.REVOKED, actor=actor, reason=reason)
    consent.ended_at = timezone.now()
    if platform_knows:
        consent.platform_unlinked_at = consent.ended_at
    consent.save()
    platform_unlink_schedule(consent=consent, now=consent.ended_at)
    audit_record(
        actor=actor,
        action="consent.revoked",
        bank=consent.bank,
        target=consent,
        details={"reason": reason, "psid": consent.psid, "platform_knows": platform_knows},
    )
    _link_ended(consent, ended_because or ENDED_BY_ACTOR[actor.type])
    consent_id = consent.pk
    transaction.on_commit(lambda: signals.link_ended.send(sender=Consent, consent_id=consent_id))


@transaction.atomic
def consent_revoke(
    *, consent: Consent, actor: Actor, reason: str, ended_because: str | None = None
) -> Consent:
    """Withdraw a consent from any side; idempotent once it has ended.

    Messenger's own `unlinked` event passes `actor=PLATFORM`: the platform already knows.
    From the customer or bank staff, the platform is told through the unlink API by a
    worker: the follow-up is a row written here (`platform_unlink_schedule`), retried
    until it succeeds.
    """
    consent = Consent.objects.select_for_update().get(pk=consent.pk)
    if consent.status in Consent.FINAL:
        return consent
    if consent.status != Status.AUTHORISED:
        raise ValueError(f"A consent that is {consent.status} cannot be revoked.")
    _revoke(
        consent,
        actor=actor,
        reason=reason,
        platform_knows=actor.type == "platform",
        ended_because=ended_because,
    )
    return consent


def link_unlinked_by_platform(*, bank: Bank, page_id: str, psid: str) -> Consent | None:
    """Messenger says the person unlinked: revoke their active link on that Page, if any."""
    consent = Consent.objects.filter(
        bank=bank, page_id=page_id, psid=psid, status=Status.AUTHORISED
    ).first()
    if consent is None:
        return None
    return consent_revoke(consent=consent, actor=PLATFORM, reason="Unlinked in Messenger")


def consents_expire_due(*, now: datetime | None = None) -> int:
    """Expire every authorised consent past its end date; each in its own transaction."""
    now = now or timezone.now()
    due = Consent.objects.filter(status=Status.AUTHORISED, expires_at__lte=now).values_list(
        "pk", flat=True
    )
    expired = 0
    system = Actor.system("consent expiry")
    for pk in list(due):
        with transaction.atomic():
            consent = Consent.objects.select_for_update().get(pk=pk)
            # An authorised consent has an end date.
            if consent.status != Status.AUTHORISED or consent.expires_at > now:  # type: ignore[operator]
                continue
            _transition(consent, Status.EXPIRED, actor=system, reason="Reached its end date")
            consent.ended_at = now
            consent.save()
            platform_unlink_schedule(consent=consent, now=now)
            audit_record(actor=system, action="consent.expired", bank=consent.bank, target=consent)
            _link_ended(consent, EndedBecause.EXPIRED)
            transaction.on_commit(
                # mypy infers no type for a lambda with a default.
                lambda pk=pk: signals.link_ended.send(sender=Consent, consent_id=pk)  # type: ignore[misc]
            )
            expired += 1
    return expired


# How recent the customer's sign-in with the bank must be to renew: PSD2's strong customer
# authentication, asked again at least every 180 days, is asked at each renewal.
RENEW_REAUTHENTICATED_WITHIN = timedelta(minutes=15)


class ReauthenticationRequiredError(Exception):
    """Renewing needs a fresh sign-in with the bank (its identity provider or directory)."""


@transaction.atomic
def consent_renew(*, consent: Consent, actor: Actor, authenticated_at: datetime | None) -> Consent:
    """The customer re-confirms: the same consent runs for its full duration from today.

    Only after a fresh sign-in with the bank (`authenticated_at`, within
    `RENEW_REAUTHENTICATED_WITHIN`): a dashboard pass from the chat is not enough, as PSD2
    asks the customer to authenticate again before access goes on.
    """
    now = timezone.now()
    if authenticated_at is None or not (
        now - RENEW_REAUTHENTICATED_WITHIN <= authenticated_at <= now
    ):
        raise ReauthenticationRequiredError("renewing needs a fresh sign-in with the bank")
    consent = Consent.objects.select_for_update().get(pk=consent.pk)
    if consent.status != Status.AUTHORISED:
        raise ValueError(f"A consent that is {consent.status} cannot be renewed.")
    consent.expires_at = now + timedelta(days=consent.duration_days)
    consent.expiry_reminded_at = None
    consent.save(update_fields=["expires_at", "expiry_reminded_at"])
    ConsentEvent.objects.create(
        consent=consent,
        from_status=Status.AUTHORISED,
        to_status=Status.AUTHORISED,
        actor=CONSENT_ACTOR[actor.type],
        actor_label=actor.label,
        reason=f"Renewed until {consent.expires_at:%d %b %Y}",
    )
    audit_record(
        actor=actor,
        action="consent.renewed",
        bank=consent.bank,
        target=consent,
        details={"expires_at": consent.expires_at, "authenticated_at": authenticated_at},
    )
    return consent


REMIND_BEFORE = timedelta(days=7)


def consents_remind_expiring(*, now: datetime | None = None) -> int:
    """Flag linked consents ending within 7 days, once, and owe each its reminder.

    `expiry_reminded_at` says the reminder became due, not that it went out: the
    `LinkMessage` written in the same transaction is sent by the nudged worker or the
    sweeper, and records when it was sent.
    """
    now = now or timezone.now()
    due = Consent.objects.filter(
        status=Status.AUTHORISED,
        expiry_reminded_at__isnull=True,
        expires_at__lte=now + REMIND_BEFORE,
        expires_at__gt=now,
    ).exclude(psid="")
    reminded = 0
    system = Actor.system("consent expiry")
    for pk in list(due.values_list("pk", flat=True)):
        with transaction.atomic():
            updated = Consent.objects.filter(pk=pk, expiry_reminded_at__isnull=True).update(
                expiry_reminded_at=now
            )
            if not updated:
                continue
            consent = Consent.objects.get(pk=pk)
            link_message_schedule(consent=consent, kind=LinkMessage.Kind.EXPIRY_REMINDER, now=now)
            audit_record(
                actor=system,
                action="consent.expiry_reminded",
                bank=consent.bank,
                target=consent,
                details={"expires_at": consent.expires_at},
            )
            transaction.on_commit(
                # mypy infers no type for a lambda with a default.
                lambda pk=pk: signals.consent_expiring.send(sender=Consent, consent_id=pk)  # type: ignore[misc]
            )
            reminded += 1
    return reminded


@transaction.atomic
def customer_links_revoke(
    *, customer: Customer, actor: Actor, reason: str, ended_because: str | None = None
) -> list[Consent]:
    """Revoke every authorised consent of `customer` (bank staff's bulk action).

    Each goes through `consent_revoke`, so each is locked, recorded and audited on its own
    and the platform is told of each link; consents that already ended are left as they are.
    """
    active = Consent.objects.filter(customer=customer, status=Status.AUTHORISED).order_by("pk")
    return [
        consent_revoke(consent=consent, actor=actor, reason=reason, ended_because=ended_because)
        for consent in active
    ]


def customer_data_view_record(*, consent: Consent, actor: Actor) -> None:
    """Record that staff opened a customer's link page: auditors' reads are audited too."""
    audit_record(
        actor=actor,
        action="customer_data.viewed",
        bank=consent.bank,
        target=consent.customer,
        details={"consent": consent.pk, "page": "linked account"},
    )
