"""Benchmark: do ingest and delivery slow down as the tables fill?

One bank on its Page. Its history is seeded as `bench/api.py --history` seeds one: events
posted in batches through the API's own `event_ingest`, their notifications then marked
delivered (nothing is sent). At `--small` stored events (20,000 by default) it measures:

1. single-event ingest through gunicorn (`--web` processes of `--threads` threads,
   `--concurrency` posts in flight, `--singles` posts): events/s, p50/p99, CPU per event;
2. delivery by `--workers` Celery worker processes to the fake Send API
   (bench/fake_send_api.py): the notifications of `--deliver` more events (every type, to
   every customer in turn) drained, messages/s. A person's messages go one at a time, so
   `--customers` should be a good part of `--deliver`, or the measure is of that order.
   The outbox is swept once first, as beat sweeps it every 5 s (raising the floor of
   open notifications past the months with none).

Each is measured `--repeat` times (2 by default); the ratios are of the rounds' means.

Then it seeds more history, up to `--large` stored events (5,000,000 by default),
spreads it over this month and the `--months` before (13 by default, as a year of traffic
leaves it: on PostgreSQL each month is a partition of the events, notifications and
outcomes, `core.db.partitions`), vacuums as autovacuum would have over the months such a
history takes, and measures both again. It prints each figure at both sizes, their ratio,
and the bytes the bank's tables hold at each size. Figures only: nothing here asserts a time.

    python bench/growth.py [--small 20000] [--large 5000000] [--months 13]
                           [--singles 2000] [--web 2] [--threads 8] [--concurrency 16]
                           [--customers 2000] [--workers 2] [--deliver 4000] [--repeat 2]
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankside.settings.test")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from bench import delivery  # noqa: E402
from bench.api import (  # noqa: E402
    Events,
    Server,
    delivered_mark,
    load_average,
    percentile,
    statistics_refresh,
)
from bench.api import measure as api_measure  # noqa: E402
from bench.scale import requests_for  # noqa: E402

PAGE = f"{delivery.PAGE_PREFIX}7"
TABLES = (
    "notifications_event",
    "notifications_eventkey",
    "notifications_notification",
    "notifications_outcome",
    "notifications_deliveryattempt",
    "portal_auditevent",
)


def world(customers: int) -> tuple[str, str]:
    """The bank, live on its Page with `customers` linked customers; (slug, API key)."""
    from bench.people import bank_on_page, unlimited_api_key
    from portal.events import DataScope

    bank = bank_on_page(
        "growth",
        PAGE,
        customers,
        scopes=DataScope.values,
        psid=lambda n: f"7{n:09d}",
        purpose="bench",
    )
    return bank.slug, unlimited_api_key(bank, name="Growth", actor="benchmark")


def stored() -> int:
    from notifications.models import Event

    return Event.objects.count()


def history_grow(events: Events, target: int, batch_size: int = 1000) -> None:
    """Post events until `target` are stored, as `bench/api.py`'s `history_seed` does, their
    notifications marked delivered batch by batch, as workers keep up with a live bank.
    Left open by the million, they would fill the partial indexes of open notifications
    that every balance update reads, which a running system never does."""
    from notifications.services import event_ingest
    from portal.audit import Actor
    from portal.models import Bank

    bank = Bank.objects.get(slug="growth")
    actor = Actor.system("benchmark history")
    have = stored()
    started, last_report = time.monotonic(), time.monotonic()
    while have < target:
        batch = [events.next() for _ in range(min(batch_size, target - have))]
        report = event_ingest(actor=actor, bank=bank, events=batch)
        if report.count("accepted") != len(batch):
            raise SystemExit(f"the history was not accepted: {report.as_dict()['results'][:3]}")
        have += len(batch)
        if time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            rate = have / (last_report - started)
            print(f"    … {have:,} stored ({rate:,.0f} a second)", flush=True)
        delivered_mark()
        if have % VACUUM_EVERY < batch_size:
            history_vacuum()
    # As autovacuum leaves a table that grew over months: the row versions that marking
    # the history delivered left behind are gone, and the visibility map is set. Measured
    # straight after a bulk load, the partial indexes of open notifications would still
    # hold millions of dead entries, which a running system never carries.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    statistics_refresh()


# As autovacuum would, every so often: this machine's PostgreSQL may run without it (CI's
# does), and without a vacuum every batch's look for open notifications would walk the
# dead index entries of every notification marked delivered before it.
VACUUM_EVERY = 100_000
GROWN_TABLES = (
    "notifications_notification",
    "notifications_event",
    "notifications_eventkey",
    "notifications_outcome",
)


def history_vacuum() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(GROWN_TABLES)}")


AGE_CHUNK = 200_000  # ids of this month moved to their month in one statement per table


def history_age(months: int) -> dict[str, int]:
    """Spread the rows this month's partitions hold over this month and the `months`
    before it, evenly (by the low bits of the event's id), as a history that took those
    months to write would lie; returns the rows each table keeps in this month.

    A row moves with its event: an event's notifications and outcomes to its month, ids
    keeping their low bits (unique per table) under the month's prefix, times moved back
    by as many months. Each table's month partitions are made first, as beat makes them.
    """
    from django.utils import timezone

    from core.db.partitions import MONTH_SHIFT, Month
    from notifications.services import partitions as partitioned

    this = Month.of(timezone.now())
    for table in partitioned.TABLES:
        table.partitions_create([this - k for k in range(months + 1)])
    mask = (1 << MONTH_SHIFT) - 1

    def back(column: str) -> str:
        return f"mod({column} & {mask}, {months + 1})"

    def moved(column: str, by: str) -> str:
        return f"((({this.index} - {back(by)}) << {MONTH_SHIFT}) | ({column} & {mask}))"

    def earlier(column: str, by: str) -> str:
        return f"{column} - {back(by)} * interval '1 month'"

    statements = {
        "notifications_eventkey": "event_id = {e}".format(e=moved("event_id", "event_id")),
        "notifications_event": (
            f"id = {moved('id', 'id')}, received_at = {earlier('received_at', 'id')},"
            f" occurred_at = {earlier('occurred_at', 'id')}"
        ),
        "notifications_notification": (
            f"id = {moved('id', 'event_id')}, event_id = {moved('event_id', 'event_id')},"
            f" created_at = {earlier('created_at', 'event_id')},"
            f" queued_at = {earlier('queued_at', 'event_id')}"
        ),
        "notifications_outcome": (
            f"id = {moved('id', 'event_id')}, event_id = {moved('event_id', 'event_id')},"
            f" notification_id = CASE WHEN notification_id IS NULL THEN NULL"
            f" ELSE {moved('notification_id', 'event_id')} END,"
            f" occurred_at = {earlier('occurred_at', 'event_id')}"
        ),
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(max(id), 0) FROM notifications_event WHERE id >= %s",
            [this.first_id],
        )
        (last,) = cursor.fetchone()
        for low in range(this.first_id, last + 1, AGE_CHUNK):
            span = [low, min(low + AGE_CHUNK, this.end_id)]
            for table, assignments in statements.items():
                key = "event_id" if table != "notifications_event" else "id"
                cursor.execute(
                    f"UPDATE {table} SET {assignments} WHERE {key} >= %s AND {key} < %s"  # noqa: S608
                    f" AND {back(key)} > 0",
                    span,
                )
        kept = {}
        for table in ("notifications_event", "notifications_notification", "notifications_outcome"):
            cursor.execute(
                f"SELECT count(*) FROM {table} WHERE id >= %s AND id < %s",  # noqa: S608
                [this.first_id, this.end_id],
            )
            kept[table] = cursor.fetchone()[0]
    return kept


def table_bytes() -> dict[str, int]:
    """The bank's tables' bytes, with their indexes (a partitioned one: its partitions')."""
    sizes = delivery.table_bytes()
    return {table: sizes.get(table, 0) for table in TABLES}


def ingest_measure(args, database: str, bank: tuple[str, str], events: Events) -> dict:
    server = Server(database, args.web, args.threads)
    try:
        # Warm-up: each worker imports, connects and fills its caches.
        api_measure(server, requests_for([bank], events, 100 * args.web), args.concurrency, 202)
        figures = api_measure(
            server, requests_for([bank], events, args.singles), args.concurrency, 202
        )
    except SystemExit:
        # An answer other than 202: what the server said, before its log goes with it.
        print(server.log.read_text()[-4000:], file=sys.stderr)
        raise
    finally:
        server.close()
    count = args.singles
    return {
        "rate": count / figures.wall,
        "p50": percentile(figures.latencies, 0.5) * 1000,
        "p99": percentile(figures.latencies, 0.99) * 1000,
        "cpu": (figures.app_cpu + figures.db_cpu) / count * 1000,
    }


def delivery_measure(args, machine: "delivery.Machine", bank_slug: str, events: Events) -> dict:
    from notifications.models import Notification
    from notifications.services import event_ingest, outbox_sweep
    from portal.audit import Actor
    from portal.models import Bank

    delivered_mark()  # what the ingest measure queued is not this measure's
    bank = Bank.objects.get(slug=bank_slug)
    actor = Actor.system("benchmark")
    for start in range(0, args.deliver, 1000):
        batch = [events.next() for _ in range(min(1000, args.deliver - start))]
        event_ingest(actor=actor, bank=bank, events=batch)
    total = Notification.objects.filter(state__in=Notification.OPEN).count()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE notifications_notification")
    # Beat sweeps the outbox every 5 s, and the sweep raises the open notifications' floor
    # past the months with nothing open: a live bank's floor left its history's months
    # long ago. Without a sweep the floor stays at 0, and every claim reads every month.
    outbox_sweep()
    machine.start_workers(args.workers)
    time.sleep(1)  # the workers open their connections
    before = delivery.cpu_seconds(machine.workers.pid)
    sampler = delivery.DatabaseCpu()
    sampler.sample()
    elapsed = delivery.drain(total, database=sampler)
    workers = delivery.cpu_seconds(machine.workers.pid) - before
    machine.stop_workers()
    return {
        "rate": total / elapsed,
        "cpu": (workers + sampler.seconds()) / total * 1e6,
    }


def measure_at(args, machine, bank, events) -> dict:
    """`args.repeat` rounds of ingest then delivery; each figure the mean of its rounds."""
    statistics_refresh()
    print(f"  {stored():,} events stored; {load_average()}", flush=True)
    rounds: dict[str, list[dict]] = {"ingest": [], "delivery": []}
    for _ in range(args.repeat):
        ingest = ingest_measure(args, machine.database, bank, events)
        print(
            f"    ingest    {ingest['rate']:7.0f} events/s   p50 {ingest['p50']:6.1f} ms   "
            f"p99 {ingest['p99']:6.1f} ms   CPU {ingest['cpu']:.2f} ms per event",
            flush=True,
        )
        sent = delivery_measure(args, machine, bank[0], events)
        print(
            f"    delivery  {sent['rate']:7.0f} messages/s   CPU {sent['cpu']:.0f} us per "
            f"message (workers and PostgreSQL); {load_average()}",
            flush=True,
        )
        rounds["ingest"].append(ingest)
        rounds["delivery"].append(sent)
    means = {
        part: {key: sum(r[key] for r in figures) / len(figures) for key in figures[0]}
        for part, figures in rounds.items()
    }
    return {**means, "bytes": table_bytes(), "stored": stored()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=5_000_000)
    parser.add_argument(
        "--months", type=int, default=13, help="months before this one the history spans"
    )
    parser.add_argument("--singles", type=int, default=2000)
    parser.add_argument("--web", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--deliver", type=int, default=4000, help="events posted, then sent")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of each measure")
    args = parser.parse_args()
    if not 0 < args.small < args.large:
        parser.error("--small and --large must be positive, --small below --large")
    if min(args.singles, args.web, args.threads, args.concurrency, args.customers) < 1:
        parser.error("--singles, --web, --threads, --concurrency and --customers take 1 or more")
    if min(args.workers, args.deliver, args.repeat) < 1:
        parser.error("--workers, --deliver and --repeat take 1 or more")
    if not 0 <= args.months <= 120:
        parser.error("--months takes 0 (the whole history in this month) to 120")

    with delivery.Machine.running("growth", "growth", page_prefix=PAGE) as machine:
        bank = world(args.customers)
        events = Events(args.customers)
        print(f"Seeding {args.small:,} events of history", flush=True)
        history_grow(events, args.small)
        small = measure_at(args, machine, bank, events)
        print(f"Seeding up to {args.large:,} events of history", flush=True)
        history_grow(events, args.large)
        if args.months and connection.vendor == "postgresql":
            print(f"Spreading it over this month and the {args.months} before", flush=True)
            kept = history_age(args.months)
            with connection.cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE)")
            statistics_refresh()
            print(
                "  this month's partitions hold "
                + ", ".join(f"{rows:,} rows of {table}" for table, rows in kept.items()),
                flush=True,
            )
        large = measure_at(args, machine, bank, events)

    print(f"\nAt {large['stored']:,} stored events against {small['stored']:,}:")
    for part, unit in (("ingest", "events/s"), ("delivery", "messages/s")):
        a, b = small[part]["rate"], large[part]["rate"]
        print(f"  {part:<9} {b:7.0f} against {a:7.0f} {unit}: {b / a:6.1%} (means of rounds)")
    print(f"  ingest p99 {large['ingest']['p99']:.1f} ms against {small['ingest']['p99']:.1f} ms")
    print("  bytes stored per event (all rows and indexes of the table, divided by events):")
    for table in TABLES:
        print(
            f"    {table:<32} {small['bytes'][table] / small['stored']:8.0f} "
            f"{large['bytes'][table] / large['stored']:8.0f}"
        )


if __name__ == "__main__":
    main()
