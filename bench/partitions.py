"""Benchmark: dropping a month of the outcome feed while outcomes are being written.

Run with `make bench`. It creates its own database (`<DATABASE_URL's name>_bench_partitions`),
fills a month long past the horizon with `--rows` outcomes, then drops expired months
(`notifications.services.partitions_drop_expired`: DETACH … CONCURRENTLY, DROP) while a
thread writes outcomes to this month one at a time, and prints how long the drop took and
the slowest write during it beside the slowest before it. Figures only: nothing asserts.

    python bench/partitions.py [--rows 1000000]
"""

import argparse
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankside.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402


class Writer(threading.Thread):
    """Writes one outcome at a time (autocommit), keeping each write's time."""

    def __init__(self, bank_id: int) -> None:
        super().__init__(daemon=True)
        self.bank_id = bank_id
        self.times: list[tuple[float, float]] = []  # (started, seconds)
        self.stop = threading.Event()

    def run(self) -> None:
        from notifications.models import Outcome

        try:
            while not self.stop.is_set():
                started = time.monotonic()
                Outcome.objects.create(bank_id=self.bank_id, type="event.accepted")
                self.times.append((started, time.monotonic() - started))
                time.sleep(0.002)
        finally:
            connection.close()

    def slowest(self, start: float, end: float) -> tuple[int, float]:
        during = [seconds for at, seconds in self.times if start <= at <= end]
        return len(during), max(during, default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    database = settings.DATABASES["default"]
    if database["ENGINE"] != settings.POSTGRESQL_ENGINE:
        raise SystemExit("The benchmark runs against PostgreSQL: set DATABASE_URL=postgres://…")
    database["TEST"] = {**database.get("TEST", {}), "NAME": f"{database['NAME']}_bench_partitions"}
    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        run(args.rows, name)
    finally:
        connection.close()
        connection.creation.destroy_test_db(name, verbosity=0)


def run(rows: int, name: str) -> None:
    from core.db import partitions
    from core.db.partitions import Month
    from notifications.models import Outcome
    from notifications.services import partitions_drop_expired
    from portal.tests.factories import BankFactory

    table = Outcome._meta.db_table
    now = timezone.now()
    old = Month.of(now) - 30
    partitions.partitions_create(table, [old])
    bank = BankFactory(slug="bench")
    print(f"bankside partition drop benchmark on PostgreSQL database {name}")
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (id, bank_id, type, event_ref, event_type, details, occurred_at)"  # noqa: S608
            " SELECT %s + g, %s, 'event.accepted', 'evt-' || g, 'fraud.alert', '{}',"
            " %s + g * interval '1 second' FROM generate_series(1, %s) g",
            [old.first_id, bank.pk, old.start, rows],
        )
        cursor.execute(f"VACUUM ANALYZE {partitions.partition_name(table, old)}")
    print(f"  {rows} outcomes written to {old} in {time.monotonic() - started:.1f} s")

    writer = Writer(bank.pk)
    writer.start()
    time.sleep(3)
    before = time.monotonic()
    dropped = partitions_drop_expired(now=now)
    after = time.monotonic()
    time.sleep(1)
    writer.stop.set()
    writer.join()
    for done in dropped:
        print(f"  dropped {done.table} {done.month}: ~{done.rows} rows, {done.bytes} bytes")
    print(f"  drop took              {after - before:8.3f} s (detach concurrently, drop)")
    count, slowest = writer.slowest(before, after)
    base_count, base_slowest = writer.slowest(0, before)
    print(f"  writes during the drop {count:8d}, slowest {slowest * 1000:.1f} ms")
    print(f"  writes before it       {base_count:8d}, slowest {base_slowest * 1000:.1f} ms")


if __name__ == "__main__":
    main()
