"""Reads of notifications, always scoped to one bank."""

from django.conf import settings

from notifications.models import ApiKeyRateLimit, Event, Outcome
from portal.models import ApiKey, Bank


def event_get(*, bank: Bank, event_id: str) -> Event | None:
    return (
        Event.objects.for_bank(bank)
        .select_related("customer", "account")
        .filter(event_id=event_id)
        .first()
    )


def outcome_list(*, bank: Bank, after_id: int, limit: int) -> list[Outcome]:
    """Up to `limit` outcomes of `bank` with ids above `after_id`, oldest first."""
    return list(Outcome.objects.for_bank(bank).filter(id__gt=after_id).order_by("id")[:limit])


def rate_limit_for(api_key: ApiKey) -> tuple[float, int]:
    """(requests per second, burst) for a key: its own override, or the default."""
    override = (
        ApiKeyRateLimit.objects.filter(api_key=api_key).values_list("per_second", "burst").first()
    )
    if override is not None:
        return override
    return settings.API_RATE_LIMIT_PER_SECOND, settings.API_RATE_LIMIT_BURST
