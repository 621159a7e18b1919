"""Settings for the delivery benchmark's worker processes: the test settings, pointed at
the benchmark's database and fake Send API (see bench/delivery.py)."""

import json
import os

from bankside.settings.test import *  # noqa: F403
from bankside.settings.test import DATABASES

DATABASES["default"]["NAME"] = os.environ["BENCH_DATABASE_NAME"]
DATABASES["default"]["CONN_MAX_AGE"] = 60
# The scale benchmark (bench/scale.py) reaches PostgreSQL through a latency proxy.
if os.environ.get("BENCH_DATABASE_PORT"):
    DATABASES["default"]["HOST"] = "127.0.0.1"
    DATABASES["default"]["PORT"] = os.environ["BENCH_DATABASE_PORT"]
MESSENGER_GRAPH_API_URL = os.environ["BENCH_GRAPH_API_URL"]
NOTIFICATIONS_PAGE_RATE_LIMIT = float(os.environ.get("BENCH_PAGE_RATE_LIMIT", "100000"))
NOTIFICATIONS_PAGE_RATE_LIMITS = json.loads(os.environ.get("BENCH_PAGE_RATE_LIMITS", "{}"))
NOTIFICATIONS_REDIS_URL = os.environ.get("BENCH_NOTIFICATIONS_REDIS_URL", "")
# A queue of the benchmark's own, so purging it never touches anyone else's work.
CELERY_TASK_DEFAULT_QUEUE = os.environ["BENCH_QUEUE"]
NOTIFICATIONS_SEND_CONCURRENCY = int(
    os.environ.get("BENCH_SEND_CONCURRENCY", NOTIFICATIONS_SEND_CONCURRENCY)  # noqa: F405
)

# The chaos run (bench/chaos.py) shortens the clocks so that a dead worker's claims and
# the retries of a flaky Send API come round within its run, and sweeps every second.
_env_float = {
    "BENCH_LEASE_SECONDS": "NOTIFICATIONS_LEASE_SECONDS",
    "BENCH_RETRY_BASE_SECONDS": "NOTIFICATIONS_RETRY_BASE_SECONDS",
    "BENCH_RETRY_MAX_DELAY_SECONDS": "NOTIFICATIONS_RETRY_MAX_DELAY_SECONDS",
    "BENCH_TASK_SECONDS": "NOTIFICATIONS_TASK_SECONDS",
    "BENCH_THROTTLE_COOLDOWN_SECONDS": "NOTIFICATIONS_PAGE_THROTTLE_COOLDOWN_SECONDS",
    "BENCH_ECHO_WAIT_SECONDS": "NOTIFICATIONS_ECHO_WAIT_SECONDS",
    # bench/urgent.py's design of before: 90% of the limit, no urgent reserve.
    "BENCH_PAGE_RATE_HEADROOM": "NOTIFICATIONS_PAGE_RATE_HEADROOM",
    "BENCH_PAGE_URGENT_RESERVE": "NOTIFICATIONS_PAGE_URGENT_RESERVE",
}
for _variable, _setting in _env_float.items():
    if _variable in os.environ:
        globals()[_setting] = float(os.environ[_variable])
if "BENCH_SWEEP_SECONDS" in os.environ:
    CELERY_BEAT_SCHEDULE = {
        "sweep-outbox": {
            "task": "notifications.sweep_outbox",
            "schedule": float(os.environ["BENCH_SWEEP_SECONDS"]),
        }
    }
