"""Planned notifications written: each person's next sequence numbers, one round trip."""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from types import SimpleNamespace
from typing import Any, cast

from django.db import connection, models

from core.db.partitions import MONTH_SHIFT, sequence_name
from core.db.rows import (
    CHUNK,
    Statement,
    array_literal,
    array_type,
    arrays_of,
    arrays_usable,
    row_params,
)
from notifications.models import Notification, Recipient
from portal.models import Bank

State, Reason = Notification.State, Notification.Reason
# People per upsert: a full batch's in one statement, so queries do not grow with it.
INSERT_CHUNK = 2000


@dataclass(slots=True)
class Planned:
    """A notification about to be written: the columns of its row that differ from one
    notification to the next, by attribute name (`PLANNED_FIELDS`).

    Planning a batch makes one per event and link, so it is a plain slotted object rather
    than a model instance, which costs several times more to build. What every planned
    notification shares (its bank, its creation and queueing time, and a fresh row's
    counters and flags) is written once per statement (`_outbox_statements`).
    """

    event_id: int
    consent_id: int
    account_id: int
    event_type: str
    page_id: str
    psid: str
    locale: str
    next_attempt_at: datetime
    reason: str
    data_categories: list[str]
    state: str = State.PENDING
    detail: str = ""
    text: str = ""
    finished_at: datetime | None = None
    sequence: int = 0
    urgency: str = Notification.Urgency.ROUTINE


# The columns of a planned notification's own (`Planned`'s attributes), the sequence aside.
PLANNED_FIELDS = (
    "event",
    "consent",
    "account",
    "event_type",
    "urgency",
    "page_id",
    "psid",
    "state",
    "reason",
    "detail",
    "locale",
    "text",
    "data_categories",
    "next_attempt_at",
    "finished_at",
)
# The columns every planned notification shares: given once per statement.
SHARED_FIELDS = ("bank", "created_at", "queued_at")
# A fresh notification's counters and flags, as SQL literals.
FRESH_ROW = {
    "attempts": "0",
    "lease_owner": "''",
    "waiting": "FALSE",
    "window_closed": "FALSE",
    "uncertain": "FALSE",
    "resent": "FALSE",
    "form": "''",
    "message_id": "''",
}


def _outbox_statements(bank: Bank, planned: list[Planned], now: datetime) -> list[Statement]:
    """Write `planned` with the next sequence numbers of each person, in planned order, in
    statements that need no answer (one round trip, `statements_run`).

    `sequences_assign` in SQL: the people's counters are raised first (one upsert, people
    in sorted order as there, holding their rows until commit), then each notification's
    number is read back from its person's counter as it is inserted: the counter less
    how many of the person's planned notifications come after it.
    """
    wanted: dict[tuple[str, str], int] = defaultdict(int)
    for notification in planned:
        wanted[(notification.page_id, notification.psid)] += 1
    people = sorted(wanted)
    fields, select, columns, join = _notification_insert_parts(connection.vendor)
    params_of = row_params(fields)
    shared = row_params(
        [
            cast("models.Field[Any, Any]", Notification._meta.get_field(name))
            for name in SHARED_FIELDS
        ]
    )(SimpleNamespace(bank_id=bank.pk, created_at=now, queued_at=now))
    left = dict(wanted)
    rows = []  # each notification's values, then how many of its person's come after it
    for notification in planned:
        person = (notification.page_id, notification.psid)
        left[person] -= 1
        rows.append((*params_of(notification), left[person]))
    if arrays_usable(len(planned)):
        arrayed = _outbox_arrays(bank, people, wanted, shared, rows)
        if arrayed is not None:
            return arrayed
    quote = connection.ops.quote_name
    recipients = quote(Recipient._meta.db_table)
    statements: list[Statement] = []
    for start in range(0, len(people), INSERT_CHUNK):
        chunk = people[start : start + INSERT_CHUNK]
        statements.append(
            (
                f"INSERT INTO {recipients} (bank_id, page_id, psid, last_sequence, "  # noqa: S608
                f"unreachable_reason) VALUES {', '.join(['(%s, %s, %s, %s, %s)'] * len(chunk))} "
                f"ON CONFLICT (page_id, psid) DO UPDATE SET "
                f"last_sequence = {recipients}.last_sequence + excluded.last_sequence",
                [v for person in chunk for v in (bank.pk, *person, wanted[person], "")],
            )
        )
    row = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        statements.append(
            (
                f"INSERT INTO {quote(Notification._meta.db_table)} ({columns}) "  # noqa: S608
                f"SELECT {select} FROM (VALUES {', '.join([row] * len(chunk))}) AS v "
                f"JOIN {recipients} r ON {join}",
                [*shared, *(value for values in chunk for value in values)],
            )
        )
    return statements


def _outbox_arrays(
    bank: Bank,
    people: list[tuple[str, str]],
    wanted: dict[tuple[str, str], int],
    shared: list[Any],
    rows: list[tuple[Any, ...]],
) -> list[Statement] | None:
    """`_outbox_statements`' two statements on PostgreSQL, each taking its rows as a
    column a parameter (`array_literal`), so each is one prepared statement whatever the
    number of people and notifications. None when a value cannot go in an array."""
    counters = [
        array_literal(page for page, _ in people),
        array_literal(person for _, person in people),
        array_literal(wanted[person] for person in people),
    ]
    notifications = [array_literal(column) for column in zip(*rows, strict=True)]
    if None in counters or None in notifications:
        return None
    fields, select, columns, join = _notification_insert_parts(connection.vendor)
    quote = connection.ops.quote_name
    recipients = quote(Recipient._meta.db_table)
    person = cast("Callable[[str], models.Field[Any, Any]]", Recipient._meta.get_field)
    sequence = Notification._meta.get_field("sequence")
    names = ", ".join(f"column{n}" for n in range(1, len(fields) + 2))
    return [
        (
            f"INSERT INTO {recipients} (bank_id, page_id, psid, last_sequence, "  # noqa: S608
            f"unreachable_reason) SELECT %s::bigint, v.page_id, v.psid, v.wanted, '' FROM "
            f"unnest(%s::{array_type(person('page_id'))}, %s::{array_type(person('psid'))}, "
            f"%s::bigint[]) AS v(page_id, psid, wanted) ON CONFLICT (page_id, psid) DO UPDATE "
            f"SET last_sequence = {recipients}.last_sequence + excluded.last_sequence",
            [bank.pk, *counters],
        ),
        (
            f"INSERT INTO {quote(Notification._meta.db_table)} ({columns}) "  # noqa: S608
            f"SELECT {select} FROM unnest({arrays_of((*fields, sequence))}) AS v({names}) "
            f"JOIN {recipients} r ON {join}",
            [*shared, *notifications],
        ),
    ]


@cache
def _notification_insert_parts(vendor: str) -> tuple[list[Any], str, str, str]:
    """The fixed parts of `_outbox_statements`' INSERT … SELECT on `vendor`: the fields
    from VALUES, the SELECT list (the shared fields as parameters, the fresh row's
    literals, the fields from VALUES, then the sequence from the person's counter `r`),
    the column list in the same order, and the join to the counter.

    VALUES columns are column1, column2…; PostgreSQL types them from their literals, so
    each is cast to its column's type (a column of NULLs would otherwise be text).
    """
    postgresql = vendor == "postgresql"

    def typed(value: str, field: "models.Field[Any, Any]") -> str:
        return f"CAST({value} AS {field.db_type(connection)})" if postgresql else value

    meta = Notification._meta
    fields = [cast("models.Field[Any, Any]", meta.get_field(name)) for name in PLANNED_FIELDS]
    values = {field.name: typed(f"v.column{n}", field) for n, field in enumerate(fields, 1)}
    later = f"v.column{len(fields) + 1}"  # how many of the person's come after this one
    # PostgreSQL: the id begins with its event's month, whatever the clock says, so that
    # an event's notifications share its partition (`Notification`).
    own_id = (
        [
            f"(({values['event']} >> {MONTH_SHIFT}) << {MONTH_SHIFT})"
            f" | nextval('{sequence_name(meta.db_table)}'::regclass)"
        ]
        if postgresql
        else []
    )
    select = [
        *own_id,
        *(
            typed("%s", cast("models.Field[Any, Any]", meta.get_field(name)))
            for name in SHARED_FIELDS
        ),
        *FRESH_ROW.values(),
        *values.values(),
        f"r.last_sequence - {typed(later, meta.get_field('sequence'))}",
    ]
    names = [
        *(["id"] if postgresql else []),
        *SHARED_FIELDS,
        *FRESH_ROW,
        *PLANNED_FIELDS,
        "sequence",
    ]
    return (
        fields,
        ", ".join(select),
        # Each of these names a field with a column.
        ", ".join(connection.ops.quote_name(meta.get_field(name).column) for name in names),  # type: ignore[union-attr, arg-type]
        f"r.page_id = {values['page_id']} AND r.psid = {values['psid']}",
    )


def sequences_assign(bank: Bank, planned: Sequence[Planned | Notification]) -> None:
    """Give each notification the next sequence numbers of its person, in planned order.

    One upsert for the batch, people in sorted order so that concurrent batches lock
    their rows in the same order; the locks are held until commit (see `Recipient`).
    """
    wanted: dict[tuple[str, str], int] = defaultdict(int)
    for notification in planned:
        wanted[(notification.page_id, notification.psid)] += 1
    people = sorted(wanted)
    table = connection.ops.quote_name(Recipient._meta.db_table)
    tops: dict[tuple[str, str], int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(people), INSERT_CHUNK):
            chunk = people[start : start + INSERT_CHUNK]
            params: list[Any] = []
            for page_id, psid in chunk:
                params += [bank.pk, page_id, psid, wanted[(page_id, psid)], ""]
            cursor.execute(
                f"INSERT INTO {table} (bank_id, page_id, psid, last_sequence, "  # noqa: S608
                f"unreachable_reason) VALUES {', '.join(['(%s, %s, %s, %s, %s)'] * len(chunk))} "
                f"ON CONFLICT (page_id, psid) DO UPDATE SET "
                f"last_sequence = {table}.last_sequence + excluded.last_sequence "
                f"RETURNING page_id, psid, last_sequence",
                params,
            )
            tops.update({(page_id, psid): top for page_id, psid, top in cursor.fetchall()})
    used: dict[tuple[str, str], int] = defaultdict(int)
    for notification in planned:
        person = (notification.page_id, notification.psid)
        used[person] += 1
        notification.sequence = tops[person] - wanted[person] + used[person]
