"""Django's PostgreSQL backend, with transactions that spend no round trips of their own.

psycopg2 opens a transaction by sending `BEGIN` alone and waiting for the answer, and
ends it with `COMMIT` alone: of a short transaction's round trips to the database, two
carry no work. On a loaded server each costs about as much as a small statement (the
network stack on both sides, a wake-up of each process).

This backend keeps the driver in autocommit mode and runs the transaction itself, with
the same statements in the same order:

- `BEGIN` goes in the same round trip as the transaction's first statement;
- statements handed over with `DatabaseWrapper.at_commit` (whose results nobody reads)
  go in the same round trip as `COMMIT`;
- `ROLLBACK` is sent only if the server has a transaction open;
- the health check at the start of a request (`CONN_HEALTH_CHECKS`) looks at the idle
  connection's socket instead of sending `SELECT 1`.

Everything else is Django's: `atomic()`, savepoints, `on_commit`, rollback on error,
`select_for_update`, server-side cursors. The server, not a flag kept here, says whether
a transaction is open (libpq's transaction status, read without a round trip).
"""

import select
from typing import Any

from django.db.backends.postgresql import base
from django.db.backends.utils import debug_transaction
from psycopg2 import extensions

_IDLE = extensions.TRANSACTION_STATUS_IDLE
_OPEN = (extensions.TRANSACTION_STATUS_INTRANS, extensions.TRANSACTION_STATUS_INERROR)
_ISOLATION = {
    extensions.ISOLATION_LEVEL_READ_COMMITTED: "BEGIN",
    extensions.ISOLATION_LEVEL_REPEATABLE_READ: "BEGIN ISOLATION LEVEL REPEATABLE READ",
    extensions.ISOLATION_LEVEL_SERIALIZABLE: "BEGIN ISOLATION LEVEL SERIALIZABLE",
    extensions.ISOLATION_LEVEL_READ_UNCOMMITTED: "BEGIN ISOLATION LEVEL READ UNCOMMITTED",
}


class Connection(extensions.connection):
    """A psycopg2 connection, always in autocommit mode, that remembers a transaction
    Django has asked for and not yet begun."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.begin_sql = "BEGIN"
        self.begin_pending = False  # the next statement opens the transaction
        self.at_commit: list[str] = []  # statements that go with the COMMIT

    def in_transaction(self) -> bool:
        return self.get_transaction_status() in _OPEN

    def begin_now(self) -> None:
        """Send a pending `BEGIN` on its own: for what cannot carry it (server-side
        cursors, COPY, `executemany`)."""
        if self.begin_pending:
            self.begin_pending = False
            with self.cursor() as cursor:
                cursor.execute(self.begin_sql)

    def script_run(self, statements: list[str]) -> None:
        """Send `statements` in one round trip (none may be left to open a transaction)."""
        with self.cursor() as cursor:
            cursor.execute(";\n".join(statements))


class Cursor(extensions.cursor):
    """Sends a pending `BEGIN` with the statement it executes."""

    connection: Connection

    def execute(self, query: Any, vars: Any = None) -> None:
        connection = self.connection
        if connection.begin_pending:
            if self.name is None and isinstance(query, str):
                connection.begin_pending = False
                return super().execute(f"{connection.begin_sql};\n{query}", vars)
            connection.begin_now()
        return super().execute(query, vars)

    def executemany(self, query: Any, vars_list: Any) -> None:
        self.connection.begin_now()
        return super().executemany(query, vars_list)

    def callproc(self, procname: Any, parameters: Any = None) -> None:
        self.connection.begin_now()
        return super().callproc(procname, parameters)

    def copy_expert(self, sql: Any, file: Any, size: int = 8192) -> None:
        self.connection.begin_now()
        return super().copy_expert(sql, file, size)

    def copy_from(self, *args: Any, **kwargs: Any) -> None:
        self.connection.begin_now()
        return super().copy_from(*args, **kwargs)

    def copy_to(self, *args: Any, **kwargs: Any) -> None:
        self.connection.begin_now()
        return super().copy_to(*args, **kwargs)


class DatabaseWrapper(base.DatabaseWrapper):
    # Set by Django's backend, not declared by its stubs.
    isolation_level: int
    health_check_enabled: bool
    health_check_done: bool

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        params["connection_factory"] = Connection
        params["cursor_factory"] = Cursor
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Connection:
        connection: Connection = super().get_new_connection(conn_params)
        connection.begin_sql = _ISOLATION[self.isolation_level]
        connection.autocommit = True
        return connection

    def _set_autocommit(self, autocommit: bool) -> None:
        # The driver stays in autocommit mode; a transaction asked for opens with the
        # next statement.
        self.connection.begin_pending = not autocommit

    def close_if_health_check_failed(self) -> None:
        """Django's check that a kept connection still works, without its round trip.

        A connection left idle is healthy unless the server has closed it or sent
        something unasked, which a poll of its socket sees at once: a backend that was
        terminated (a restart, a failover, an idle timeout) sends its error and closes.
        A connection found in any other state gets Django's check, a query; so does one
        after an error (`is_usable`, at the end of a request).
        """
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        connection = self.connection
        if connection.closed or connection.get_transaction_status() != _IDLE:
            super().close_if_health_check_failed()
            return
        poll = select.poll()
        poll.register(connection.fileno(), select.POLLIN | select.POLLPRI)
        if poll.poll(0):
            self.close()
        self.health_check_done = True

    def commit_ends_transaction(self) -> bool:
        """Whether the next commit ends the transaction: inside the outermost `atomic()`
        block only (a nested one's ends a savepoint)."""
        return not self.get_autocommit() and self.in_atomic_block and len(self.atomic_blocks) == 1

    def at_commit(self, statements: list[str]) -> bool:
        """Send `statements` (bound SQL, results unread) with this transaction's COMMIT,
        in one round trip, if the next commit ends the transaction; True if they will be.
        An error in them fails the commit, and `atomic()` rolls everything back and
        raises it."""
        if not self.commit_ends_transaction():
            return False
        self.connection.at_commit.extend(statements)
        return True

    def _commit(self) -> None:
        connection = self.connection
        if connection is None:
            return
        pending, connection.at_commit = connection.at_commit, []
        connection.begin_pending = False
        if connection.in_transaction():
            script = [*pending, "COMMIT"]
        elif pending:
            script = [connection.begin_sql, *pending, "COMMIT"]
        else:
            script = []  # the transaction ran no statement: nothing to end
        # Logged (with DEBUG, or in a test's captured queries) as what is sent.
        with debug_transaction(self, ";\n".join(script) or "COMMIT"), self.wrap_database_errors:
            try:
                if script:
                    connection.script_run(script)
            finally:
                # Still in a transaction only after an error; then a rollback follows.
                connection.begin_pending = not self.autocommit and not connection.in_transaction()

    def _rollback(self) -> None:
        connection = self.connection
        if connection is None:
            return
        connection.at_commit = []
        connection.begin_pending = False
        with debug_transaction(self, "ROLLBACK"), self.wrap_database_errors:
            try:
                if connection.in_transaction():
                    connection.script_run(["ROLLBACK"])
            finally:
                connection.begin_pending = not self.autocommit
