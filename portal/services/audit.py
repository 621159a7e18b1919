"""The audit log's one writer: every entry of every lane is appended here.

Each bank's audit log (and the platform's) is spread over lanes (`AuditChain`), each a
hash chain with its own head row, up to `AUDIT_CHAIN_LANES` of them. A writer locks a
FREE lane's head (`FOR UPDATE SKIP LOCKED`, lowest lane first), so concurrent writers of
one bank (web processes storing events, workers recording deliveries) never wait on each
other; only when every lane is held does a writer wait, on the lane its database
connection's process id picks (`pg_backend_pid() % N`), so waiting writers spread over
the lanes instead of queueing on one. N should therefore be at least the number of
database connections that write for one bank at once (web processes' and workers'): with
fewer lanes than such writers, one of them finds every lane held and waits. The entries
of one transaction go to one lane, one after the other: the lane a transaction took is
remembered in a transaction-local setting and taken again by its next append. A log's
lanes are all made the first time it is written to (`audit_lanes_ensure`; a bank's
creation does it); a writer meeting lanes that another transaction is making waits for
it, once in the log's life. SQLite (the demo) has no row locks and one writer at a time:
one lane there.

Each lane is a hash chain like any other, so verification (`portal.selectors`) walks each
from genesis to its head; a checkpoint (`portal.checkpoints`) signs every lane's head of
a log together, so a lane cut short or dropped is caught as surely as an edited entry.

Appending locks a lane head (`_head_lock`), numbers and hashes the entries in order
(`_chained`), inserts them and only then moves the head onto the last one (`_head_move`):
the database refuses a head move onto an entry its lane does not hold. `audit_record`
appends one entry and returns it; `audit_record_many` appends a batch (delivery writes
one entry per message) with the lock taken once and the rows inserted in one statement;
`audit_append_last` goes with the last writes of a transaction (the events API).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from types import SimpleNamespace
from typing import Any, cast

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from core import context
from core.db.rows import (
    EncodedJson,
    Statement,
    insert_statements,
    statement_execute,
    statements_run,
)
from core.digests import sha256_hex
from portal.audit import GENESIS_HASH, Actor, entry_document, stored_details
from portal.models import AuditChain, AuditEvent, Bank

_ACTION = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$")

AUDIT_FIELDS = (
    "chain",
    "seq",
    "bank",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "request_id",
    "source_ip",
    "details",
    "data_categories",
    "prev_hash",
    "hash",
)


CURRENT = object()  # an entry's context: the one current when its statements are made


@dataclass(frozen=True)
class AuditEntry:
    """One entry to append. `actor`, where set, is its own (else the one the batch is
    appended for); `context` is the request it records (its id and source address),
    `CURRENT` for the request being served, or None for none."""

    action: str
    target_type: str
    target_id: str
    details: dict[str, Any] = field(default_factory=dict)
    data_categories: list[str] = field(default_factory=list)
    actor: Actor | None = None
    context: object = CURRENT


@transaction.atomic
def audit_record(
    *,
    actor: Actor,
    action: str,
    bank: Bank | None,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str = "",
    details: dict[str, Any] | None = None,
    data_categories: list[str] | None = None,
    request_id: str | None = None,
    source_ip: str | None = None,
) -> AuditEvent:
    """Append one entry to the audit log of `bank` (or the platform's log).

    Call it inside the transaction of the change it records, so both land or neither.
    A lane head of the bank's log is locked for the rest of that transaction: concurrent
    writers to one bank each take another lane, and no lane ever forks. Secret-named keys
    in `details` are masked before anything is stored, and personal values (a PSID) are
    replaced by their pseudonymous reference: entries can never be erased, so they never
    hold personal data.
    """
    if not _ACTION.match(action):
        raise ValueError(f"Audit action {action!r} must look like 'noun.verb'.")
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or str(target.pk)
    current = context.current()
    if request_id is None:
        request_id = current.request_id if current else ""
    if source_ip is None and current is not None:
        source_ip = current.source_ip
    entry = AuditEntry(
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=details or {},
        data_categories=data_categories or [],
        context=context.RequestContext(request_id=request_id, source_ip=source_ip),
    )
    bank_id = bank.pk if bank else None
    head = _head_lock(bank_id)
    (row,) = _chained(head, [_fields(actor, bank_id, entry)])
    # Saved as a model, not inserted as a row, to return the entry with its id.
    event = AuditEvent.objects.create(**vars(row))
    statements_run([_head_move(head.id, row.seq, row.hash)])
    return event


def audit_record_many(*, actor: Actor, bank_id: int, entries: list[AuditEntry]) -> None:
    """Append `entries` to a lane of the bank's log in order, inside the caller's transaction.

    Within a request the entries carry its id and source address, as `audit_record`'s do.
    """
    statements_run(audit_statements(actor=actor, bank_id=bank_id, entries=entries))


def audit_statements(
    *,
    actor: Actor,
    bank_id: int,
    entries: list[AuditEntry],
    before: Sequence[Statement] = (),
) -> list[Statement]:
    """Lock a lane head of the bank's log and return the statements appending `entries`
    to it: their rows in one INSERT, then the head moved onto the last.

    The caller runs them (`statements_run`) in the same transaction, with anything else
    that belongs at its end, so the chain lock is held for as little as one round trip
    before the commit. Statements `before` run just before the lock is taken, in the same
    round trip.
    """
    if not entries:
        statements_run(before)
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record_many must run inside the change's transaction")
    head = _head_lock(bank_id, before=before)
    occurred_at = timezone.now()
    rows = _chained(
        head, [_fields(actor, bank_id, entry, occurred_at) for entry in entries], encoded=True
    )
    return [
        *insert_statements(AuditEvent, AUDIT_FIELDS, rows),
        _head_move(head.id, rows[-1].seq, rows[-1].hash),
    ]


def audit_append_last(
    *,
    actor: Actor,
    bank_id: int,
    entries: Sequence[AuditEntry],
    before: Sequence[Statement] = (),
    after: Sequence[Statement] = (),
) -> None:
    """Append `entries` to a lane of the bank's log, in order, with the last writes of the
    transaction: `before` run just before them and `after` just after (their results
    unread).

    On PostgreSQL the database appends them (`audit_append_statements`), so nothing is
    read back and all of it goes with the COMMIT where the database backend can
    (`statements_run(..., at_commit=True)`). Elsewhere the lane head is read first
    (`audit_statements`), then the rest runs in one more round trip.
    """
    if connection.vendor == "postgresql":
        appended = audit_append_statements(actor=actor, bank_id=bank_id, entries=entries)
        statements_run([*before, *appended, *after], at_commit=True)
    else:
        statements = audit_statements(
            actor=actor, bank_id=bank_id, entries=list(entries), before=before
        )
        statements_run([*statements, *after])


def audit_append_statements(
    *, actor: Actor, bank_id: int, entries: Sequence[AuditEntry]
) -> list[Statement]:
    """The statements appending `entries`, in order, to a lane of the bank's log, the
    database doing the chain's part: nothing is read back, so they can go with the commit
    (`statements_run(..., at_commit=True)`) and the lane is locked for that one round
    trip only. PostgreSQL only.

    The scope's lanes are created if missing, then one statement takes a lane head as
    `_head_lock` takes it (the transaction's own lane, else a free one, else a busy one to
    wait on), numbers and hashes the entries one after the other from it, inserts them
    and moves the head onto the last. Each entry's hash is taken of its document
    (`portal.audit.entry_document`) with the lane's key, the previous hash and its
    sequence number filled in: the same text `entry_hash` hashes, so
    `audit_chain_verify` checks it like any other. The entries go as one JSON parameter,
    so the statement is the same (and prepared once) whatever their number.
    """
    if connection.vendor != "postgresql":
        raise RuntimeError("audit_append_statements needs PostgreSQL; use audit_statements")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_append_statements must run inside the change's transaction")
    if not entries:
        return []
    scope = AuditChain.scope_of(bank_id)
    append, recorded = _append_sql()
    records = []
    for n, entry in enumerate(entries, start=1):
        fields = _fields(actor, bank_id, entry)
        document = entry_document(**fields)
        fields["occurred_at"] = fields["occurred_at"].isoformat()
        record = _encode(
            {
                "n": n,
                "doc_head": document.head,
                "doc_before": document.before,
                "doc_between": document.between,
                "doc_after": document.after,
                **{column: fields[attname] for column, attname in recorded},
            }
        )
        # The details as the document has them (the same JSON value, written once).
        records.append(f'{record[:-1]},"details":{document.details}}}')
    return [
        _ensure(scope, bank_id),
        (append, [*_lock_params(scope), "[" + ",".join(records) + "]"]),
    ]


def audit_lanes_ensure(*, bank_id: int | None) -> None:
    """Create the lanes of the log of `bank_id` (the platform's for None) that are missing.

    Every append does this first, in its own transaction; a writer that finds lanes
    another transaction is creating waits for that transaction to end. Making them ahead
    (a bank's creation appends its first entry; migration 0029 made them for the banks
    before lanes) keeps even that first wait away.
    """
    if connection.vendor == "postgresql":
        statements_run([_ensure(AuditChain.scope_of(bank_id), bank_id)])
    else:
        _head_lock(bank_id)


def audit_export_record(
    *, actor: Actor, bank: Bank, what: str, fmt: str, filters: dict[str, Any]
) -> AuditEvent:
    """Record that `actor` exported `what` of `bank` with `filters`, before it is sent."""
    return audit_record(
        actor=actor,
        action="audit.exported" if what == "audit_events" else f"{what}.exported",
        bank=bank,
        details={"what": what, "format": fmt, "filters": filters},
    )


@dataclass(frozen=True, slots=True)
class _Head:
    """A lane head as locked: its row id, key, sequence number and hash."""

    id: int
    key: str
    seq: int
    hash: str


def lanes() -> int:
    """How many lanes a scope is spread over here: `AUDIT_CHAIN_LANES` where rows can be
    locked and skipped (PostgreSQL); one on SQLite (the demo), whose one writer at a time
    serialises its log anyway."""
    if connection.features.has_select_for_update_skip_locked:
        lanes: int = settings.AUDIT_CHAIN_LANES
        return lanes
    return 1


def _head_lock(bank_id: int | None, *, before: Sequence[Statement] = ()) -> _Head:
    """Lock a lane head of the log of `bank_id` (the platform's for None) for the rest of
    the transaction, its lanes created first if missing, and return it. Statements
    `before` run first, in the same round trip.

    On PostgreSQL the lane is, in this order: the one this transaction appended to already
    (its entries stay together), the lowest free one, or, when all are held, lane
    `pg_backend_pid() % N`, waited for."""
    scope = AuditChain.scope_of(bank_id)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            statement_execute(
                cursor,
                _lock_sql(),
                _lock_params(scope),
                before=[*before, _ensure(scope, bank_id)],
            )
            found = cursor.fetchone()
        if found is None:  # no lane at all: the lanes' rows were deleted
            raise RuntimeError(f"the audit log {scope!r} has no lane to append to")
        return _Head(*found)
    table = connection.ops.quote_name(AuditChain._meta.db_table)
    # SQLite (the demo) has no row locks: its one writer at a time serialises the log.
    head = (
        f"SELECT id, key, head_seq, head_hash FROM {table} "  # noqa: S608
        "WHERE scope = %s AND lane = 0"
    )
    with connection.cursor() as cursor:
        statement_execute(cursor, head, [scope], before=before)
        found = cursor.fetchone()
        if found is None:
            AuditChain.objects.bulk_create(
                [AuditChain(key=scope, scope=scope, lane=0, bank_id=bank_id)],
                ignore_conflicts=True,
            )
            statement_execute(cursor, head, [scope])
            found = cursor.fetchone()
    return _Head(*found)


def _chained(
    head: _Head, entries: list[dict[str, Any]], *, encoded: bool = False
) -> list[SimpleNamespace]:
    """The rows of `entries` (`_fields`) appended after the lane `head`: each numbered and
    hashed (`entry_hash`), hashing the one before it. `encoded`: each row's details as
    the JSON text the hash was taken of (`EncodedJson`), for `insert_statements`."""
    seq, prev = head.seq, head.hash
    rows = []
    for fields in entries:
        seq += 1
        document = entry_document(**fields)
        prev_hash, prev = (
            prev,
            sha256_hex(document.text(chain_key=head.key, prev_hash=prev, seq=seq)),
        )
        row = SimpleNamespace(chain_id=head.id, hash=prev, seq=seq, prev_hash=prev_hash, **fields)
        if encoded:
            row.details = EncodedJson(document.details)
        rows.append(row)
    return rows


def _head_move(chain_id: int, seq: int, digest: str) -> Statement:
    """The statement moving a chain head onto its entry `seq`, once that entry is stored."""
    table = connection.ops.quote_name(AuditChain._meta.db_table)
    return (
        f"UPDATE {table} SET head_seq = %s, head_hash = %s WHERE id = %s",  # noqa: S608
        [seq, digest, chain_id],
    )


def _fields(
    actor: Actor, bank_id: int | None, entry: AuditEntry, occurred_at: datetime | None = None
) -> dict[str, Any]:
    """An entry's fields, except its place in the chain (`seq`, `prev_hash`)."""
    current = cast(
        "context.RequestContext | None",
        context.current() if entry.context is CURRENT else entry.context,
    )
    actor = entry.actor or actor
    return {
        "bank_id": bank_id,
        "occurred_at": occurred_at or timezone.now(),
        "actor_type": actor.type,
        "actor_id": actor.id,
        "actor_label": actor.label,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": str(entry.target_id),
        "request_id": current.request_id if current else "",
        "source_ip": current.source_ip if current else None,
        "details": stored_details(entry.details),
        "data_categories": sorted(set(entry.data_categories)),
    }


_APPENDED = tuple(
    name for name in AUDIT_FIELDS if name not in ("chain", "seq", "prev_hash", "hash")
)


def _lane_setting(scope: str) -> str:
    """The transaction-local setting naming the lane this transaction holds in `scope`."""
    return "bankside.audit_lane_" + re.sub(r"\W", "_", scope)


def _ensure(scope: str, bank_id: int | None) -> Statement:
    """The statement creating the lanes of `scope` that are missing, empty (it writes
    nothing, and looks at one row, once the last lane exists)."""
    n = lanes()
    return (_ensure_sql(), [scope, scope, scope, bank_id, GENESIS_HASH, n - 1, scope, n - 1])


@cache
def _ensure_sql() -> str:
    chain = connection.ops.quote_name(AuditChain._meta.db_table)
    return (
        f"INSERT INTO {chain} (key, scope, lane, bank_id, head_seq, head_hash) "  # noqa: S608
        "SELECT CASE WHEN n = 0 THEN %s::text ELSE %s::text || '/' || n END, "
        "%s::text, n, %s::bigint, 0, %s::text FROM generate_series(0, %s::int) AS n "
        f"WHERE NOT EXISTS (SELECT FROM {chain} WHERE scope = %s::text AND lane = %s::int) "
        "ON CONFLICT DO NOTHING"
    )


def _lock_params(scope: str) -> list[Any]:
    """The parameters of `_lanes_sql`."""
    n, setting = lanes(), _lane_setting(scope)
    return [scope, setting, scope, n, scope, n, setting]


@cache
def _lanes_sql() -> str:
    """The CTEs locking a lane head of a scope (`_head_lock`): `held` is its (id, key,
    head_seq, head_hash), noted in the transaction's setting (`_lane_setting`)."""
    chain = connection.ops.quote_name(AuditChain._meta.db_table)
    columns = "id, key, head_seq, head_hash"
    return (
        f"WITH mine AS (SELECT {columns} FROM {chain} "  # noqa: S608
        "WHERE scope = %s::text "
        "AND id = nullif(current_setting(%s::text, true), '')::bigint FOR UPDATE), "
        f"free AS (SELECT {columns} FROM {chain} "
        "WHERE scope = %s::text AND lane < %s::int AND NOT EXISTS (SELECT FROM mine) "
        "ORDER BY lane LIMIT 1 FOR UPDATE SKIP LOCKED), "
        f"busy AS (SELECT {columns} FROM {chain} "
        "WHERE scope = %s::text AND lane = mod(pg_backend_pid(), %s::int) "
        "AND NOT EXISTS (SELECT FROM mine) AND NOT EXISTS (SELECT FROM free) FOR UPDATE), "
        f"held AS (SELECT {columns}, set_config(%s::text, id::text, true) AS noted "
        "FROM (SELECT * FROM mine UNION ALL SELECT * FROM free UNION ALL SELECT * FROM busy) "
        "AS taken LIMIT 1)"
    )


@cache
def _lock_sql() -> str:
    return f"{_lanes_sql()} SELECT id, key, head_seq, head_hash FROM held"  # noqa: S608


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@cache
def _append_sql() -> tuple[str, tuple[tuple[str, str], ...]]:
    """`audit_append_statements`' appending statement, made once: the entries' records
    (one JSON object each) read as rows, chained by a recursive query from the lane head
    taken, inserted, and the head moved onto the last. With it, the (column, attribute)
    of each field a record carries by the column's name, but the details (written
    apart)."""
    quote = connection.ops.quote_name
    chain, event = quote(AuditChain._meta.db_table), quote(AuditEvent._meta.db_table)
    fields = [
        cast("models.Field[Any, Any]", AuditEvent._meta.get_field(name)) for name in _APPENDED
    ]
    # Each of these fields has a column (the stubs allow one without).
    columns = [quote(field.column) for field in fields]  # type: ignore[arg-type]
    record = ", ".join(
        [
            "n int, doc_head text, doc_before text, doc_between text, doc_after text",
            *(f"{column} {_cast(field)}" for column, field in zip(columns, fields, strict=True)),
        ]
    )

    def hashed(prev: str, seq: str) -> str:
        return (
            "encode(sha256(convert_to(d.doc_head || '\"' || h.key || '\"' || d.doc_before "
            f"|| '\"' || {prev} || '\"' || d.doc_between || ({seq})::text || d.doc_after, "
            "'UTF8')), 'hex')"
        )

    sql = (
        f"WITH RECURSIVE {_lanes_sql().removeprefix('WITH ')}, "  # noqa: S608
        f"d AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS d({record})), "
        "c AS (SELECT d.n, h.head_seq + 1 AS seq, h.head_hash::text AS prev, "
        f"{hashed('h.head_hash', 'h.head_seq + 1')} AS hash FROM held h JOIN d ON d.n = 1 "
        "UNION ALL SELECT d.n, c.seq + 1, c.hash, "
        f"{hashed('c.hash', 'c.seq + 1')} FROM c JOIN d ON d.n = c.n + 1 CROSS JOIN held h), "
        f"entry AS (INSERT INTO {event} (chain_id, seq, prev_hash, hash, {', '.join(columns)}) "
        f"SELECT h.id, c.seq, c.prev, c.hash, {', '.join(f'd.{column}' for column in columns)} "
        "FROM c JOIN d ON d.n = c.n CROSS JOIN held h ORDER BY c.n RETURNING chain_id, seq, hash) "
        f"UPDATE {chain} SET head_seq = e.seq, head_hash = e.hash FROM (SELECT chain_id, seq, "
        f"hash FROM entry ORDER BY seq DESC LIMIT 1) AS e WHERE {chain}.id = e.chain_id"
    )
    recorded = tuple(
        (cast(str, field.column), field.attname) for field in fields if field.name != "details"
    )
    return sql, recorded


def _cast(field: models.Field[Any, Any]) -> str | None:
    """The PostgreSQL type of an audit column's parameter in a prepared statement; text
    for a length-limited column (a cast to `varchar(n)` would cut a long value short
    where storing it must fail)."""
    return "text" if isinstance(field, models.CharField) else field.db_type(connection)
