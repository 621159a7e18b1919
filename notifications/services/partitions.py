"""The month partitions of events, notifications, the outcome feed and the delivery
attempts (PostgreSQL).

These tables only grow, by a row or more per event and per message: they are trimmed by
whole months (`core.db.partitions`). Beat makes this month's partition and the next
`NOTIFICATIONS_PARTITIONS_AHEAD` (a row of a month without one could not be written),
and drops every month past the table's horizon, `keep_months`: its setting
(`NOTIFICATIONS_EVENTS_KEEP_MONTHS`, `NOTIFICATIONS_OUTCOMES_KEEP_MONTHS`,
`NOTIFICATIONS_ATTEMPTS_KEEP_MONTHS`), never less than the longest retention period of
any bank plus one month, so that no bank's feed or delivery history is shorter than what
it keeps of its messages. Events and their notifications share a month (a notification's
id begins with its event's month) and a horizon, never shorter than the outcome feed's
and the attempts', which point at them. A month is dropped when its last day is that
many months old; the legacy partition (the rows written before the tables were
partitioned) when its newest row is.

Months go dependents first: attempts, outcomes, notifications, then events. Before a
month of notifications or events goes, the rows of plain tables that point into it go as
the ORM's cascades would take them (an event's idempotency key, a fraud alert's answer)
or let go of it (an echo's notification), a batch at a time; an event id posted again
after its month is dropped is a new event. A drop detaches the partition concurrently and
then drops it (inserts and reads of the table never wait), and appends a platform audit
entry naming the table, the month, its rows and its bytes (no personal data). Elsewhere
than on PostgreSQL the tables are plain and nothing here does anything.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Max
from django.utils import timezone

from core.db import partitions
from core.db.partitions import Month, Partition
from notifications.models import DeliveryAttempt, Event, Notification, Outcome
from portal.audit import Actor
from portal.models import Bank, RetentionPolicy
from portal.services import audit_record

log = logging.getLogger(__name__)

PARTITION_RETENTION = Actor.system("partition retention")


DEPENDENTS_BATCH = 20_000  # rows of a dependent table deleted or let go in one statement


@dataclass(frozen=True)
class PartitionedTable:
    model: type[models.Model]
    time_column: str  # when a row happened, to date the legacy partition's newest
    keep_setting: str
    # Unique indexes made on each partition ({name: columns}): rows unique together
    # always share a month (`core.db.partitions`).
    unique: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def name(self) -> str:
        return self.model._meta.db_table

    def partitions_create(self, months: Sequence[Month]) -> list[Month]:
        """Make this table's partitions for `months` that are missing, with its unique
        indexes (`core.db.partitions`)."""
        return partitions.partitions_create(self.name, months, dict(self.unique))


EVENTS = PartitionedTable(Event, "received_at", "NOTIFICATIONS_EVENTS_KEEP_MONTHS")
NOTIFICATIONS = PartitionedTable(
    Notification,
    "created_at",
    "NOTIFICATIONS_EVENTS_KEEP_MONTHS",
    unique=(("one_notification_per_link", ("event_id", "consent_id")),),
)
OUTCOMES = PartitionedTable(Outcome, "occurred_at", "NOTIFICATIONS_OUTCOMES_KEEP_MONTHS")
ATTEMPTS = PartitionedTable(DeliveryAttempt, "started_at", "NOTIFICATIONS_ATTEMPTS_KEEP_MONTHS")
# In the order their months are dropped: a table before those it points at.
TABLES = (ATTEMPTS, OUTCOMES, NOTIFICATIONS, EVENTS)


@dataclass(frozen=True)
class Dropped:
    table: str
    month: str  # `YYYY-MM`, or `legacy`
    rows: int
    bytes: int
    released: int = 0  # rows of plain tables that pointed into it, deleted or let go
    seconds: float = 0.0  # the detach and the drop


def longest_retention_months() -> int:
    """The longest retention period of any bank (a bank without a policy keeps the
    default); the default when there is no bank."""
    longest = RetentionPolicy.objects.aggregate(longest=Max("months"))["longest"] or 0
    if longest < RetentionPolicy.DEFAULT_MONTHS and (
        Bank.objects.filter(retention__isnull=True).exists() or not longest
    ):
        longest = RetentionPolicy.DEFAULT_MONTHS
    return int(longest)


def keep_months(table: PartitionedTable) -> int:
    """How many months back `table` keeps: its setting, never less than the longest
    retention period plus one month, nor, for events and notifications, than the tables
    that point at them."""
    configured: int | None = getattr(settings, table.keep_setting)
    kept = max(configured or 0, longest_retention_months() + 1)
    if table in (EVENTS, NOTIFICATIONS):
        kept = max(kept, keep_months(OUTCOMES), keep_months(ATTEMPTS))
    return kept


def partitions_create_ahead(
    *, ahead: int | None = None, now: datetime | None = None
) -> dict[str, list[str]]:
    """Make this month's partition and the next `ahead` (`NOTIFICATIONS_PARTITIONS_AHEAD`)
    of each partitioned table where they are missing; returns the months made, by table.
    Safe to run any number of times."""
    count: int = settings.NOTIFICATIONS_PARTITIONS_AHEAD if ahead is None else ahead
    this = Month.of(now or timezone.now())
    months = [this + n for n in range(count + 1)]
    made = {}
    for table in reversed(TABLES):
        created = table.partitions_create(months)
        if created:
            log.info("partitions made: %s %s", table.name, ", ".join(map(str, created)))
        made[table.name] = [str(month) for month in created]
    return made


def partitions_expired(table: PartitionedTable, *, now: datetime | None = None) -> list[Partition]:
    """`table`'s partitions whose every row is past its horizon (`keep_months`). The
    events' legacy partition waits for the notifications' (theirs are dated by each
    table's newest row, and the notifications point at the events)."""
    oldest_kept = Month.of(now or timezone.now()) - keep_months(table)
    expired = []
    for partition in partitions.partitions_list(table.name):
        if partition.month is None:
            if table is EVENTS and _has_legacy(NOTIFICATIONS):
                continue
            newest = partitions.partition_newest(partition, table.time_column)
            if newest is None or newest < oldest_kept.start:
                expired.append(partition)
        elif partition.month < oldest_kept:
            expired.append(partition)
    return expired


def _has_legacy(table: PartitionedTable) -> bool:
    return any(p.month is None for p in partitions.partitions_list(table.name))


def partitions_drop_expired(*, now: datetime | None = None) -> list[Dropped]:
    """Drop every partition past its table's horizon, each detached concurrently first,
    and audit each drop. Runs outside any transaction (DETACH … CONCURRENTLY cannot run
    in one); a detach left halfway by an earlier run is finished first."""
    if not partitions.supported():
        return []
    if connection.in_atomic_block:
        raise RuntimeError("Partitions are detached concurrently: call this outside atomic().")
    dropped = []
    for table in TABLES:
        for name in partitions.partitions_finalize(table.name):
            log.warning("partition %s: its interrupted detach was finished and it dropped", name)
        for partition in partitions_expired(table, now=now):
            rows = partition.rows or partitions.partition_count(partition)
            released = dependents_release(table, partition)
            started = time.monotonic()
            partitions.partition_drop(partition)
            done = Dropped(
                table.name,
                partition.label,
                rows,
                partition.bytes,
                released,
                time.monotonic() - started,
            )
            _audit(done, keep_months(table))
            log.info(
                "partition dropped: %s %s, %d rows, %d bytes, %d dependent rows released,"
                " detached and dropped in %.3f s",
                done.table,
                done.month,
                done.rows,
                done.bytes,
                done.released,
                done.seconds,
            )
            dropped.append(done)
    return dropped


def dependents_release(table: PartitionedTable, partition: Partition) -> int:
    """Delete, or let go of, the rows of plain tables that point into `partition`, as
    the ORM's `on_delete` says (tables partitioned themselves go by their own months);
    returns how many rows changed. A batch a transaction, so nothing waits long."""
    low, high = partition.ids
    partitioned = {t.model for t in TABLES}
    changed = 0
    for relation in table.model._meta.related_objects:
        dependent = relation.related_model
        on_delete = getattr(relation, "on_delete", None)
        if dependent in partitioned or on_delete not in (models.CASCADE, models.SET_NULL):
            continue
        column = relation.field.attname
        rows = dependent._base_manager.filter(
            **{f"{column}__gte": low, f"{column}__lt": high}
        ).order_by(column)
        while True:
            with transaction.atomic():
                chosen = dependent._base_manager.filter(pk__in=rows.values("pk")[:DEPENDENTS_BATCH])
                if on_delete is models.CASCADE:
                    count = chosen.delete()[0]
                else:
                    count = chosen.update(**{relation.field.name: None})
            changed += count
            if count < DEPENDENTS_BATCH:
                break
    return changed


@transaction.atomic
def _audit(dropped: Dropped, keep: int) -> None:
    audit_record(
        actor=PARTITION_RETENTION,
        action="partition.dropped",
        bank=None,
        target_type="table",
        target_id=dropped.table,
        details={
            "table": dropped.table,
            "month": dropped.month,
            "rows": dropped.rows,
            "bytes": dropped.bytes,
            "released": dropped.released,
            "keep_months": keep,
        },
    )
