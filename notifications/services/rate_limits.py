from django.db import transaction

from notifications.models import ApiKeyRateLimit
from portal.audit import Actor
from portal.models import ApiKey
from portal.services import audit_record


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
