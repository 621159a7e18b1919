from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

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


@transaction.atomic
def api_key_create(
    *, actor: Actor, bank: Bank, name: str, created_by: User | None = None
) -> IssuedApiKey:
    """Issue a key for the bank's core systems: `bsk_<prefix>_<secret>`.

    Active keys of one bank have distinct names, so a key is recognisable in the list.
    """
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
    )
    api_key.full_clean()
    api_key.save()
    audit_record(
        actor=actor,
        action="api_key.created",
        bank=bank,
        target=api_key,
        details={"name": api_key.name, "prefix": prefix},
    )
    return IssuedApiKey(api_key=api_key, secret=f"{KEY_SCHEME}_{prefix}_{secret}")


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
    """`api_key` if `secret` is its secret and it is not revoked, else None.

    The secret is compared in constant time. `last_used_at` is written at most once a
    minute per key, so a busy key costs no write per request.
    """
    if not hmac.compare_digest(api_key.secret_hash, sha256_hex(secret)):
        return None
    if api_key.revoked_at is not None:
        return None
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is None or api_key.last_used_at <= stale:
        ApiKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
        ).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
