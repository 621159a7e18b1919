"""The scale benchmark's latency proxy (bench/latency_proxy.py) is a faithful wire: a real
PostgreSQL client talks through it, results larger than one chunk arrive whole and in
order, and several connections run at once. How much latency it adds is the benchmark's
to report, never a test's to assert."""

import subprocess
import sys
import threading
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def proxy():
    db = settings.DATABASES["default"]
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "latency_proxy.py"),
            "--target",
            f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}",
            "--delay-ms",
            "0.5",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    assert line.startswith("ready "), line
    yield int(line.split()[1])
    process.terminate()
    process.wait(10)


def connect(port: int):
    db = settings.DATABASES["default"]
    return psycopg2.connect(host="127.0.0.1", port=port, user=db["USER"], dbname="postgres")


def test_a_postgresql_client_gets_whole_results_through_it(proxy):
    conn = connect(proxy)
    cursor = conn.cursor()
    cursor.execute("SELECT string_agg(md5(g::text), '') FROM generate_series(1, 20000) g")
    (text,) = cursor.fetchone()
    cursor.execute("SELECT string_agg(md5(g::text), '') FROM generate_series(1, 20000) g")
    assert len(text) == 640_000 and cursor.fetchone() == (text,)
    conn.close()


def test_connections_run_side_by_side(proxy):
    answers: dict[int, int] = {}

    def client(n: int) -> None:
        conn = connect(proxy)
        cursor = conn.cursor()
        for _ in range(20):
            cursor.execute("SELECT %s + 1", [n])
            answers[n] = cursor.fetchone()[0]
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == {n: n + 1 for n in range(8)}
