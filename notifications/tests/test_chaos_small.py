"""The chaos run, small: delivery by real worker processes keeps its promises while one is
killed mid-run, Redis restarts with its data gone and the Send API fails calls.

It runs `bench/chaos.py` as `make chaos` does, with small numbers, and checks the tally
the run reads from the fake Send API's record of calls.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = settings.DATABASES["default"]
    # The run makes a database of its own beside the one the settings name.
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    auth = db.get("USER") or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def test_a_killed_worker_a_flushed_redis_and_a_flaky_send_api_lose_and_reorder_nothing(
    tmp_path,
):
    tally_file = tmp_path / "tally.json"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "bankside.settings.test",
    }

    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "chaos.py"),
            "--events=300",
            "--customers=50",
            "--kills=1",
            "--redis-restarts=1",
            "--lease=5",
            "--rate=200",
            "--timeout=90",
            f"--json={tally_file}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )

    assert tally_file.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    tally = json.loads(tally_file.read_text())
    assert tally["failed"] == [], run.stdout[-3000:]
    assert run.returncode == 0
    assert tally["kills"] == 1 and tally["redis_restarts"] == 1
    assert tally["answers"].get("transient", 0) > 0  # the Send API did fail calls
    assert tally["expected"] == tally["notifications"] == tally["sent"] == 300
    assert tally["missing"] == 0
    assert tally["order_violations"] == 0
    assert tally["duplicates"] <= tally["uncertain"]
    assert tally["workers_lost_mid_send"] <= tally["kills"]
