"""Work reaches a real Celery worker through a real broker: Redis, or the embedded default."""

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker

from bankside.celery import app
from portal.models import WorkerHeartbeat
from portal.tasks import record_worker_heartbeat

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_tasks_sent_through_redis():
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        record_worker_heartbeat.delay()
        deadline = time.monotonic() + 20
        while not WorkerHeartbeat.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    assert WorkerHeartbeat.objects.count() == 1


def test_the_embedded_default_delivers_through_a_real_worker(tmp_path):
    """`make demo` with no servers: a SQLite file, a filesystem broker and a worker process."""
    database = tmp_path / "demo.sqlite3"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="bankside.settings.local",
        DATABASE_URL=f"sqlite:///{database}",
        EMBEDDED_BROKER_DIR=str(tmp_path / "broker"),
    )

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )

    manage("migrate", "--noinput")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bankside",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--hostname",
            "embedded@test",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        manage(
            "shell",
            "--no-imports",
            "-c",
            "from portal.tasks import record_worker_heartbeat; record_worker_heartbeat.delay()",
        )
        deadline, rows = time.monotonic() + 30, []
        while not rows and time.monotonic() < deadline:
            time.sleep(0.25)
            with sqlite3.connect(database) as db:
                rows = db.execute("SELECT hostname FROM portal_workerheartbeat").fetchall()
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)

    assert rows == [("embedded@test",)], output
