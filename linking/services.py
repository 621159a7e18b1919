import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from linking import signals
from linking.models import (
    Account,
    AuthorizationCode,
    Consent,
    ConsentEvent,
    Customer,
    IdentityProvider,
    LinkingTokenUse,
)
from portal.audit import Actor
from portal.digests import sha256_hex
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


# Customers and accounts


@dataclass(frozen=True)
class AccountInput:
    external_id: str
    kind: str
    name: str
    last4: str
    currency: str
    balance: Decimal


def _account_input(raw: dict[str, Any], position: int) -> AccountInput:
    where = f"accounts[{position}]"
    if not isinstance(raw, dict):
        raise ValidationError({where: "must be an object"})
    last4 = str(raw.get("last4", ""))
    if not last4.isdigit() or len(last4) != 4:
        raise ValidationError(
            {
                f"{where}.last4": "must be exactly the last 4 digits; full card or account "
                "numbers are refused and never stored"
            }
        )
    try:
        balance = Decimal(str(raw.get("balance")))
    except InvalidOperation as exc:
        raise ValidationError({f"{where}.balance": "must be a decimal amount"}) from exc
    # A finite amount's exponent is a number (the stubs allow the letters of the others).
    if not balance.is_finite() or balance.as_tuple().exponent < -2 or abs(balance) >= 10**16:  # type: ignore[operator]
        raise ValidationError({f"{where}.balance": "must be an amount with at most 2 decimals"})
    return AccountInput(
        external_id=str(raw.get("id", "")),
        kind=str(raw.get("kind", "")),
        name=str(raw.get("name", "")),
        last4=last4,
        currency=str(raw.get("currency", "")),
        balance=balance,
    )


@transaction.atomic
def customer_upsert(
    *,
    actor: Actor,
    bank: Bank,
    external_id: str,
    name: str,
    locale: str,
    accounts: list[dict[str, Any]],
    directory_username: str | None = None,
    directory_password: str | None = None,
) -> Customer:
    """Create or update a customer and their accounts as the core describes them.

    Accounts missing from `accounts` are deactivated: their notifications stop. Any
    invalid field raises ValidationError and nothing is written.
    """
    if not isinstance(accounts, list):
        raise ValidationError({"accounts": "must be a list"})
    inputs = [_account_input(raw, n) for n, raw in enumerate(accounts)]
    ids = [a.external_id for a in inputs]
    if len(set(ids)) != len(ids):
        raise ValidationError({"accounts": "each account id must appear once"})
    customer, created = _customer_locked(
        bank=bank, external_id=external_id, name=name, locale=locale
    )
    customer.name, customer.locale = name, locale
    if directory_username is not None:
        customer.directory_username = directory_username or None
    if directory_password:
        customer.directory_password = make_password(directory_password)
    customer.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError as exc:
        raise ValidationError(
            {"directory.username": "is already used by another customer"}
        ) from exc
    existing = {a.external_id: a for a in customer.accounts.all()}
    for data in inputs:
        account = existing.pop(data.external_id, None) or Account(
            bank=bank, customer=customer, external_id=data.external_id
        )
        for field in ("kind", "name", "last4", "currency", "balance"):
            setattr(account, field, getattr(data, field))
        account.active = True
        account.full_clean(validate_unique=False)
        account.save()
    removed = [a.pk for a in existing.values() if a.active]
    Account.objects.filter(pk__in=removed).update(active=False)
    audit_record(
        actor=actor,
        action="customer.created" if created else "customer.updated",
        bank=bank,
        target=customer,
        details={
            "external_id": external_id,
            "accounts": ids,
            "accounts_removed": sorted(a.external_id for a in existing.values()),
            "directory_login": bool(customer.directory_username),
        },
    )
    return customer


def _customer_locked(
    *, bank: Bank, external_id: str, name: str, locale: str
) -> tuple[Customer, bool]:
    """The customer row, locked for this transaction, created first if need be.

    Two first upserts of one customer race to insert; the loser waits on the winner's
    row and then updates it, instead of failing on the unique constraint.
    """
    rows = Customer.objects.select_for_update().filter(bank=bank, external_id=external_id)
    found = rows.first()
    if found is not None:
        return found, False
    fresh = Customer(bank=bank, external_id=external_id, name=name, locale=locale)
    # The one-customer-per-id constraint is left to the insert: checked here, a winner
    # that commits between the look-up above and this check would fail the loser with a
    # validation error instead of the IntegrityError handled below.
    fresh.full_clean(
        validate_unique=False, validate_constraints=False, exclude=["directory_username"]
    )
    try:
        with transaction.atomic():
            fresh.save()
        return fresh, True
    except IntegrityError:
        return rows.get(), False


_DUMMY_PASSWORD = make_password(secrets.token_urlsafe(16))


def directory_authenticate(*, bank: Bank, username: str, password: str) -> Customer | None:
    """The customer whose demo-directory login this is, or None; timing does not tell which."""
    customer = Customer.objects.filter(bank=bank, directory_username=username).first()
    if customer is None or not customer.directory_password:
        check_password(password, _DUMMY_PASSWORD)
        return None
    return customer if check_password(password, customer.directory_password) else None


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
) -> GrantedConsent:
    """The customer allows: store the consent and mint its single-use authorization code.

    The Log In's `account_linking_token` is spent here: a token that already completed a
    Log In raises LinkingTokenUsedError and nothing is written.
    """
    if not accounts:
        raise ValidationError("Choose at least one account to share.")
    if any(a.customer_id != customer.pk or not a.active for a in accounts):
        raise ValidationError("Only your own active accounts can be shared.")
    scopes = sorted(set(scopes))
    if not scopes or not set(scopes) <= set(Consent.Scope.values):
        raise ValidationError("Choose at least one kind of update.")
    if not 1 <= duration_days <= MAX_DURATION_DAYS:
        raise ValidationError(f"A consent lasts from 1 to {MAX_DURATION_DAYS} days.")
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
    )
    _transition(consent, Status.AWAITING_AUTHORISATION, actor=actor, reason="Log In from Messenger")
    consent.accounts.set(accounts)
    _transition(consent, Status.AUTHORISED, actor=actor, reason="Allowed on the consent screen")
    consent.granted_at, consent.expires_at = now, now + timedelta(days=duration_days)
    consent.save()
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
        details=_consent_details(consent),
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
    Page has their old link revoked and replaced, explicitly. A refused code raises
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
    consent = Consent.objects.select_for_update().get(pk=found.consent_id)
    if consent.status != Status.AUTHORISED:
        raise LinkRefusedError(f"consent is {consent.status}")
    if consent.page_id and consent.page_id != page_id:
        raise LinkRefusedError("authorization code was issued for another Page")
    found.used_at = timezone.now()
    found.save(update_fields=["used_at"])
    previous = Consent.objects.select_for_update().filter(
        bank=bank, page_id=page_id, psid=psid, status=Status.AUTHORISED
    )
    for old in previous:
        _revoke(
            old,
            actor=PLATFORM,
            reason="Replaced: the same Messenger user linked again",
            platform_knows=True,
        )
    consent.page_id, consent.psid, consent.linked_at = page_id, psid, timezone.now()
    consent.save(update_fields=["page_id", "psid", "linked_at"])
    audit_record(
        actor=PLATFORM,
        action="link.bound",
        bank=bank,
        target=consent,
        details={"psid": psid, "page_id": page_id, **_consent_details(consent)},
        data_categories=consent.scopes,
    )
    transaction.on_commit(lambda: signals.link_bound.send(sender=Consent, consent_id=consent.pk))
    return consent


def _revoke(consent: Consent, *, actor: Actor, reason: str, platform_knows: bool) -> None:
    _transition(consent, Status.REVOKED, actor=actor, reason=reason)
    consent.ended_at = timezone.now()
    if platform_knows:
        consent.platform_unlinked_at = consent.ended_at
    consent.save()
    audit_record(
        actor=actor,
        action="consent.revoked",
        bank=consent.bank,
        target=consent,
        details={"reason": reason, "psid": consent.psid, "platform_knows": platform_knows},
    )
    consent_id = consent.pk
    transaction.on_commit(lambda: signals.link_ended.send(sender=Consent, consent_id=consent_id))


@transaction.atomic
def consent_revoke(*, consent: Consent, actor: Actor, reason: str) -> Consent:
    """Withdraw a consent from any side; idempotent once it has ended.

    Messenger's own `unlinked` event passes `actor=PLATFORM`: the platform already knows.
    From the customer or bank staff, the platform is told through the unlink API by a
    worker, retried until it succeeds.
    """
    consent = Consent.objects.select_for_update().get(pk=consent.pk)
    if consent.status in Consent.FINAL:
        return consent
    if consent.status != Status.AUTHORISED:
        raise ValueError(f"A consent that is {consent.status} cannot be revoked.")
    _revoke(consent, actor=actor, reason=reason, platform_knows=actor.type == "platform")
    return consent


def link_unlinked_by_platform(*, bank: Bank, page_id: str, psid: str) -> Consent | None:
    """Messenger says the person unlinked: revoke their active link on that Page, if any."""
    consent = Consent.objects.filter(
        bank=bank, page_id=page_id, psid=psid, status=Status.AUTHORISED
    ).first()
    if consent is None:
        return None
    return consent_revoke(consent=consent, actor=PLATFORM, reason="Unlinked in Messenger")


@transaction.atomic
def consent_platform_unlinked(*, consent: Consent) -> None:
    Consent.objects.filter(pk=consent.pk).update(platform_unlinked_at=timezone.now())


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
            audit_record(actor=system, action="consent.expired", bank=consent.bank, target=consent)
            transaction.on_commit(
                # mypy infers no type for a lambda with a default.
                lambda pk=pk: signals.link_ended.send(sender=Consent, consent_id=pk)  # type: ignore[misc]
            )
            expired += 1
    return expired


@transaction.atomic
def consent_renew(*, consent: Consent, actor: Actor) -> Consent:
    """The customer re-confirms: the same consent runs for its full duration from today."""
    consent = Consent.objects.select_for_update().get(pk=consent.pk)
    if consent.status != Status.AUTHORISED:
        raise ValueError(f"A consent that is {consent.status} cannot be renewed.")
    now = timezone.now()
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
        details={"expires_at": consent.expires_at},
    )
    return consent


REMIND_BEFORE = timedelta(days=7)


def consents_remind_expiring(*, now: datetime | None = None) -> int:
    """Flag linked consents ending within 7 days, once; listeners send the reminder."""
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
def identity_provider_configure(
    *,
    actor: Actor,
    bank: Bank,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    customer_claim: str = "sub",
    scopes: str = "openid",
    enabled: bool = True,
) -> IdentityProvider:
    """Point the bank's customer sign-in at its OpenID Connect provider.

    A blank `client_secret` keeps the stored one. The audit entry never holds the secret.
    """
    from linking.oidc import OIDCError, check_issuer

    try:
        issuer = check_issuer(issuer)
    except OIDCError as exc:
        raise ValidationError({"issuer": str(exc)}) from exc
    if "openid" not in scopes.split():
        raise ValidationError({"scopes": "must include openid"})
    provider = IdentityProvider.objects.filter(bank=bank).first() or IdentityProvider(bank=bank)
    if not client_secret and not provider.client_secret:
        raise ValidationError({"client_secret": "is required"})
    provider.issuer, provider.client_id = issuer, client_id
    provider.customer_claim, provider.scopes, provider.enabled = customer_claim, scopes, enabled
    if client_secret:
        provider.client_secret = client_secret
    provider.full_clean()
    provider.save()
    audit_record(
        actor=actor,
        action="identity_provider.configured",
        bank=bank,
        target=provider,
        details={
            "issuer": issuer,
            "client_id": client_id,
            "customer_claim": customer_claim,
            "enabled": enabled,
            "secret_changed": bool(client_secret),
        },
    )
    return provider


def contact_touch(*, bank: Bank, page_id: str, psid: str, at: datetime) -> None:
    """Record that the person acted at `at`; webhooks arrive out of order, the newest wins."""
    from django.db.models import Case, F, Value, When

    from linking.models import Contact

    newer = Case(When(last_inbound_at__lt=at, then=Value(at)), default=F("last_inbound_at"))
    contact = Contact.objects.filter(bank=bank, page_id=page_id, psid=psid)
    if not contact.update(last_inbound_at=newer):
        Contact.objects.bulk_create(
            [Contact(bank=bank, page_id=page_id, psid=psid, last_inbound_at=at)],
            ignore_conflicts=True,
        )
        contact.update(last_inbound_at=newer)  # in case a concurrent insert won the race


@transaction.atomic
def customer_links_revoke(*, customer: Customer, actor: Actor, reason: str) -> list[Consent]:
    """Revoke every authorised consent of `customer` (bank staff's bulk action).

    Each goes through `consent_revoke`, so each is locked, recorded and audited on its own
    and the platform is told of each link; consents that already ended are left as they are.
    """
    active = Consent.objects.filter(customer=customer, status=Status.AUTHORISED).order_by("pk")
    return [consent_revoke(consent=consent, actor=actor, reason=reason) for consent in active]


def customer_data_view_record(*, consent: Consent, actor: Actor) -> None:
    """Record that staff opened a customer's link page: auditors' reads are audited too."""
    audit_record(
        actor=actor,
        action="customer_data.viewed",
        bank=consent.bank,
        target=consent.customer,
        details={"consent": consent.pk, "page": "linked account"},
    )
