"""Benchmark: dropping a month of events, notifications, outcomes and attempts while
events are being posted.

Run with `make bench`. It creates its own database (`<DATABASE_URL's name>_bench_partitions`),
fills a month long past the horizon with `--rows` events, each with its idempotency key,
a notification, an outcome and a delivery attempt, then drops expired months
(`notifications.services.partitions_drop_expired`: the month's keys deleted, then each
table's month detached concurrently and dropped, attempts first) while a thread posts
single events through the ingest (`event_ingest`: key, event, notification, outcome,
audit entry), one at a time. It prints how long the drop took, each part, and the slowest
post during it beside the slowest before it. Figures only: nothing asserts.

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
    """Posts one event at a time through the ingest, keeping each post's time."""

    def __init__(self, bank, events) -> None:
        super().__init__(daemon=True)
        self.bank = bank
        self.events = events
        self.times: list[tuple[float, float]] = []  # (started, seconds)
        self.stop = threading.Event()

    def run(self) -> None:
        from notifications.services import event_ingest
        from portal.audit import Actor

        actor = Actor.system("benchmark")
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                report = event_ingest(actor=actor, bank=self.bank, events=[self.events.next()])
                if report.count("accepted") != 1:
                    raise SystemExit(f"a post was not accepted: {report.as_dict()}")
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


PAGE = "bench-partitions-page"


def run(rows: int, name: str) -> None:
    from bench.api import Events
    from bench.people import bank_on_page
    from core.db import partitions
    from core.db.partitions import Month
    from notifications.models import Notification
    from notifications.services import event_ingest, partitions_drop_expired
    from notifications.services.partitions import TABLES
    from portal.audit import Actor
    from portal.events import DataScope

    now = timezone.now()
    old = Month.of(now) - 30
    bank = bank_on_page(
        "bench", PAGE, 100, scopes=DataScope.values, psid=lambda n: f"8{n:09d}", purpose="bench"
    )
    events = Events(100)
    print(f"bankside partition drop benchmark on PostgreSQL database {name}")
    writer = Writer(bank, events)
    # One post made the usual way: the template of the month's rows.
    event_ingest(actor=Actor.system("benchmark"), bank=bank, events=[events.next()])
    template = Notification.objects.latest("id")
    started = time.monotonic()
    with connection.cursor() as cursor:
        for table in TABLES:
            table.partitions_create([old])
        month_fill(cursor, old, rows, bank.pk, template.pk)
        for table in TABLES:
            cursor.execute(f"VACUUM ANALYZE {partitions.partition_name(table.name, old)}")
        cursor.execute("VACUUM ANALYZE notifications_eventkey")
    print(
        f"  {rows} events, keys, notifications, outcomes and attempts written to {old}"
        f" in {time.monotonic() - started:.1f} s"
    )

    writer.start()
    time.sleep(3)
    before = time.monotonic()
    dropped = partitions_drop_expired(now=now)
    after = time.monotonic()
    time.sleep(1)
    writer.stop.set()
    writer.join()
    for done in dropped:
        print(
            f"  dropped {done.table} {done.month}: ~{done.rows} rows, {done.bytes} bytes,"
            f" detached and dropped in {done.seconds:.3f} s"
            + (f" after {done.released} rows pointing into it went" if done.released else "")
        )
    dropping = sum(done.seconds for done in dropped)
    print(f"  the drops took         {dropping:8.3f} s (detach concurrently, drop)")
    print(f"  all of it took         {after - before:8.3f} s (with the keys and answers deleted)")
    count, slowest = writer.slowest(before, after)
    base_count, base_slowest = writer.slowest(0, before)
    print(f"  posts during the drop  {count:8d}, slowest {slowest * 1000:.1f} ms")
    print(f"  posts before it        {base_count:8d}, slowest {base_slowest * 1000:.1f} ms")


def month_fill(cursor, month, rows: int, bank_id: int, template_id: int) -> None:
    """`rows` events of `month`, each with its key, a notification (a copy of the template
    notification), an outcome and an attempt, written in bulk."""
    first = month.first_id
    at = month.start
    cursor.execute(
        "INSERT INTO notifications_event (id, bank_id, event_id, type, customer_id, account_id,"
        " occurred_at, data, received_at, status)"
        " SELECT %s + g, n.bank_id, 'old-' || g, n.event_type, e.customer_id, n.account_id,"
        " %s + g * interval '1 second', '{}', %s + g * interval '1 second', 'processed'"
        " FROM notifications_notification n JOIN notifications_event e ON e.id = n.event_id,"
        " generate_series(1, %s) g WHERE n.id = %s",
        [first, at, at, rows, template_id],
    )
    cursor.execute(
        "INSERT INTO notifications_eventkey (event_id, bank_id, reference)"
        " SELECT id, bank_id, event_id FROM notifications_event WHERE id > %s AND id < %s",
        [first, month.end_id],
    )
    cursor.execute(
        "INSERT INTO notifications_notification SELECT r.*"
        " FROM notifications_notification n, generate_series(1, %s) g,"
        " LATERAL jsonb_populate_record(NULL::notifications_notification, to_jsonb(n)"
        " || jsonb_build_object('id', %s + g, 'event_id', %s + g, 'sequence', g,"
        " 'state', 'delivered', 'created_at', %s + g * interval '1 second')) r"
        " WHERE n.id = %s",
        [rows, first, first, at, template_id],
    )
    cursor.execute(
        "INSERT INTO notifications_outcome (id, bank_id, type, event_id, notification_id,"
        " event_ref, event_type, details, occurred_at)"
        " SELECT %s + g, %s, 'notification.delivered', %s + g, %s + g, 'old-' || g,"
        " 'transaction.posted', '{}', %s + g * interval '1 second'"
        " FROM generate_series(1, %s) g",
        [first, bank_id, first, first, at, rows],
    )
    cursor.execute(
        "INSERT INTO notifications_deliveryattempt (id, notification_id, number, form,"
        " started_at, latency_ms, outcome, detail)"
        " SELECT %s + g, %s + g, 1, 'text', %s + g * interval '1 second', 40, 'sent', ''"
        " FROM generate_series(1, %s) g",
        [first, first, at, rows],
    )


if __name__ == "__main__":
    main()
