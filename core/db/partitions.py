"""Tables partitioned by month on PostgreSQL, through ids that begin with their month.

A table that only grows (the outcome feed, the delivery attempts) is cheapest to trim by
dropping a whole month at once: no row is deleted, no index is rewritten, nothing is left
for VACUUM. PostgreSQL's declarative partitioning does that, but it asks every unique
constraint of a partitioned table, its primary key included, to contain the partition
key, and a query must name the key to reach one partition only. Partitioning by `id`
meets both: an id begins with its month,

    id = month << 40 | nextval(the table's sequence)

where `month` counts months from January 2020 (0), in UTC, and the table is partitioned
by RANGE (id), one partition per month ([month << 40, (month + 1) << 40)). The primary
key stays (id), a look-up by id reaches one partition, and ids keep increasing from one
month to the next (the sequence stays below 2^40, its maximum; ids stay below 2^53, exact
in JSON and JavaScript, for six centuries).

`bankside_month_id(sequence, at)` computes an id; it is the id column's default, called
with `clock_timestamp()`: the moment of the INSERT, not `now()`, which is the moment the
transaction began. Django still omits the id on INSERT and reads it back (RETURNING), so
the ORM, `bulk_create` and `core.db.rows`' INSERTs work as before. The clock matters
where commit order must follow id order, as in a bank's outcome feed, whose rows are
written under the bank's `OutcomeFeed` lock and read with a cursor (`id > cursor`).
Say T1 begins at 23:59:59 on a month's last day and waits for that lock while T2, begun
after midnight, holds it, writes outcomes with the new month's ids and commits; a reader
moves past them. With the transaction's start time T1 would then write ids of the old
month, smaller than T2's, behind the reader's cursor: the bank would never see them. With
the clock of the INSERT, which comes after T2's commit, T1's ids are larger than T2's.

The rows a table held before it was partitioned stay where they are, in its `legacy`
partition: their ids, from the old sequence, are all below 2^40, month 0's range (January
2020, before bankside's first row). It is dropped whole, like a month, once all its rows
are past the horizon.

Partitions are made ahead of need (`partitions_create`: a row for a month without its
partition fails to insert, so there is no default partition, which would also forbid
detaching concurrently) and dropped with `partition_drop`: DETACH PARTITION …
CONCURRENTLY, then DROP TABLE, outside any transaction block, so that inserts and reads
of the table never wait. A partition holds no foreign key for the same reason: dropping
one takes an ACCESS EXCLUSIVE lock on the table it references (to remove its triggers),
which would stop every writer of that table for the while; the ORM's cascades keep the
rows consistent instead. On any other database (SQLite for the demo) tables stay plain
and everything here does nothing.

A unique constraint without the id cannot be the partitioned table's. Where rows that must
be unique together always share a month (an event's notifications take its month), it is
made on each partition instead (`unique`: {index name: columns}), which holds across the
table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

EPOCH_YEAR = 2020
MONTH_SHIFT = 40
SEQUENCE_MAX = (1 << MONTH_SHIFT) - 1
LEGACY = "legacy"
ID_FUNCTION = "bankside_month_id"
# The role that owns the partitioned tables where the application's role owns none
# (docker/postgres/10-bankside-roles.sh): the application's role is a member of it, so
# that beat may make, detach and drop their months, and of nothing more.
PARTITION_OWNER = "bankside_partitions"

# PL/pgSQL, not SQL: a SQL function called with `clock_timestamp()` cannot be inlined (it
# reads its moment twice), so each statement calling it would parse and plan its body
# again; PL/pgSQL keeps its expression's plan for the session.
FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {ID_FUNCTION}(seq regclass, at timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  utc timestamp := at AT TIME ZONE 'UTC';
BEGIN
  RETURN ((extract(year FROM utc)::bigint - {EPOCH_YEAR}) * 12
          + extract(month FROM utc)::bigint - 1) << {MONTH_SHIFT}
         | nextval(seq);
END
$$
"""
FUNCTION_DROP_SQL = f"DROP FUNCTION IF EXISTS {ID_FUNCTION}(regclass, timestamptz)"


def month_first_sql(moment: str) -> str:
    """SQL for the first id of the month (UTC) of `moment`, an SQL timestamptz expression
    (a constant, never a value from outside)."""
    at = f"({moment}) AT TIME ZONE 'UTC'"
    return (
        f"(((extract(year FROM {at})::bigint - {EPOCH_YEAR}) * 12"
        f" + extract(month FROM {at})::bigint - 1) << {MONTH_SHIFT})"
    )


_MONTH_NAME = re.compile(r"_(\d{4})_(\d{2})$")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month in UTC, as its index from January 2020."""

    index: int

    @classmethod
    def of(cls, moment: datetime) -> Month:
        moment = moment.astimezone(UTC)
        return cls((moment.year - EPOCH_YEAR) * 12 + moment.month - 1)

    @classmethod
    def named(cls, year: int, month: int) -> Month:
        return cls((year - EPOCH_YEAR) * 12 + month - 1)

    def __add__(self, months: int) -> Month:
        return Month(self.index + months)

    def __sub__(self, months: int) -> Month:
        return Month(self.index - months)

    @property
    def year(self) -> int:
        return EPOCH_YEAR + self.index // 12

    @property
    def month(self) -> int:
        return self.index % 12 + 1

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def first_id(self) -> int:
        return self.index << MONTH_SHIFT

    @property
    def end_id(self) -> int:
        """The first id past the month."""
        return (self.index + 1) << MONTH_SHIFT

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


# The legacy partition holds the ids below month 0's end (January 2020's).
LEGACY_END = Month(0).end_id


@dataclass(frozen=True)
class Partition:
    """One partition of a table: a month's, or the legacy one (`month` None)."""

    table: str
    name: str
    month: Month | None
    rows: int  # the planner's estimate: exact after VACUUM or ANALYZE
    bytes: int  # with its indexes and TOAST

    @property
    def label(self) -> str:
        return LEGACY if self.month is None else str(self.month)

    @property
    def ids(self) -> tuple[int, int]:
        """The ids it holds: [low, high). The legacy one's end where month 0's does."""
        if self.month is None:
            return 0, LEGACY_END
        return self.month.first_id, self.month.end_id


def supported(db: BaseDatabaseWrapper | None = None) -> bool:
    return (db or connection).vendor == "postgresql"


def partition_name(table: str, month: Month | None) -> str:
    return f"{table}_{LEGACY}" if month is None else f"{table}_{month.year:04d}_{month.month:02d}"


def sequence_name(table: str) -> str:
    """The sequence a partitioned table's ids take their numbers from."""
    return f"{table}_id_seq"


def month_id(table: str, at: datetime) -> int:
    """A new id of `table` for a row written at `at` (the column's default takes the
    moment of its INSERT): for a row that belongs to another month than today's."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {ID_FUNCTION}(pg_get_serial_sequence(%s, 'id')::regclass, %s)",
            [table, at],
        )
        return int(cursor.fetchone()[0])


def table_partition(
    cursor: Any,
    table: str,
    months: Iterable[Month],
    unique: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Turn plain `table` into one partitioned by month of its id, in place: its rows
    become the legacy partition, its primary key, indexes (same names), checks and
    sequence move to the partitioned table, its foreign keys and those that reference it
    are dropped, and `months` get their partitions. The `unique` indexes stay on the
    legacy partition alone, and are made on each new one. For a migration: the table is
    locked until its commit, and attaching reads it once."""
    unique = unique or {}
    legacy = partition_name(table, None)
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    (old_sequence,) = cursor.fetchone()
    cursor.execute(f"SELECT last_value, is_called FROM {old_sequence}")  # noqa: S608
    last_value, is_called = cursor.fetchone()
    indexes = _indexes(cursor, table)
    primary_key = _constraints(cursor, table, "p")[0]
    sequence = sequence_name(table)
    statements = [
        *(f"ALTER TABLE {table} DROP CONSTRAINT {fk}" for fk in _constraints(cursor, table, "f")),
        *(
            f"ALTER TABLE {referencing} DROP CONSTRAINT {fk}"
            for referencing, fk in _references(cursor, table)
        ),
        # An identity column (Django's), or a serial one (a table made before Django 4.1).
        f"ALTER TABLE {table} ALTER COLUMN id DROP IDENTITY IF EXISTS",
        f"ALTER TABLE {table} ALTER COLUMN id DROP DEFAULT",
        f"DROP SEQUENCE IF EXISTS {old_sequence}",
        f"ALTER TABLE {table} RENAME TO {legacy}",
        f"ALTER TABLE {legacy} RENAME CONSTRAINT {primary_key} TO {_renamed(primary_key)}",
        *(f"ALTER INDEX {name} RENAME TO {_renamed(name)}" for name, _ in indexes),
        f"CREATE SEQUENCE {sequence} AS bigint MAXVALUE {SEQUENCE_MAX}",
        f"SELECT setval('{sequence}', {int(last_value)}, {bool(is_called)})",
        f"CREATE TABLE {table} (LIKE {legacy} INCLUDING CONSTRAINTS INCLUDING DEFAULTS"
        f" INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY RANGE (id)",
        f"ALTER TABLE {table} ADD CONSTRAINT {primary_key} PRIMARY KEY (id)",
        *(definition for name, definition in indexes if name not in unique),
        f"ALTER SEQUENCE {sequence} OWNED BY {table}.id",
        f"ALTER TABLE {table} ALTER COLUMN id"
        f" SET DEFAULT {ID_FUNCTION}('{sequence}'::regclass, clock_timestamp())",
        f"ALTER TABLE {table} ATTACH PARTITION {legacy}"
        f" FOR VALUES FROM (MINVALUE) TO ({LEGACY_END})",
    ]
    for statement in statements:
        cursor.execute(statement)
    for month in months:
        _partition_create(cursor, table, month, unique)


def table_unpartition(
    cursor: Any,
    table: str,
    foreign_keys: dict[str, str],
    unique: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Undo `table_partition`: one plain table with every row, its identity column
    continuing after the largest id, its `unique` constraints and `foreign_keys` ({name:
    definition}) back. Foreign keys of other tables that referenced it are the caller's."""
    cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")  # noqa: S608
    (start,) = cursor.fetchone()
    indexes = _indexes(cursor, table)
    primary_key = _constraints(cursor, table, "p")[0]
    plain = f"{table}_plain"
    statements = [
        f"CREATE TABLE {plain} (LIKE {table} INCLUDING CONSTRAINTS INCLUDING DEFAULTS"
        f" INCLUDING STORAGE INCLUDING COMPRESSION)",
        f"ALTER TABLE {plain} ALTER COLUMN id DROP DEFAULT",
        f"INSERT INTO {plain} SELECT * FROM {table}",  # noqa: S608
        f"DROP TABLE {table}",
        f"ALTER TABLE {plain} RENAME TO {table}",
        f"ALTER TABLE {table} ADD CONSTRAINT {primary_key} PRIMARY KEY (id)",
        *(definition for _, definition in indexes),
        f"ALTER TABLE {table} ALTER COLUMN id"
        f" ADD GENERATED BY DEFAULT AS IDENTITY (START WITH {int(start)})",
        *(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE ({', '.join(columns)})"
            for name, columns in (unique or {}).items()
        ),
        *(f"ALTER TABLE {table} ADD CONSTRAINT {n} {d}" for n, d in foreign_keys.items()),
    ]
    for statement in statements:
        cursor.execute(statement)


def partitions_list(table: str) -> list[Partition]:
    """`table`'s partitions, oldest first (the legacy one first); none on a plain table."""
    if not supported():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid)"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = to_regclass(%s) AND NOT i.inhdetachpending",
            [table],
        )
        found = [
            Partition(table, name, _month_of(table, name), max(rows, 0), size)
            for name, rows, size in cursor.fetchall()
        ]
    return sorted(found, key=lambda p: -1 if p.month is None else p.month.index)


def partitions_create(
    table: str, months: Sequence[Month], unique: Mapping[str, Sequence[str]] | None = None
) -> list[Month]:
    """Make `table`'s partitions for `months` that do not exist yet, each with its
    `unique` indexes; returns those made.

    Each is made empty beside the table and attached (ATTACH PARTITION takes a SHARE
    UPDATE EXCLUSIVE lock on the table: inserts and reads go on), in its own transaction
    that gives up after `lock_timeout` rather than queue writers behind it. Safe to run
    twice, or in two processes at once (the second finds the partition there).
    """
    if not supported():
        return []
    made = []
    for month in months:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", [partition_name(table, month)])
            if cursor.fetchone()[0] is not None:
                continue
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '5s'")
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [table])
            cursor.execute("SELECT to_regclass(%s)", [partition_name(table, month)])
            if cursor.fetchone()[0] is None:
                _partition_create(cursor, table, month, unique or {})
                made.append(month)
    return made


def partition_drop(partition: Partition) -> None:
    """Detach `partition` concurrently, then drop it; outside any transaction block.

    DETACH … CONCURRENTLY takes only a SHARE UPDATE EXCLUSIVE lock on the table and
    waits for the transactions that could see the partition; a detach interrupted
    halfway (the partition marked pending) is finished by the next call
    (`partitions_finalize`). DROP TABLE then locks only the detached table.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE {partition.table} DETACH PARTITION {partition.name} CONCURRENTLY"
        )
        cursor.execute(f"DROP TABLE {partition.name}")


def partitions_finalize(table: str) -> list[str]:
    """Finish the detaches of `table` interrupted halfway, and drop those partitions."""
    if not supported():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = to_regclass(%s) AND i.inhdetachpending",
            [table],
        )
        names = [name for (name,) in cursor.fetchall()]
        for name in names:
            cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {name} FINALIZE")
            cursor.execute(f"DROP TABLE {name}")
    return names


def partition_newest(partition: Partition, time_column: str) -> datetime | None:
    """The time in `time_column` of the partition's newest row (its largest id: rows
    are written in id order, and nothing is written to the legacy partition any more)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {time_column} FROM {partition.name} ORDER BY id DESC LIMIT 1"  # noqa: S608
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def partition_count(partition: Partition) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partition.name}")  # noqa: S608
        return int(cursor.fetchone()[0])


def tables_own(cursor: Any, tables: Iterable[str], role: str = PARTITION_OWNER) -> bool:
    """Give `tables` and their partitions (and sequences) to `role`, where it exists and
    the current role may; False otherwise (a development database, owned by whoever
    runs the migrations and beat alike)."""
    cursor.execute(
        "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = %s",
        [role],
    )
    found = cursor.fetchone()
    if found is None or not found[0]:
        return False
    for table in tables:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = to_regclass(%s)",
            [table],
        )
        for name in [table, *(name for (name,) in cursor.fetchall())]:
            cursor.execute(f'ALTER TABLE {name} OWNER TO "{role}"')
    return True


def _partition_create(
    cursor: Any, table: str, month: Month, unique: Mapping[str, Sequence[str]]
) -> None:
    """Make `table`'s partition for `month` with its `unique` indexes, owned by the
    table's owner (the role that makes it is a member of that owner where the two differ:
    `tables_own`)."""
    name = partition_name(table, month)
    cursor.execute(
        f"CREATE TABLE {name} (LIKE {table} INCLUDING CONSTRAINTS INCLUDING STORAGE"
        f" INCLUDING COMPRESSION)"
    )
    for index, columns in unique.items():
        cursor.execute(
            f"CREATE UNIQUE INDEX {unique_index_name(index, month)} ON {name}"
            f" ({', '.join(columns)})"
        )
    cursor.execute(
        "SELECT pg_get_userbyid(relowner), current_user FROM pg_class WHERE oid = to_regclass(%s)",
        [table],
    )
    owner, current = cursor.fetchone()
    if owner != current:
        cursor.execute(f'ALTER TABLE {name} OWNER TO "{owner}"')
    cursor.execute(
        f"ALTER TABLE {table} ATTACH PARTITION {name}"
        f" FOR VALUES FROM ({month.first_id}) TO ({month.end_id})"
    )


def unique_index_name(index: str, month: Month) -> str:
    """The name of `index` on the partition of `month` (the legacy one keeps its own)."""
    return f"{index[:55]}_{month.year:04d}_{month.month:02d}"


def _references(cursor: Any, table: str) -> list[tuple[str, str]]:
    """The foreign keys of other tables that reference `table`: (table, constraint)."""
    cursor.execute(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint"
        " WHERE confrelid = to_regclass(%s) AND contype = 'f' AND conrelid <> confrelid"
        " ORDER BY 1, 2",
        [table],
    )
    return [(referencing, name) for referencing, name in cursor.fetchall()]


def _month_of(table: str, name: str) -> Month | None:
    if name == partition_name(table, None):
        return None
    found = _MONTH_NAME.search(name)
    if found is None:
        raise ValueError(f"{name} is not named for a month of {table}.")
    return Month.named(int(found[1]), int(found[2]))


def _indexes(cursor: Any, table: str) -> list[tuple[str, str]]:
    """`table`'s indexes but its primary key's: (name, the statement that makes it)."""
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid"
        " WHERE x.indrelid = to_regclass(%s) AND NOT x.indisprimary ORDER BY i.relname",
        [table],
    )
    return [
        (name, definition.replace(" ON ONLY ", " ON ")) for name, definition in cursor.fetchall()
    ]


def _constraints(cursor: Any, table: str, kind: str) -> list[str]:
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = %s"
        " ORDER BY conname",
        [table, kind],
    )
    return [name for (name,) in cursor.fetchall()]


def _renamed(name: str) -> str:
    return f"{name[:56]}_{LEGACY}"
