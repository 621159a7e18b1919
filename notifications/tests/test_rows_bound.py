"""Statements are bound exactly as the driver binds them, however their values repeat;
array literals read back as the values they were made of."""

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connection

from core.db.rows import _bound, array_literal
from notifications.models import Notification

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="binding for PostgreSQL's driver"
)


class Shouting(str):
    """A text whose `str()` is not its text: the driver binds the text."""

    def __str__(self) -> str:
        return self.upper()


VALUES = [
    0,
    -5,
    10**30,
    True,
    False,
    None,
    "",
    "plain",
    "it's",
    "back\\slash",
    "percent % and %s",
    "line\nbreak",
    "Café •••• 1234 — ₩ 😀",
    "'); DROP TABLE portal_bank; --",
    "''",
    "\\'; SELECT 1; --",
    "tab\tand\rreturn \u2028 \ufeff",
    Decimal("-42.10"),
    Decimal("1E+3"),
    Decimal("1.0"),
    Decimal("1.00"),
    1.5,
    datetime(2026, 11, 24, 5, 30, tzinfo=UTC),
    datetime(2026, 11, 24, 6, 30, tzinfo=timezone(timedelta(hours=1))),
    datetime(2026, 11, 24, 5, 30, 0, 123456, tzinfo=UTC),
    datetime(2026, 11, 24, 5, 30, 0, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=45, seconds=30))),
    datetime(2026, 11, 24, 5, 30),
    date(2026, 11, 24),
    ["a", "b'c"],
    [1, 2, 3],
    Notification.State.PENDING,
    "pending",
    Notification.Reason.SUPERSEDED,
    Shouting("quiet, it's"),
    '{"amount": "-42.10", "note": "it\'s"}',
]


def test_every_kind_of_value_is_bound_as_the_driver_binds_it(db):
    sql = "SELECT " + ", ".join(["%s"] * len(VALUES))
    with connection.cursor() as cursor:
        assert _bound(cursor.cursor, sql, VALUES) == cursor.cursor.mogrify(sql, VALUES).decode()


def test_repeated_values_are_bound_alike_in_every_place(db):
    repeated = VALUES * 3
    sql = "VALUES " + ", ".join(["(%s)"] * len(repeated))
    with connection.cursor() as cursor:
        bound = _bound(cursor.cursor, sql, repeated)
        assert bound == cursor.cursor.mogrify(sql, repeated).decode()


def test_a_bound_statement_reads_back_its_values(db):
    text = ["Café '•••• 1234'", "%s", "--", ""]
    with connection.cursor() as cursor:
        cursor.execute(_bound(cursor.cursor, "SELECT %s, %s, %s, %s, %s, %s", [*text, -5, 7]))
        assert cursor.fetchone() == (*text, -5, 7)


def test_without_standard_conforming_strings_texts_are_left_to_the_driver(db):
    sql = "SELECT " + ", ".join(["%s"] * len(VALUES))
    with connection.cursor() as cursor:
        cursor.execute("SET standard_conforming_strings = off")
        try:
            bound = _bound(cursor.cursor, sql, VALUES)
            assert bound == cursor.cursor.mogrify(sql, VALUES).decode()
            assert r"'back\\slash'" in bound  # the backslash doubled: the setting is off
        finally:
            cursor.execute("SET standard_conforming_strings = on")


def test_a_text_with_a_nul_is_refused_as_the_driver_refuses_it(db):
    with connection.cursor() as cursor:
        with pytest.raises(ValueError, match="cannot contain NUL") as driver:
            cursor.cursor.mogrify("SELECT %s", ["a\x00b"])
        with pytest.raises(ValueError, match="cannot contain NUL") as ours:
            _bound(cursor.cursor, "SELECT %s", ["a\x00b"])
    assert str(ours.value) == str(driver.value)


def test_sql_with_other_percent_signs_is_left_to_the_driver(db):
    sql = "SELECT %s, 'a%%b'"
    with connection.cursor() as cursor:
        assert _bound(cursor.cursor, sql, ["x"]) == cursor.cursor.mogrify(sql, ["x"]).decode()


TEXTS = [
    "",
    "plain",
    "NULL",
    "null",
    "it's",
    'a "quoted" word',
    "back\\slash",
    "\\",
    '\\"',
    "{braces}, commas; and spaces ",
    " leading and trailing ",
    "line\nbreak\ttab\rreturn",
    "Café •••• 1234 — ₩ 😀",
    "'); DROP TABLE portal_bank; --",
    "percent % and %s",
    "{}",
    "{,}",
    Notification.State.PENDING,
    Shouting("quiet"),
    None,
]
MOMENTS = [
    datetime(2026, 11, 24, 5, 30, tzinfo=UTC),
    datetime(2026, 11, 24, 6, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1))),
    datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=45, seconds=30))),
    None,
]


@pytest.mark.parametrize(
    ("values", "sql_type"),
    [
        (TEXTS, "text"),
        (TEXTS, "varchar(64)"),
        ([0, -5, 10**17, None], "bigint"),
        ([True, False, None], "boolean"),
        (MOMENTS, "timestamp with time zone"),
        (  # one instant in two zones
            [
                datetime(2026, 11, 24, 5, 30, tzinfo=UTC),
                datetime(2026, 11, 24, 6, 30, tzinfo=timezone(timedelta(hours=1))),
            ],
            "timestamp with time zone",
        ),
        ([Notification.State.PENDING, "pending", "held", Notification.State.HELD], "text"),
        (['{"note": "it\'s \\"quoted\\"", "a": [1, {}]}', "[]", "{}", None], "jsonb"),
        ([], "text"),
    ],
)
def test_an_array_literal_reads_back_as_the_values_it_was_made_of(db, values, sql_type):
    literal = array_literal(values)
    sql = f"SELECT unnest(%s::{sql_type}[])"
    with connection.cursor() as cursor:
        # Through the statement binder and through the driver alike.
        cursor.execute(_bound(cursor.cursor, sql, [literal]))
        bound = [value for (value,) in cursor.fetchall()]
        cursor.execute(sql, [literal])
        driven = [value for (value,) in cursor.fetchall()]
    if sql_type == "jsonb":  # compared parsed: jsonb keeps keys in an order of its own
        values, bound, driven = (
            [None if value is None else json.loads(value) for value in read]
            for read in (values, bound, driven)
        )
    assert bound == driven == [str.__str__(v) if isinstance(v, str) else v for v in values]


def test_an_array_literal_refuses_a_nul_and_leaves_other_values_to_values_lists():
    with pytest.raises(ValueError, match="cannot contain NUL"):
        array_literal(["a\x00b"])
    assert array_literal([Decimal("1.5")]) is None
    assert array_literal([datetime(2026, 11, 24, 5, 30)]) is None  # no zone: not written here
    assert array_literal([["nested"]]) is None
    assert array_literal([1, True]) is None  # equal to a set, never one element for both


def test_many_rows_go_as_arrays_where_the_server_reads_backslashes_as_written(db):
    from types import SimpleNamespace

    from core.db.rows import ARRAY_MIN_ROWS, insert_statements
    from notifications.models import Outcome

    def rows(count):
        return [
            SimpleNamespace(bank_id=1, type="event.accepted", event_ref=f'say "hi" \\ {n}')
            for n in range(count)
        ]

    names = ("bank", "type", "event_ref")
    ((arrayed, params),) = insert_statements(Outcome, names, rows(ARRAY_MIN_ROWS))
    assert "unnest(" in arrayed and len(params) == 3
    ((few, params),) = insert_statements(Outcome, names, rows(ARRAY_MIN_ROWS - 1))
    assert "VALUES" in few and len(params) == 3 * (ARRAY_MIN_ROWS - 1)
    with connection.cursor() as cursor:
        cursor.execute("SET standard_conforming_strings = off")
        try:
            ((listed, params),) = insert_statements(Outcome, names, rows(ARRAY_MIN_ROWS))
        finally:
            cursor.execute("SET standard_conforming_strings = on")
    assert "VALUES" in listed and "unnest(" not in listed and len(params) == 3 * ARRAY_MIN_ROWS
