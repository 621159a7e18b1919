"""The month partitions of the outcome feed and the delivery attempts (PostgreSQL).

Both tables only grow, by a row or more per message, and neither holds what a customer
said: they are trimmed by whole months (`core.db.partitions`). Beat makes this month's
partition and the next `NOTIFICATIONS_PARTITIONS_AHEAD` (a row of a month without one
could not be written), and drops every month past the table's horizon, `keep_months`:
its setting (`NOTIFICATIONS_OUTCOMES_KEEP_MONTHS`, `NOTIFICATIONS_ATTEMPTS_KEEP_MONTHS`),
never less than the longest retention period of any bank plus one month, so that no
bank's feed or delivery history is shorter than what it keeps of its messages. A month
is dropped when its last day is that many months old; the legacy partition (the rows
written before the tables were partitioned) when its newest row is.

A drop detaches the partition concurrently and then drops it (inserts and reads of the
table never wait), and appends a platform audit entry naming the table, the month, its
rows and its bytes (no personal data). Elsewhere than on PostgreSQL the tables are plain
and nothing here does anything.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Max
from django.utils import timezone

from core.db import partitions
from core.db.partitions import Month, Partition
from notifications.models import DeliveryAttempt, Outcome
from portal.audit import Actor
from portal.models import Bank, RetentionPolicy
from portal.services import audit_record

log = logging.getLogger(__name__)

PARTITION_RETENTION = Actor.system("partition retention")


@dataclass(frozen=True)
class PartitionedTable:
    model: type[models.Model]
    time_column: str  # when a row happened, to date the legacy partition's newest
    keep_setting: str

    @property
    def name(self) -> str:
        return self.model._meta.db_table


TABLES = (
    PartitionedTable(Outcome, "occurred_at", "NOTIFICATIONS_OUTCOMES_KEEP_MONTHS"),
    PartitionedTable(DeliveryAttempt, "started_at", "NOTIFICATIONS_ATTEMPTS_KEEP_MONTHS"),
)


@dataclass(frozen=True)
class Dropped:
    table: str
    month: str  # `YYYY-MM`, or `legacy`
    rows: int
    bytes: int


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
    retention period plus one month."""
    configured: int | None = getattr(settings, table.keep_setting)
    return max(configured or 0, longest_retention_months() + 1)


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
    for table in TABLES:
        created = partitions.partitions_create(table.name, months)
        if created:
            log.info("partitions made: %s %s", table.name, ", ".join(map(str, created)))
        made[table.name] = [str(month) for month in created]
    return made


def partitions_expired(table: PartitionedTable, *, now: datetime | None = None) -> list[Partition]:
    """`table`'s partitions whose every row is past its horizon (`keep_months`)."""
    oldest_kept = Month.of(now or timezone.now()) - keep_months(table)
    expired = []
    for partition in partitions.partitions_list(table.name):
        if partition.month is None:
            newest = partitions.partition_newest(partition, table.time_column)
            if newest is None or newest < oldest_kept.start:
                expired.append(partition)
        elif partition.month < oldest_kept:
            expired.append(partition)
    return expired


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
            partitions.partition_drop(partition)
            done = Dropped(table.name, partition.label, rows, partition.bytes)
            _audit(done, keep_months(table))
            log.info("partition dropped: %s", done)
            dropped.append(done)
    return dropped


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
            "keep_months": keep,
        },
    )
