"""The PostgreSQL backend: transactions behave as Django's, in fewer round trips.

Each test records what goes over the wire, one entry a round trip, and checks from a
second connection what another client of the database would see.
"""

import time

import psycopg2
import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.backends.postgresql.base import IsolationLevel

from core.db.postgresql.base import DatabaseWrapper
from core.tests.round_trips import round_trips

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = "bankside_backend_probe"


@pytest.fixture
def probe():
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {TABLE} (id serial PRIMARY KEY, note text UNIQUE)")
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {TABLE}")


@pytest.fixture
def sent(probe):
    """The round trips this connection makes from now on, each as the SQL it sent."""
    with round_trips() as recorded:
        connection.ensure_connection()
        recorded.clear()  # the new connection's own set-up
        yield recorded


@pytest.fixture
def other():
    """Another client of the same database, in autocommit mode."""
    params = connection.get_connection_params()
    params.pop("connection_factory"), params.pop("cursor_factory")
    other = psycopg2.connect(**params)
    other.autocommit = True
    yield other
    other.close()


def insert(note: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} (note) VALUES (%s)", [note])


def notes(client) -> list[str]:
    with client.cursor() as cursor:
        cursor.execute(f"SELECT note FROM {TABLE} ORDER BY id")
        return [note for (note,) in cursor.fetchall()]


def test_begin_goes_with_the_first_statement_and_commit_alone(sent, other):
    with transaction.atomic():
        insert("first")
        insert("second")
        assert notes(other) == []

    assert sent == [
        f"BEGIN;\nINSERT INTO {TABLE} (note) VALUES ('first')",
        f"INSERT INTO {TABLE} (note) VALUES ('second')",
        "COMMIT",
    ]
    assert notes(other) == ["first", "second"]


def test_statements_handed_to_the_commit_go_with_it(sent, other):
    with transaction.atomic():
        insert("first")
        assert connection.at_commit([f"INSERT INTO {TABLE} (note) VALUES ('at commit')"])
        assert notes(other) == []

    assert sent == [
        f"BEGIN;\nINSERT INTO {TABLE} (note) VALUES ('first')",
        f"INSERT INTO {TABLE} (note) VALUES ('at commit');\nCOMMIT",
    ]
    assert notes(other) == ["first", "at commit"]


def test_a_transaction_of_statements_at_commit_only_is_one_round_trip(sent, other):
    with transaction.atomic():
        assert connection.at_commit([f"INSERT INTO {TABLE} (note) VALUES ('only')"])

    assert sent == [f"BEGIN;\nINSERT INTO {TABLE} (note) VALUES ('only');\nCOMMIT"]
    assert notes(other) == ["only"]


def test_a_transaction_without_statements_sends_nothing(sent):
    with transaction.atomic():
        pass

    assert sent == []


def test_at_commit_is_refused_where_the_next_commit_would_not_end_the_transaction(probe):
    statement = f"INSERT INTO {TABLE} (note) VALUES ('x')"

    assert not connection.at_commit([statement])  # autocommit
    with transaction.atomic(), transaction.atomic():
        assert not connection.at_commit([statement])  # a savepoint's release

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE}")
        assert cursor.fetchone() == (0,)


def test_an_exception_rolls_everything_back(sent, other):
    with pytest.raises(ValueError, match="changed my mind"), transaction.atomic():
        insert("first")
        connection.at_commit([f"INSERT INTO {TABLE} (note) VALUES ('at commit')"])
        raise ValueError("changed my mind")

    assert sent[-1] == "ROLLBACK"
    assert notes(other) == []
    insert("after")  # autocommit again
    assert notes(other) == ["after"]


def test_a_failing_statement_rolls_the_transaction_back(sent, other):
    insert("taken")
    with pytest.raises(IntegrityError), transaction.atomic():
        insert("new")
        insert("taken")

    assert sent[-1] == "ROLLBACK"
    assert notes(other) == ["taken"]
    with transaction.atomic():
        insert("next")
    assert notes(other) == ["taken", "next"]


def test_a_failing_statement_at_commit_fails_the_commit_and_keeps_nothing(sent, other):
    insert("taken")
    with pytest.raises(IntegrityError), transaction.atomic():
        insert("new")
        connection.at_commit([f"INSERT INTO {TABLE} (note) VALUES ('taken')"])

    assert sent[-2:] == [f"INSERT INTO {TABLE} (note) VALUES ('taken');\nCOMMIT", "ROLLBACK"]
    assert notes(other) == ["taken"]
    with transaction.atomic():
        insert("next")
    assert notes(other) == ["taken", "next"]


def test_a_savepoint_rolls_back_on_its_own(sent, other):
    with transaction.atomic():
        insert("kept")
        with pytest.raises(ValueError, match="inner"), transaction.atomic():
            insert("dropped")
            raise ValueError("inner")
        insert("also kept")

    assert notes(other) == ["kept", "also kept"]
    assert sent[0].startswith("BEGIN;\nINSERT")
    assert any(text.startswith("SAVEPOINT") for text in sent)
    assert any(text.startswith("ROLLBACK TO SAVEPOINT") for text in sent)


def test_a_savepoint_as_the_first_statement_opens_the_transaction(sent, other):
    with pytest.raises(ValueError, match="outer"), transaction.atomic():
        with transaction.atomic():
            insert("inner")
        raise ValueError("outer")

    assert sent[0].startswith("BEGIN;\nSAVEPOINT")
    assert notes(other) == []


def test_on_commit_runs_once_the_work_is_visible(probe, other):
    seen = []
    with transaction.atomic():
        insert("first")
        transaction.on_commit(lambda: seen.append(notes(other)))
        assert seen == []

    assert seen == [["first"]]


def test_a_row_lock_is_held_until_the_commit(probe, other):
    insert("locked")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {TABLE} FOR UPDATE")
        with pytest.raises(psycopg2.errors.LockNotAvailable), other.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {TABLE} FOR UPDATE NOWAIT")

    with other.cursor() as cursor:
        cursor.execute(f"SELECT note FROM {TABLE} FOR UPDATE NOWAIT")
        assert cursor.fetchall() == [("locked",)]


def test_server_side_cursors_iterate_in_and_out_of_a_transaction(sent):
    everything = sorted(ContentType.objects.values_list("pk", flat=True))

    assert sorted(c.pk for c in ContentType.objects.iterator(chunk_size=3)) == everything
    with transaction.atomic():
        assert sorted(c.pk for c in ContentType.objects.iterator(chunk_size=3)) == everything
        insert("after the cursor")
    assert notes(connection.connection) == ["after the cursor"]
    assert sent.count("BEGIN") == 1  # a server-side cursor cannot carry it


def test_executemany_opens_the_transaction_first(sent, other):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {TABLE} (note) VALUES (%s)", [["a"], ["b"]])
        assert notes(other) == []

    assert notes(other) == ["a", "b"]


def test_manual_transactions_begin_again_after_each_commit(probe, other):
    transaction.set_autocommit(False)
    try:
        insert("one")
        transaction.commit()
        insert("two")
        assert notes(other) == ["one"]
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)

    assert notes(other) == ["one"]


def test_a_configured_isolation_level_is_the_transactions():
    serializable = DatabaseWrapper(
        {
            **connection.settings_dict,
            "OPTIONS": {
                **connection.settings_dict["OPTIONS"],
                "isolation_level": IsolationLevel.SERIALIZABLE,
            },
        },
        alias="serializable",
    )
    try:
        serializable.set_autocommit(False)
        with serializable.cursor() as cursor:
            cursor.execute("SHOW transaction_isolation")
            assert cursor.fetchone() == ("serializable",)
        serializable.rollback()
        serializable.set_autocommit(True)
        with serializable.cursor() as cursor:
            cursor.execute("SHOW transaction_isolation")
            assert cursor.fetchone() == ("read committed",)  # autocommit: the default
    finally:
        serializable.close()


def test_a_broken_connection_fails_the_transaction_loudly(probe):
    with pytest.raises(DatabaseError), transaction.atomic():
        insert("first")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    connection.close()

    insert("after reconnecting")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT note FROM {TABLE}")
        assert cursor.fetchall() == [("after reconnecting",)]


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def next_request() -> None:
    """What Django does between requests to a connection it keeps (the settings turn
    `CONN_HEALTH_CHECKS` on)."""
    assert connection.health_check_enabled
    connection.health_check_done = False
    connection.close_if_health_check_failed()


def test_a_kept_connection_is_checked_without_a_round_trip(sent):
    pid = backend_pid()
    sent.clear()

    next_request()

    assert sent == []
    assert connection.connection is not None
    assert backend_pid() == pid


def test_a_connection_the_server_closed_is_replaced_before_it_is_used(probe, other):
    pid = backend_pid()
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(100):  # until the server has let go of it
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone() == (0,):
                break
            time.sleep(0.05)

    next_request()
    insert("after the restart")

    assert backend_pid() != pid
    assert notes(other) == ["after the restart"]


def test_a_connection_in_another_state_gets_djangos_check(sent):
    with transaction.atomic():
        insert("in a transaction")
        sent.clear()
        next_request()

    assert sent[0] == "SELECT 1"
