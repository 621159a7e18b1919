"""A real PgBouncer for tests: Debian's `pgbouncer`, in transaction mode as in production
(docker/pgbouncer/), started on a free port in front of the test PostgreSQL.

`.ci/run` installs it; on a developer's machine `apt-get install pgbouncer`.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2

INSTALL = "PgBouncer is not installed: apt-get install pgbouncer (Debian), as .ci/run does"


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        raise AssertionError(INSTALL)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@contextmanager
def pgbouncer_running(database: dict, *, pool_size: int) -> Iterator[int]:
    """PgBouncer in transaction mode for the PostgreSQL of Django's `database` settings,
    with at most `pool_size` server connections per database and user; yields its port.
    Its admin console (database `pgbouncer`) answers the same user."""
    binary = pgbouncer_binary()
    port = _free_port()
    user, password = database["USER"] or "postgres", database.get("PASSWORD") or ""
    folder = Path(tempfile.mkdtemp(prefix="bankside-pgbouncer-"))
    folder.chmod(0o755)  # PgBouncer refuses to run as root: it drops to `nobody` below
    (folder / "users.txt").write_text(f"{_quoted(user)} {_quoted(password)}\n")
    (folder / "pgbouncer.ini").write_text(
        "\n".join(
            [
                "[databases]",
                f"* = host={database['HOST'] or '127.0.0.1'} port={database['PORT'] or 5432}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {folder / 'users.txt'}",
                f"admin_users = {user}",
                "pool_mode = transaction",
                f"default_pool_size = {pool_size}",
                "max_client_conn = 100",
                "ignore_startup_parameters = extra_float_digits",
                "",
            ]
        )
    )
    for name in ("users.txt", "pgbouncer.ini"):
        (folder / name).chmod(0o644)
    argv = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        argv[1:1] = ["-u", "nobody"]
    log = open(folder / "pgbouncer.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                psycopg2.connect(
                    host="127.0.0.1", port=port, user=user, password=password, dbname="pgbouncer"
                ).close()
                break
            except psycopg2.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "PgBouncer did not start: " + (folder / "pgbouncer.log").read_text()
                    ) from None
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def pgbouncer_show(port: int, user: str, what: str) -> list[dict]:
    """`SHOW <what>` on PgBouncer's admin console, as dicts."""
    admin = psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname="pgbouncer")
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        admin.close()
