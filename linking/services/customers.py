"""Customers and their accounts as the bank's core describes them, the demo directory's
sign-in, the bank's identity provider, and when people last wrote to the Page."""

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from linking.models import Account, Customer, IdentityProvider
from portal.audit import Actor
from portal.models import Bank
from portal.services import audit_record


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
    """The customer whose demo-directory login this is, or None; timing does not tell which.

    Usernames match whatever the case, as at a bank's sign-in, except where the directory
    holds two that differ only by case: then only the exact spelling matches.
    """
    found = list(Customer.objects.filter(bank=bank, directory_username__iexact=username))
    exact = (c for c in found if c.directory_username == username)
    customer = found[0] if len(found) == 1 else next(exact, None)
    if customer is None or not customer.directory_password:
        check_password(password, _DUMMY_PASSWORD)
        return None
    return customer if check_password(password, customer.directory_password) else None


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
