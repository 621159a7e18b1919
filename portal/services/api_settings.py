"""A bank's settings for its API calls: request signing and per-key rate limits."""

from django.db import transaction
from django.utils import timezone

from portal.audit import Actor
from portal.models import ApiKey, ApiKeyRateLimit, ApiSigning, Bank
from portal.services import audit_record
from portal.services.integration import signing_secret_new


@transaction.atomic
def api_signing_enable(*, actor: Actor, bank: Bank) -> str:
    """Make signed requests mandatory for `bank`. Returns a new secret, or "" if kept."""
    signing, _ = ApiSigning.objects.select_for_update().get_or_create(bank=bank)
    new_secret = ""
    if not signing.secret:
        signing.secret = new_secret = signing_secret_new()
        signing.rotated_at = timezone.now()
    signing.required = True
    signing.save()
    audit_record(
        actor=actor,
        action="api_signing.enabled",
        bank=bank,
        target=signing,
        details={"required": True, "secret_generated": bool(new_secret)},
    )
    return new_secret


@transaction.atomic
def api_signing_disable(*, actor: Actor, bank: Bank) -> None:
    """Accept unsigned requests again; signed ones are still verified while a secret exists."""
    signing, _ = ApiSigning.objects.select_for_update().get_or_create(bank=bank)
    signing.required = False
    signing.save()
    audit_record(
        actor=actor,
        action="api_signing.disabled",
        bank=bank,
        target=signing,
        details={"required": False},
    )


@transaction.atomic
def api_signing_rotate(*, actor: Actor, bank: Bank) -> str:
    """Replace the signing secret at once and return it: it is shown this one time."""
    signing, _ = ApiSigning.objects.select_for_update().get_or_create(bank=bank)
    signing.secret = secret = signing_secret_new()
    signing.rotated_at = timezone.now()
    signing.save()
    audit_record(
        actor=actor,
        action="api_signing.rotated",
        bank=bank,
        target=signing,
        details={"required": signing.required},
    )
    return secret


@transaction.atomic
def api_key_rate_limit_set(
    *, actor: Actor, api_key: ApiKey, per_second: float | None, burst: int | None
) -> ApiKeyRateLimit | None:
    """Give one key its own rate limit, or (both None) return it to the default."""
    if per_second is None and burst is None:
        ApiKeyRateLimit.objects.filter(api_key=api_key).delete()
        limit = None
    else:
        if not per_second or per_second <= 0 or not burst or burst < 1:
            raise ValueError("A rate limit needs a positive rate per second and a burst of 1+.")
        limit, _ = ApiKeyRateLimit.objects.update_or_create(
            api_key=api_key, defaults={"per_second": per_second, "burst": burst}
        )
    audit_record(
        actor=actor,
        action="api_key.rate_limit_set",
        bank=api_key.bank,
        target=api_key,
        details={"per_second": per_second, "burst": burst},
    )
    return limit
