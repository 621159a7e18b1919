"""Benchmark: does one bank's ingest queue on a lock that four banks would not share?

A large bank is one Page and one audit chain, served by many web processes against a
PostgreSQL that is a network hop away. On this machine the CPU runs out long before a
per-bank lock shows, so the database is put "across a network" by a latency proxy
(bench/latency_proxy.py, adding `--rtt-ms` to every round trip), and the same single-event
load is sent twice: all of it to one bank, then spread over four banks. A lock that
serialises one bank's writers (its audit chain's head, its outcome feed) shows as the gap
between the two rates, and in the lock waits sampled from `pg_stat_activity` meanwhile.

Each configuration: 1, 2 and 4 web processes (gunicorn workers, `--threads` threads
each), at 0 ms added round trip (direct) and at `--rtt-ms`. Then delivery the same way:
1, 2 and 4 Celery worker processes draining one bank's backlog on its Page, then the same
backlog spread over four banks' Pages, to the fake Send API (bench/fake_send_api.py).
Printed for each: events/s (messages/s), p50/p99 per request, CPU per event (gunicorn
and PostgreSQL; workers, PostgreSQL and Redis per message), lock waits (the share of
samples with a backend waiting on a lock, the mean number waiting, and on what), and the
ratio one bank / four banks. Figures only: nothing here asserts a time.

    python bench/scale.py [--web 1,2,4] [--rtt-ms 1] [--singles 2000] [--concurrency 16]
                          [--threads 8] [--customers 200] [--history 5000]
                          [--workers 1,2,4] [--people 500] [--per-person 2]
                          [--skip-ingest] [--skip-delivery]
"""

import argparse
import collections
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankside.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment, teardown_test_environment  # noqa: E402

from bench.api import (  # noqa: E402
    QUEUE,
    Events,
    Server,
    http_request,
    load_average,
    percentile,
    statistics_refresh,
)
from bench.api import measure as api_measure  # noqa: E402

BANKS = 4


# --- the world ------------------------------------------------------------------------


def banks_create(customers: int) -> list[tuple[str, str]]:
    """Four live banks on their own Pages with `customers` linked customers each; returns
    (slug, API key) for each."""
    from bench.people import bank_on_page, unlimited_api_key
    from portal.events import DataScope

    made = []
    for n in range(BANKS):
        bank = bank_on_page(
            f"scale{n}",
            f"91000000{n}",
            customers,
            scopes=DataScope.values,
            psid=lambda i, n=n: f"8{n}{i:08d}",
            purpose="bench",
        )
        made.append((bank.slug, unlimited_api_key(bank, name="Scale", actor="benchmark")))
    return made


def history_seed(banks: list[tuple[str, str]], events: Events, count: int) -> None:
    """`count` events per bank already posted and delivered: production's tables are not
    empty, and plans made on empty tables would measure something else."""
    from notifications.models import Notification
    from notifications.services import event_ingest
    from portal.audit import Actor
    from portal.models import Bank

    actor = Actor.system("benchmark history")
    for slug, _ in banks:
        bank = Bank.objects.get(slug=slug)
        for start in range(0, count, 1000):
            batch = [events.next() for _ in range(min(1000, count - start))]
            event_ingest(actor=actor, bank=bank, events=batch)
    Notification.objects.filter(state__in=Notification.OPEN).update(
        state=Notification.State.DELIVERED
    )
    statistics_refresh()


# --- the database across a network ---------------------------------------------------


class Proxy:
    """bench/latency_proxy.py in its own process, in front of the benchmark's PostgreSQL."""

    def __init__(self, rtt_ms: float) -> None:
        db = settings.DATABASES["default"]
        target = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                sys.executable,
                str(ROOT / "bench" / "latency_proxy.py"),
                "--target",
                target,
                "--delay-ms",
                str(rtt_ms),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("ready "):
            raise SystemExit("the latency proxy did not start")
        self.port = int(line.split()[1])

    def measured_rtt_ms(self) -> float:
        """What a round trip through the proxy costs more than a direct one."""
        import psycopg2

        db = settings.DATABASES["default"]

        def per_trip(port: int) -> float:
            conn = psycopg2.connect(host="127.0.0.1", port=port, user=db["USER"], dbname=db["NAME"])
            cursor = conn.cursor()
            started = time.perf_counter()
            for _ in range(200):
                cursor.execute("SELECT 1")
                cursor.fetchone()
            elapsed = (time.perf_counter() - started) / 200
            conn.close()
            return elapsed

        return (per_trip(self.port) - per_trip(int(db.get("PORT") or 5432))) * 1000

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# --- lock waits ----------------------------------------------------------------------


@dataclass
class LockWaits:
    samples: int = 0
    with_waiters: int = 0
    waiting: int = 0
    on: collections.Counter = field(default_factory=collections.Counter)

    def line(self) -> str:
        if not self.samples:
            return "lock waits: not sampled"
        top = ", ".join(f"{what} {n / self.samples:.2f}" for what, n in self.on.most_common(3))
        return (
            f"lock waits: {self.with_waiters / self.samples:4.0%} of samples, "
            f"{self.waiting / self.samples:.2f} backends waiting on average"
            + (f" ({top})" if top else "")
        )


_TABLE = re.compile(r'\b(?:UPDATE|INTO|FROM)\s+"?(\w+)"?', re.IGNORECASE)


def _table_of(query: str) -> str:
    """The first table a waiting statement names: which lock it queues on, roughly (the
    audit chain's head, a person's `Recipient` row, the outcome feed…)."""
    if (query or "").lstrip().upper().startswith("EXECUTE"):
        return "a prepared statement"  # its text is its session's own (core.db.rows)
    found = _TABLE.search(query or "")
    return found.group(1) if found else "?"


class LockSampler:
    """Every 10 ms, which backends of the benchmark's database wait on a lock, and on what
    (`pg_stat_activity.wait_event`: `transactionid` and `tuple` are row locks, `advisory`
    advisory locks, `relation` table locks)."""

    def __init__(self) -> None:
        import psycopg2

        db = settings.DATABASES["default"]
        self.conn = psycopg2.connect(
            host=db.get("HOST") or "127.0.0.1",
            port=db.get("PORT") or 5432,
            user=db["USER"],
            dbname=db["NAME"],
        )
        self.conn.autocommit = True
        self.waits = LockWaits()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        cursor = self.conn.cursor()
        while not self.stop.is_set():
            # A backend waiting for a row holds the row's tuple lock meanwhile: its table
            # says which row it queues on, where the statement (prepared) does not.
            cursor.execute(
                "SELECT a.wait_event, a.query, (SELECT min(c.relname) FROM pg_locks l "
                "JOIN pg_class c ON c.oid = l.relation WHERE l.pid = a.pid "
                "AND l.locktype = 'tuple') FROM pg_stat_activity a "
                "WHERE a.datname = current_database() AND a.wait_event_type = 'Lock' "
                "AND a.pid <> pg_backend_pid()"
            )
            rows = [
                f"{event} in {table or _table_of(query)}"
                for event, query, table in cursor.fetchall()
            ]
            self.waits.samples += 1
            self.waits.with_waiters += bool(rows)
            self.waits.waiting += len(rows)
            self.waits.on.update(rows)
            self.stop.wait(0.01)

    def __enter__(self) -> LockWaits:
        self.thread.start()
        return self.waits

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.conn.close()


# --- one measure ---------------------------------------------------------------------


@dataclass
class Result:
    rate: float
    p50_ms: float
    p99_ms: float
    app_cpu_ms: float
    db_cpu_ms: float
    waits: LockWaits


def requests_for(banks: list[tuple[str, str]], events: Events, count: int) -> list[bytes]:
    """`count` single-event posts, each bank's key for its own events, in turn."""
    keys = itertools.cycle(secret for _, secret in banks)
    return [
        http_request(
            "/api/v1/events",
            json.dumps(events.next()).encode(),
            {"Authorization": f"Bearer {next(keys)}"},
        )
        for _ in range(count)
    ]


def measure(server: Server, requests: list[bytes], concurrency: int) -> Result:
    """`bench/api.py`'s measure, with the lock waits sampled while it runs."""
    with LockSampler() as waits:
        figures = api_measure(server, requests, concurrency, 202)
    count = len(requests)
    return Result(
        rate=count / figures.wall,
        p50_ms=percentile(figures.latencies, 0.5) * 1000,
        p99_ms=percentile(figures.latencies, 0.99) * 1000,
        app_cpu_ms=figures.app_cpu / count * 1000,
        db_cpu_ms=figures.db_cpu / count * 1000,
        waits=waits,
    )


def print_result(label: str, result: Result) -> None:
    print(
        f"    {label:<11} {result.rate:7.0f} events/s   p50 {result.p50_ms:6.1f} ms   "
        f"p99 {result.p99_ms:6.1f} ms   CPU per event: gunicorn {result.app_cpu_ms:.2f} ms, "
        f"PostgreSQL {result.db_cpu_ms:.2f} ms"
    )
    print(f"    {'':<11} {result.waits.line()}")


def run(args, database: str) -> list[tuple[str, int, float]]:
    banks = banks_create(args.customers)
    events = Events(args.customers)
    history_seed(banks, events, args.history)
    connection.close()
    ratios = []
    for rtt in (0.0, args.rtt_ms):
        proxy = Proxy(rtt) if rtt else None
        try:
            if proxy is not None:
                print(
                    f"\n{rtt:g} ms added round trip (measured: "
                    f"{proxy.measured_rtt_ms():.2f} ms more than direct)"
                )
            else:
                print("\n0 ms added round trip (PostgreSQL on loopback)")
            env = {"BENCH_DATABASE_PORT": str(proxy.port)} if proxy is not None else {}
            for web in args.web:
                server = Server(database, web, args.threads, env=env)
                try:
                    print(f"  {web} web process{'es' if web > 1 else ''}; {load_average()}")
                    # Warm-up: each worker imports, connects and fills its caches.
                    measure(server, requests_for(banks, events, 100 * web), args.concurrency)
                    one = measure(
                        server, requests_for(banks[:1], events, args.singles), args.concurrency
                    )
                    print_result("one bank", one)
                    four = measure(
                        server, requests_for(banks, events, args.singles), args.concurrency
                    )
                    print_result("four banks", four)
                    ratio = one.rate / four.rate
                    print(f"    {'':<11} one bank reaches {ratio:.0%} of four banks' rate")
                    ratios.append((f"{rtt:g} ms", web, ratio))
                finally:
                    server.close()
        finally:
            if proxy is not None:
                proxy.close()
    return ratios


def delivery_run(args) -> list[tuple[str, int, float]]:
    """Delivery by 1, 2 and 4 worker processes to the fake Send API: one bank's backlog on
    its Page against a backlog as large, for as many people, spread over four banks'
    Pages; messages/s, CPU per message and lock waits, PostgreSQL direct and behind the
    proxy."""
    from bench import delivery

    ratios = []
    with delivery.Machine.running(
        "scale_delivery", "scale (delivery)", page_prefix=delivery.PAGE_PREFIX
    ) as machine:
        from bench.people import bank_on_page

        banks = delivery.setup_pages(BANKS, args.people)
        # One bank with as many people as the four together: per person, the same number of
        # messages (a person's messages go one at a time, whatever the bank).
        big = bank_on_page(
            "bench-one",
            f"{delivery.PAGE_PREFIX}9",
            args.people * BANKS,
            scopes=["fraud_alerts", "transactions"],
            psid=lambda n: f"9{n:09d}",
            purpose="bench",
        )
        sent = 0
        for rtt in (0.0, args.rtt_ms):
            proxy = Proxy(rtt) if rtt else None
            try:
                print(
                    f"\nDelivery, {rtt:g} ms added round trip"
                    + (f" (measured: {proxy.measured_rtt_ms():.2f} ms)" if proxy else "")
                )
                env = {"BENCH_DATABASE_PORT": str(proxy.port)} if proxy is not None else {}
                for workers in args.workers:
                    rates = {}
                    print(f"  {workers} worker process{'es' if workers > 1 else ''}")
                    for label, targets, people in (
                        ("one bank", [big], args.people * BANKS),
                        ("four banks", banks, args.people),
                    ):
                        total = delivery.load(targets, people, args.per_person)
                        machine.start_workers(workers, **env)
                        time.sleep(1)  # the workers open their connections
                        before = delivery.cpu_seconds(machine.workers.pid)
                        redis_before = delivery.redis_cpu_seconds()
                        database = delivery.DatabaseCpu()
                        database.sample()
                        with LockSampler() as waits:
                            elapsed = delivery.drain(sent + total, database=database)
                        sent += total
                        workers_cpu = delivery.cpu_seconds(machine.workers.pid) - before
                        redis_cpu = delivery.redis_cpu_seconds() - redis_before
                        machine.stop_workers()
                        rates[label] = total / elapsed
                        per_message = 1e6 / total
                        cpu = workers_cpu + database.seconds() + redis_cpu
                        print(
                            f"    {label:<11} {total / elapsed:7.0f} messages/s   CPU per "
                            f"message {cpu * per_message:.0f} us: "
                            f"workers {workers_cpu * per_message:.0f}, PostgreSQL "
                            f"{database.seconds() * per_message:.0f}, Redis "
                            f"{redis_cpu * per_message:.0f}"
                        )
                        print(f"    {'':<11} {waits.line()}")
                    ratio = rates["one bank"] / rates["four banks"]
                    print(f"    {'':<11} one bank reaches {ratio:.0%} of four banks' rate")
                    ratios.append((f"{rtt:g} ms", workers, ratio))
            finally:
                if proxy is not None:
                    proxy.close()
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--web", default="1,2,4", help="web process counts, comma-separated")
    parser.add_argument("--rtt-ms", type=float, default=1.0)
    parser.add_argument("--singles", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--history", type=int, default=5000, help="events per bank before")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts")
    parser.add_argument("--people", type=int, default=500, help="per bank, for delivery")
    parser.add_argument(
        "--per-person", type=int, default=2, help="notifications per person and bank"
    )
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-delivery", action="store_true")
    args = parser.parse_args()
    try:
        args.web = [int(n) for n in args.web.split(",")]
        args.workers = [int(n) for n in args.workers.split(",")]
    except ValueError:
        parser.error("--web and --workers take numbers separated by commas, e.g. 1,2,4")
    if (
        any(n < 1 for n in [*args.web, *args.workers])
        or min(args.singles, args.concurrency, args.people, args.per_person) < 1
    ):
        parser.error(
            "--web, --workers, --singles, --concurrency, --people and --per-person take 1 or more"
        )
    if args.rtt_ms <= 0 or args.history < 0 or args.customers < 1:
        parser.error("--rtt-ms must be positive, --history not negative, --customers 1 or more")

    database = settings.DATABASES["default"]
    if database["ENGINE"] != settings.POSTGRESQL_ENGINE:
        raise SystemExit("The benchmark runs against PostgreSQL: set DATABASE_URL=postgres://…")
    ratios, delivery_ratios = [], []
    if not args.skip_ingest:
        base = database["NAME"]
        database["TEST"] = {**database.get("TEST", {}), "NAME": f"{base}_bench_scale"}
        setup_test_environment()
        name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        print(
            f"bankside scale benchmark on PostgreSQL database {name}: single events, "
            f"{args.concurrency} in flight, one bank against four; {os.cpu_count()} CPUs"
        )
        try:
            ratios = run(args, name)
        finally:
            connection.close()
            connection.creation.destroy_test_db(name, verbosity=0)
            teardown_test_environment()  # the delivery part sets it up again
            database["NAME"] = base
            import redis

            redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(QUEUE)
    if not args.skip_delivery:
        delivery_ratios = delivery_run(args)
    print("\nOne bank / four banks:")
    for rtt, web, ratio in ratios:
        print(f"  ingest    {rtt:>6} added round trip, {web} web process(es):    {ratio:5.0%}")
    for rtt, workers, ratio in delivery_ratios:
        print(f"  delivery  {rtt:>6} added round trip, {workers} worker process(es): {ratio:5.0%}")


if __name__ == "__main__":
    main()
