from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.api.scopes import ALL_SCOPES, networks_parse
from core.digests import sha256_hex
from portal.audit import Actor
from portal.models import ApiKey, Bank
from portal.services.audit import audit_record

if TYPE_CHECKING:
    from django.contrib.auth.models import User

KEY_SCHEME = "bsk"
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedApiKey:
    """A new API key and its full secret value, which is shown this once and never stored."""

    api_key: ApiKey
    secret: str


ROLL_OVERLAP_MIN = timedelta(hours=1)
ROLL_OVERLAP_MAX = timedelta(days=30)
EXPIRY_MAX = timedelta(days=3 * 366)


def _scopes_valid(scopes: Iterable[str]) -> list[str]:
    chosen = set(scopes)
    unknown = sorted(chosen - set(ALL_SCOPES))
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope: {', '.join(unknown)}."})
    if not chosen:
        raise ValidationError({"scopes": "Choose at least one scope."})
    return [scope for scope in ALL_SCOPES if scope in chosen]


def _networks_valid(networks: Iterable[str]) -> list[str]:
    try:
        return networks_parse(networks)
    except ValueError as exc:
        raise ValidationError({"allowed_networks": str(exc)}) from None


def _expiry_valid(expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    now = timezone.now()
    if expires_at <= now:
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    if expires_at > now + EXPIRY_MAX:
        raise ValidationError({"expires_at": "A key expires within 3 years at most."})
    return expires_at


def _key_issue(
    *,
    bank: Bank,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
    allowed_networks: list[str],
    created_by: User | None,
    rolled_from: ApiKey | None = None,
) -> tuple[ApiKey, str]:
    prefix = secrets.token_hex(6)
    while ApiKey.objects.filter(prefix=prefix).exists():
        prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey(
        bank=bank,
        name=name.strip(),
        prefix=prefix,
        secret_hash=sha256_hex(secret),
        created_by=created_by,
        scopes=scopes,
        expires_at=expires_at,
        allowed_networks=allowed_networks,
        rolled_from=rolled_from,
    )
    api_key.full_clean()
    api_key.save()
    return api_key, f"{KEY_SCHEME}_{prefix}_{secret}"


def _key_details(api_key: ApiKey) -> dict[str, object]:
    return {
        "name": api_key.name,
        "prefix": api_key.prefix,
        "scopes": list(api_key.scopes),
        "expires_at": api_key.expires_at.isoformat() if api_key.expires_at else None,
        "allowed_networks": list(api_key.allowed_networks),
    }


@transaction.atomic
def api_key_create(
    *,
    actor: Actor,
    bank: Bank,
    name: str,
    created_by: User | None = None,
    scopes: Iterable[str] = ALL_SCOPES,
    expires_at: datetime | None = None,
    allowed_networks: Iterable[str] = (),
) -> IssuedApiKey:
    """Issue a key for the bank's core systems: `bsk_<prefix>_<secret>`.

    Active keys of one bank have distinct names, so a key is recognisable in the list. A
    key holds at least one scope; it may expire (within 3 years) and be limited to some
    addresses or CIDR blocks. Anything invalid raises ValidationError, writing nothing.
    """
    api_key, secret = _key_issue(
        bank=bank,
        name=name,
        scopes=_scopes_valid(scopes),
        expires_at=_expiry_valid(expires_at),
        allowed_networks=_networks_valid(allowed_networks),
        created_by=created_by,
    )
    audit_record(
        actor=actor,
        action="api_key.created",
        bank=bank,
        target=api_key,
        details=_key_details(api_key),
    )
    return IssuedApiKey(api_key=api_key, secret=secret)


@transaction.atomic
def api_key_roll(
    *, actor: Actor, api_key: ApiKey, overlap: timedelta, created_by: User | None = None
) -> IssuedApiKey:
    """Replace a key without downtime: issue its successor (same name, scopes and allowed
    addresses, no expiry) and let the old key work for `overlap` more (1 hour to 30 days),
    or until its own expiry if that comes first. Both are listed with their last use, so
    staff see when the core systems moved to the new one.

    The old key's row is locked: a key is rolled once; its successor can be rolled in turn.
    """
    if not ROLL_OVERLAP_MIN <= overlap <= ROLL_OVERLAP_MAX:
        raise ValidationError({"overlap": "Choose an overlap from 1 hour to 30 days."})
    old = ApiKey.objects.select_for_update().select_related("bank").get(pk=api_key.pk)
    if old.revoked_at is not None or old.is_expired:
        raise ValidationError("Only a working key can be rolled: this one no longer works.")
    if old.rolled_at is not None:
        raise ValidationError("This key was rolled already: roll its successor instead.")
    now = timezone.now()
    old_until = now + overlap
    if old.expires_at is not None and old.expires_at < old_until:
        old_until = old.expires_at
    # The old key leaves the "one active name" rule before its successor takes the name.
    old.expires_at, old.rolled_at = old_until, now
    old.save(update_fields=["expires_at", "rolled_at"])
    new, secret = _key_issue(
        bank=old.bank,
        name=old.name,
        scopes=list(old.scopes),
        expires_at=None,
        allowed_networks=list(old.allowed_networks),
        created_by=created_by,
        rolled_from=old,
    )
    audit_record(
        actor=actor,
        action="api_key.rolled",
        bank=old.bank,
        target=old,
        details={
            "name": old.name,
            "prefix": old.prefix,
            "successor_prefix": new.prefix,
            "old_key_works_until": old_until.isoformat(),
            "overlap_seconds": int(overlap.total_seconds()),
            "scopes": list(new.scopes),
            "allowed_networks": list(new.allowed_networks),
        },
    )
    return IssuedApiKey(api_key=new, secret=secret)


@transaction.atomic
def api_key_revoke(*, actor: Actor, api_key: ApiKey) -> ApiKey:
    """Revoke a key: the next request made with it is refused, in every web process
    once its kept copy of the key expires (`API_CALLER_CACHE_SECONDS`)."""
    api_key = ApiKey.objects.select_for_update().select_related("bank").get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        raise ValidationError("This API key is already revoked.")
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="api_key.revoked",
        bank=api_key.bank,
        target=api_key,
        details={"name": api_key.name, "prefix": api_key.prefix},
    )
    return api_key


def api_key_parse(presented: str) -> tuple[str, str] | None:
    """The (prefix, secret) of a well-formed `bsk_<prefix>_<secret>`, or None."""
    scheme, _, rest = presented.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != KEY_SCHEME or not prefix or not secret:
        return None
    return prefix, secret


def api_key_authenticate(*, presented: str) -> ApiKey | None:
    """The active key matching `presented`, with its bank, or None.

    The prefix finds the row; `api_key_verify` checks the secret and records the use.
    """
    parsed = api_key_parse(presented)
    if parsed is None:
        return None
    prefix, secret = parsed
    api_key = ApiKey.objects.select_related("bank").filter(prefix=prefix).first()
    if api_key is None:
        return None
    return api_key_verify(api_key=api_key, secret=secret)


def api_key_verify(*, api_key: ApiKey, secret: str) -> ApiKey | None:
    """`api_key` if `secret` is its secret and it is neither revoked nor expired, else None.

    The secret is compared in constant time. `last_used_at` is written at most once a
    minute per key, so a busy key costs no write per request.
    """
    if not hmac.compare_digest(api_key.secret_hash, sha256_hex(secret)):
        return None
    now = timezone.now()
    if api_key.revoked_at is not None or (
        api_key.expires_at is not None and api_key.expires_at <= now
    ):
        return None
    stale = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is None or api_key.last_used_at <= stale:
        ApiKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
        ).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
