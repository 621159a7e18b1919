"""Plain multi-row INSERTs, and several statements in one round trip.

Delivery appends three rows per message sent (its attempt, its audit entry and its
outcome), and every post to the events API appends an audit entry and outcomes. Django's
`bulk_create` spends more time preparing those values in Python than the database spends
storing them; this writes the same rows in one statement per 500, converting each column
once by its field type. `statements_run` sends statements together, so that a lock taken
just before them is held for one round trip until the commit.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from functools import cache
from operator import attrgetter
from typing import Any, cast
from weakref import WeakKeyDictionary

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg2.extensions import AsIs, adapt, register_adapter
from psycopg2.extensions import cursor as RawCursor

CHUNK = 500

# `json.dumps(value, cls=DjangoJSONEncoder)`, as a JSONField writes a value, without
# making an encoder for every value (the encoder keeps no state between calls).
json_text = DjangoJSONEncoder().encode


class EncodedJson:
    """A JSON field's value already written as JSON text (by whoever had to write it
    anyway): inserted as that text, not encoded again."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _json_param(value: Any) -> str:
    return value.text if type(value) is EncodedJson else json_text(value)


def _converter(field: models.Field[Any, Any]) -> Callable[[Any], Any] | None:
    """How a value of `field` becomes a query parameter; None where it is passed as is."""
    if isinstance(field, models.JSONField):
        return _json_param
    if isinstance(field, models.DateTimeField):
        adapt = connection.ops.adapt_datetimefield_value  # looked up once, not per value
        return lambda value: None if value is None else adapt(value)
    if isinstance(field, models.GenericIPAddressField):
        return lambda value: value or None
    return None


Statement = tuple[str, Sequence[Any]]


class Bound:
    """A parameter already written as SQL (an array literal, `array_literal`): bound as
    it is, by `_bound` and by the driver."""

    __slots__ = ("sql",)

    def __init__(self, sql: str) -> None:
        self.sql = sql


register_adapter(Bound, lambda bound: AsIs(bound.sql))


# Rows from which a statement takes its columns as arrays: below it, `VALUES` costs less
# Python to write and PostgreSQL about as much to read (and is prepared all the same).
ARRAY_MIN_ROWS = 16


def arrays_usable(rows: int) -> bool:
    """Whether `rows` rows go to the database as a column a parameter (`array_literal`,
    read back with `unnest`): at least `ARRAY_MIN_ROWS`, on PostgreSQL, over a UTF-8
    connection with standard-conforming strings (the server's default), where a
    literal's backslashes reach the array parser as written."""
    if rows < ARRAY_MIN_ROWS or connection.vendor != "postgresql":
        return False
    connection.ensure_connection()
    raw = connection.connection
    return bool(
        raw.encoding == "UTF8" and (raw.get_parameter_status("standard_conforming_strings") == "on")
    )


def array_literal(values: Iterable[Any]) -> Bound | None:
    """`values` as one PostgreSQL array literal, for a parameter cast to an array of the
    column's type (`%s::bigint[]`); None when one is of a type not written here (then
    the caller writes the rows out, `VALUES`).

    A text goes between double quotes with its backslashes and double quotes escaped (a
    NUL refused, as the driver refuses it), a time with a zone in ISO 8601, an integer as
    its digits, a truth as t or f, nothing as NULL; the whole is then one text literal.
    What the array's parser reads is what `VALUES` would have written, and a column of
    a thousand rows is parsed as one value instead of a thousand expressions. Each
    distinct value is written once: equal times in two zones alike, as the one instant
    a column of times with a zone stores.
    """
    values = values if isinstance(values, list | tuple) else list(values)
    kinds = set(map(type, values))
    if bool in kinds and int in kinds:  # True is 1 to a set: never one element for both
        return None
    try:
        distinct = set(values)
    except TypeError:  # a list, a dict: not written here
        return None
    elements: dict[Any, str] = {}
    for value in distinct:  # each distinct value is written once
        element = _element(value)
        if element is None:
            return None
        elements[value] = element
    return Bound("'{" + ",".join(map(elements.__getitem__, values)).replace("'", "''") + "}'")


def _element(value: Any) -> str | None:
    """One array element (see `array_literal`); None for a type not written here."""
    kind = type(value)
    if kind is int:
        return str(value)
    if value is None:
        return "NULL"
    if kind is bool:
        return "t" if value else "f"
    if kind is datetime:
        return f'"{value.isoformat()}"' if value.tzinfo is not None else None
    if isinstance(value, str):  # a text choice too, as its text
        if "\x00" in value:
            raise ValueError("A string literal cannot contain NUL (0x00) characters.")
        text = str.__str__(value)
        if "\\" in text or '"' in text:
            text = text.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'
    return None


@cache
def column_type(field: models.Field[Any, Any]) -> str | None:
    """The SQL type of `field`'s column (PostgreSQL's, where arrays are used), read once:
    a field's type costs a dozen calls (a new field for a foreign key's)."""
    return field.db_type(connection)


def array_type(field: models.Field[Any, Any]) -> str:
    """The SQL type of an array of `field`'s column, for `%s::<type>`."""
    return f"{column_type(field)}[]"


@cache
def arrays_of(fields: tuple[models.Field[Any, Any], ...]) -> str:
    """One cast parameter a field, `%s::<array type>, …`, for `unnest(…)`."""
    return ", ".join(f"%s::{array_type(field)}" for field in fields)


def insert_statements(
    model: type[models.Model], names: Sequence[str], objs: Iterable[Any]
) -> list[Statement]:
    """The INSERTs of `objs` setting only the fields in `names`.

    Each object has the fields' attributes (`bank_id` for `bank`): an unsaved model
    instance, or a plain row object where building instances would cost more than the
    insert. Many rows on PostgreSQL go in one statement taking a column a parameter
    (`arrays_usable`, `array_literal`), however many: prepared once, and cheap for the
    server to read; elsewhere, and for values not written as array elements, `VALUES`
    of up to `CHUNK` rows.
    """
    pending = list(objs)
    if not pending:
        return []
    fields, columns, params_of = _insert_parts(connection.vendor, model, tuple(names))
    quote = connection.ops.quote_name
    if arrays_usable(len(pending)):
        columns_of = zip(*map(params_of, pending), strict=True)
        literals = [array_literal(column) for column in columns_of]
        if None not in literals:
            arrays = arrays_of(tuple(fields))
            return [
                (
                    f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608
                    f"SELECT * FROM unnest({arrays})",
                    literals,
                )
            ]
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    statements: list[Statement] = []
    for start in range(0, len(pending), CHUNK):
        chunk = pending[start : start + CHUNK]
        params = [value for obj in chunk for value in params_of(obj)]
        statements.append(
            (
                f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608
                f"VALUES {', '.join([row] * len(chunk))}",
                params,
            )
        )
    return statements


@cache
def _insert_parts(
    vendor: str, model: type[models.Model], names: tuple[str, ...]
) -> tuple[tuple[models.Field[Any, Any], ...], str, Callable[[object], list[Any]]]:
    """The fields `names` of `model`, their columns quoted for an INSERT and their
    parameter function (`row_params`), made once per database vendor."""
    fields = tuple(cast("models.Field[Any, Any]", model._meta.get_field(name)) for name in names)
    quote = connection.ops.quote_name
    # A field named in an INSERT has a column (the stubs allow one without).
    columns = ", ".join(quote(field.column) for field in fields)  # type: ignore[arg-type]
    return fields, columns, _row_params(vendor, fields)


def row_params(fields: Sequence[models.Field[Any, Any]]) -> Callable[[object], list[Any]]:
    """A function giving an object's values of `fields` as query parameters, each
    converted by its field's type (the object has the fields' attributes, `bank_id` for
    `bank`). Values passed as they are are read in one go; only the others are converted.
    Made once per database vendor and fields, then kept.
    """
    return _row_params(connection.vendor, tuple(fields))


@cache
def _row_params(
    vendor: str, fields: tuple[models.Field[Any, Any], ...]
) -> Callable[[object], list[Any]]:
    get = attrgetter(*(field.attname for field in fields))
    read = get if len(fields) > 1 else (lambda obj: (get(obj),))  # a tuple either way
    converted = [(n, c) for n, c in enumerate(map(_converter, fields)) if c is not None]

    def params(obj: object) -> list[Any]:
        values = list(read(obj))
        for n, convert in converted:
            values[n] = convert(values[n])
        return values

    return params


def read_converter(field: models.Field[Any, Any]) -> Callable[[object], object] | None:
    """How a value of `field` read with plain SQL becomes what a queryset gives (the
    backend's converters, then the field's: an aware time on every database, say); None
    where the value is read as it is."""
    col = field.cached_col
    converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
    if not converters:
        return None

    def convert(value: Any) -> Any:
        for converter in converters:
            value = converter(value, col, connection)
        return value

    return convert


def any_of(
    column: str, values: Sequence[Any], *, using: BaseDatabaseWrapper | None = None
) -> tuple[str, list[Any]]:
    """`column` is one of `values`, as SQL and its parameters, on any database (`using`,
    the default one unless given).

    PostgreSQL takes the list as one array parameter (one plan whatever its length);
    others (SQLite in the demo) get one placeholder a value.
    """
    if (using or connection).vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    if not values:
        return "1 = 0", []
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def statements_run(statements: Sequence[Statement], *, at_commit: bool = False) -> None:
    """Run `statements` in one round trip to the database, in order (results unread).

    Each is bound by the driver first, so a value can never be read as SQL. Inside a
    transaction this keeps the time a lock taken before them is held to one round trip.
    Small statements are prepared (`statement_execute`).

    `at_commit`: the statements end the transaction, and nothing in it reads what they
    write. Where the database backend can (core.db.postgresql, the outermost
    `atomic()` block) they go with the COMMIT, in its round trip; an error in them fails
    the commit and rolls the transaction back. Elsewhere they run now.
    """
    if not statements:
        return
    if at_commit and _at_commit(statements):
        return
    *before, (sql, params) = statements
    with connection.cursor() as cursor:
        statement_execute(cursor, sql, params, before=before)


def statement_execute(
    cursor: Any, sql: str, params: Sequence[Any], *, before: Sequence[Statement] = ()
) -> None:
    """`cursor.execute(sql, params)`, where a small statement runs prepared on PostgreSQL.

    Planning is most of what a small statement costs the database (several times its
    execution for the look-ups and one-row writes of every API request), so a statement
    with at most `PREPARE_MAX_PARAMS` parameters is prepared once per connection
    (`PREPARE`) and then only executed (`EXECUTE`), in the same round trip. Parameters
    are bound by the driver as always. `DATABASE_PREPARED_STATEMENTS = False` turns this
    off, for a connection pooler that hands sessions around (PgBouncer in transaction
    mode). Statements `before` run first, in the same round trip (their results unread).
    """
    if connection.vendor != "postgresql":
        for earlier, earlier_params in before:
            cursor.execute(earlier, earlier_params)
        cursor.execute(sql, params)
        return
    prepared = _Prepared.of(connection)
    cursor.execute(";\n".join(prepared.bound(cursor.cursor, [*before, (sql, params)])))
    prepared.commit()


def _at_commit(statements: Sequence[Statement]) -> bool:
    """Hand `statements` to the connection to send with the COMMIT; False if it can't
    (another backend, or a commit that would not end the transaction)."""
    ends = getattr(connection, "commit_ends_transaction", None)
    if ends is None or not ends():
        return False
    prepared = _Prepared.of(connection)
    with connection.cursor() as cursor:
        script = prepared.bound(cursor.cursor, statements)
    names, prepared.pending = prepared.pending, {}
    connection.at_commit(script)  # type: ignore[attr-defined]  # core.db.postgresql's
    # Prepared for later use once they are: when the commit has succeeded.
    transaction.on_commit(lambda: prepared.names.update(names))
    return True


PREPARE_MAX_PARAMS = 40
PREPARED_PER_CONNECTION = 300
_PLACEHOLDER = re.compile(r"%s")


class _Prepared:
    """The statements prepared on one database connection: {SQL: name}."""

    _by_connection: WeakKeyDictionary[object, _Prepared] = WeakKeyDictionary()

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.made = 0  # names are never reused: a failed PREPARE may still have created one
        self.pending: dict[str, str] = {}

    @classmethod
    def of(cls, db: BaseDatabaseWrapper) -> _Prepared:
        db.ensure_connection()
        return cls._by_connection.setdefault(db.connection, cls())

    def text(self, raw_cursor: RawCursor, sql: str, params: Sequence[Any]) -> str:
        """The statement bound, as `EXECUTE` of its prepared form where it is small (its
        `PREPARE` before it the first time)."""
        params = list(params or ())
        name = self.names.get(sql) or self.pending.get(sql)  # pending: earlier in this run
        prepare = ""
        if name is None:
            if not self._preparable(sql, params):
                return _bound(raw_cursor, sql, params)
            self.made += 1
            name = self.pending[sql] = f"bankside_{self.made}"
            numbers = itertools.count(1)
            prepare = f"PREPARE {name} AS {_PLACEHOLDER.sub(lambda _: f'${next(numbers)}', sql)};\n"
        arguments = f"({', '.join(['%s'] * len(params))})" if params else ""
        return prepare + _bound(raw_cursor, f"EXECUTE {name}{arguments}", params)

    def bound(self, raw_cursor: RawCursor, statements: Sequence[Statement]) -> list[str]:
        """`statements` bound (`text`), forgetting first any a failed run left
        half-prepared; `commit` once they have run."""
        self.pending.clear()
        return [self.text(raw_cursor, sql, params) for sql, params in statements]

    def commit(self) -> None:
        """The statements just run were prepared: remember their names."""
        self.names.update(self.pending)
        self.pending.clear()

    def _preparable(self, sql: str, params: list[Any]) -> bool:
        return bool(
            settings.DATABASE_PREPARED_STATEMENTS
            and len(params) <= PREPARE_MAX_PARAMS
            and len(self.names) + len(self.pending) < PREPARED_PER_CONNECTION
            and sql.count("%") == len(params) == sql.count("%s")
        )


def _bound(raw_cursor: RawCursor, sql: str, params: list[Any]) -> str:
    """`raw_cursor.mogrify(sql, params)`, faster for the many repeated values of a batch.

    Each distinct text, time or date is quoted once, integers are written as digits, and
    `%s` is the only placeholder (anything else in `sql` goes to `mogrify` itself).
    Quoting is the driver's (psycopg2's `adapt`, as `mogrify` does), but for texts and
    times with a zone on a UTF-8 connection with standard-conforming strings (the
    server's default), written here as the driver writes them: a text between single
    quotes with each quote doubled (and none with a NUL), a time in ISO 8601. A text of a
    `str` subclass (a model's text choice) is written as its text, as the driver does.
    """
    parts = sql.split("%s")
    if len(parts) != len(params) + 1 or "%" in sql.replace("%s", ""):
        return raw_cursor.mogrify(sql, params).decode()
    raw = raw_cursor.connection
    plain = raw.encoding == "UTF8" and (
        raw.get_parameter_status("standard_conforming_strings") == "on"
    )
    texts: dict[str, str] = {}
    # Equal is not always alike: 06:30+01:00 equals 05:30+00:00 but reads otherwise,
    # hence the zone and fold in these keys (and numbers, whose 1.0 equals 1.00, are
    # never shared).
    moments: dict[tuple[Any, ...], str] = {}
    literals = []
    for value in params:
        kind = type(value)
        if kind is str:
            literal = texts.get(value)
            if literal is None:
                literal = texts[value] = _text(value) if plain else _quoted(value, raw)
        elif kind is int:  # as psycopg2 writes it: a space before a minus, never `--`
            literal = str(value) if value >= 0 else f" {value}"
        elif value is None:
            literal = "NULL"
        elif kind is bool:
            literal = "true" if value else "false"
        elif kind is datetime or kind is date:
            key = (kind, value, getattr(value, "tzinfo", None), getattr(value, "fold", 0))
            literal = moments.get(key)
            if literal is None:
                literal = moments[key] = (
                    f"'{value.isoformat()}'::timestamptz"
                    if kind is datetime and value.tzinfo is not None
                    else _quoted(value, raw)
                )
        elif kind is Bound:
            literal = value.sql
        elif isinstance(value, str):  # a text choice (State.PENDING): its text, as the driver
            literal = texts.get(value)
            if literal is None:
                text = str.__str__(value)
                literal = texts[text] = _text(text) if plain else _quoted(text, raw)
        else:
            literal = _quoted(value, raw)
        literals.append(literal)
    return parts[0] + "".join(itertools.chain.from_iterable(zip(literals, parts[1:], strict=True)))


def _text(value: str) -> str:
    """A text literal for standard-conforming strings, as psycopg2 writes it."""
    if "\x00" in value:
        raise ValueError("A string literal cannot contain NUL (0x00) characters.")
    return "'" + value.replace("'", "''") + "'"


def _quoted(value: Any, raw: Any) -> str:
    """`value` as an SQL literal, by psycopg2's adapter for its type."""
    adapter = adapt(value)
    if hasattr(adapter, "prepare"):
        adapter.prepare(raw)
    return cast(str, adapter.getquoted().decode())


def instances_insert(model: type[models.Model], names: Sequence[str], objs: Iterable[Any]) -> None:
    """INSERT `objs` (model instances, unsaved) setting only the fields in `names`."""
    statements_run(insert_statements(model, names, objs))
