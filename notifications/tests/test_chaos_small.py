"""The chaos run, small: each notification reaches its person once, in order, while a
worker is killed mid-run, Redis restarts with its data gone, PostgreSQL restarts, a web
process is killed while the core posts, the Send API fails calls and some of its echoes
are dropped or late.

It runs `bench/chaos.py` as `make chaos` does, with small numbers, and checks the tally
the run reads from the fake Send API's record of calls and echoes. The run starts a
PostgreSQL cluster and a Redis of its own (it restarts them): the servers the suite uses
are never touched.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_worker_web_redis_and_postgresql_faults_lose_duplicate_and_reorder_nothing(tmp_path):
    tally_file = tmp_path / "tally.json"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bankside.settings.test"}

    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "chaos.py"),
            "--events=300",
            "--customers=50",
            "--kills=1",
            "--redis-restarts=1",
            "--postgres-restarts=1",
            "--web-kills=1",
            "--echo-drop=0.05",
            "--echo-wait=20",
            "--lease=5",
            "--rate=200",
            "--timeout=120",
            f"--json={tally_file}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert tally_file.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    tally = json.loads(tally_file.read_text())
    assert tally["failed"] == [], run.stdout[-3000:]
    assert run.returncode == 0
    assert (tally["kills"], tally["redis_restarts"]) == (1, 1)
    assert (tally["postgres_restarts"], tally["web_kills"], tally["web_restarts"]) == (1, 1, 1)
    assert tally["answers"].get("transient", 0) > 0  # the Send API did fail calls
    assert tally["echoes"].get("dropped", 0) > 0  # and dropped echoes on purpose
    assert tally["expected"] == tally["notifications"] == tally["sent"] == 300
    assert tally["missing"] == 0
    assert tally["order_violations"] == 0
    assert tally["duplicates"] == 0
    assert tally["resent_after_dropped_echo_unflagged"] == 0
    assert tally["uncertain_settled_by_echo"] + tally["uncertain_resent_once"] == tally["uncertain"]
