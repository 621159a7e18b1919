"""Small statements on the hot paths run prepared on PostgreSQL, with the same results."""

import pytest
from django.db import DatabaseError, connection, transaction

from core.db.rows import PREPARE_MAX_PARAMS, statement_execute, statements_run
from portal.models import Bank
from portal.tests.factories import BankFactory

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"
)

BANK_BY_SLUG = f"SELECT id, name FROM {Bank._meta.db_table} WHERE slug = %s"


def prepared() -> dict[str, str]:
    """{name: query} of the statements prepared on this connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, statement FROM pg_prepared_statements")
        return dict(cursor.fetchall())


@pytest.fixture
def new_prepared():
    """What the test prepares (the connection outlives tests, and keeps its statements)."""
    before = set(prepared())
    return lambda: {name: query for name, query in prepared().items() if name not in before}


def run(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        statement_execute(cursor, sql, params)
        return cursor.fetchall()


@pytest.fixture
def banks(db):
    return [BankFactory(slug="harbour", name="Harbour 100% Bank"), BankFactory(slug="north")]


def test_a_small_statement_is_prepared_once_and_answers_like_a_plain_one(banks, new_prepared):
    first = run(BANK_BY_SLUG, ["harbour"])
    again = run(BANK_BY_SLUG, ["north"])

    assert first == [(banks[0].pk, "Harbour 100% Bank")]
    assert again == [(banks[1].pk, banks[1].name)]
    [query] = new_prepared().values()
    assert f"AS {BANK_BY_SLUG.replace('%s', '$1')};" in query


def test_values_are_bound_by_the_driver_never_read_as_sql(banks):
    assert run(BANK_BY_SLUG, ["harbour' OR '1'='1"]) == []
    assert run(BANK_BY_SLUG, ["%s"]) == []


def test_a_statement_with_many_parameters_is_not_prepared(banks, new_prepared):
    slugs = ["harbour", *[f"nope-{n}" for n in range(PREPARE_MAX_PARAMS)]]
    marks = ", ".join(["%s"] * len(slugs))

    found = run(f"SELECT id FROM {Bank._meta.db_table} WHERE slug IN ({marks})", slugs)

    assert found == [(banks[0].pk,)]
    assert new_prepared() == {}


def test_turned_off_nothing_is_prepared(banks, settings, new_prepared):
    settings.DATABASE_PREPARED_STATEMENTS = False
    table = Bank._meta.db_table

    found = run(f"SELECT id FROM {table} WHERE slug = %s AND name <> %s", ["harbour", ""])

    assert found == [(banks[0].pk,)]
    assert new_prepared() == {}


def test_statements_run_together_share_one_prepared_statement(banks, new_prepared):
    rename = f"UPDATE {Bank._meta.db_table} SET name = %s WHERE slug = %s"
    with transaction.atomic():
        statements_run([(rename, ["Harbour Bank", "harbour"]), (rename, ["North Bank", "north"])])

    assert sorted(Bank.objects.values_list("name", flat=True)) == ["Harbour Bank", "North Bank"]
    assert len(new_prepared()) == 1


def test_a_run_that_failed_leaves_the_next_ones_working(banks):
    table = Bank._meta.db_table
    failing = f"UPDATE {table} SET name = %s WHERE slug = %s AND 1 / %s = 1"
    with pytest.raises(DatabaseError), transaction.atomic():
        statements_run([(failing, ["x", "harbour", 0])])

    with transaction.atomic():
        statements_run([(failing, ["Harbour Bank", "harbour", 1])])

    assert Bank.objects.get(slug="harbour").name == "Harbour Bank"
