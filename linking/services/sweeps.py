"""The sweep shared by the durable rows of linking (`PlatformUnlink`, `LinkMessage`).

Each such row is pending until a runner finishes it, and carries its `next_attempt_at`
(the nudged worker's grace period, then the backoff). The beat sweeper picks the pending
rows that are due, oldest first, and hands each to the row's own attempt service, which
claims it under its lock: a sweep may run alongside another or a nudge.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone


def durable_rows_due(
    pending: QuerySet[Any], *, id_field: str, now: datetime | None, limit: int
) -> list[int]:
    """The `id_field` of the `pending` rows that are due (past their grace period or
    backoff), the longest due first, at most `limit`."""
    now = now or timezone.now()
    return list(
        pending.filter(next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list(id_field, flat=True)[:limit]
    )


def durable_rows_sweep(
    pending: QuerySet[Any],
    *,
    id_field: str,
    attempt: Callable[[int], object],
    now: datetime | None,
    limit: int,
) -> int:
    """Call `attempt` with the `id_field` of every due row; how many were tried."""
    due = durable_rows_due(pending, id_field=id_field, now=now, limit=limit)
    for row_id in due:
        attempt(row_id)
    return len(due)
