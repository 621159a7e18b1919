"""Benchmark: the core-banking API served by gunicorn, as in production, against PostgreSQL.

Run with `make bench`. It creates its own database (`<DATABASE_URL's name>_bench_api`),
a bank live on a Page with `--customers` linked customers (one card each, every consent
scope) and an API key, with a history of `--history` events already posted and their
notifications delivered (`history_seed`: production's tables are not empty), then starts
gunicorn (bench/api_settings.py: the production settings) with `--workers` workers of
`--threads` threads each (gthread workers, as docker-compose.yml runs it; 1 thread:
sync workers) and drives it from an asyncio load generator on the same machine. Each
figure is measured `--repeat` times:

1. `POST /api/v1/events` with one event per request, `--concurrency` requests in flight:
   events/s and p50/p99 latency. Every event is new and produces a notification.
2. `POST /api/v1/events` with batches of `--batch-size` events, `--batch-concurrency` in
   flight: events/s.
3. For reference, the same stack's bare DRF endpoint inserting one row (bench settings
   only), driven like 1.
4. Also for reference, an endpoint making the round trips of one posted event to
   PostgreSQL and Redis and nothing else (bench/api_urls.py, `RoundTripsOnly`): the
   API's ceiling if its own work cost nothing. Driven like 1.

The four take turns within a round, `--slices` slices each (in turn 1-2-3-4, then
4-3-2-1, …): the machine's speed drifts from one minute to the next, by a third or more
on a shared host, and whatever it does then falls on every load alike, so the ratios to
the bare insert printed at the end of each round hold where the rates alone do not. The
last line gives them over all rounds together.

5. Then `--paced` single events offered at a set rate, `--paced-share` of the bare
   insert's rate in the round just run (an open loop, as a core system posts: Poisson
   arrivals, whatever the answers do, over up to `--paced-connections` connections), each
   latency counted from the moment its request was due. Loads 1-4 keep a fixed number of
   requests in flight, so their latency is that number over their rate (Little's law):
   it says how fast a load goes. This one's says how long a post waits at a given rate.

With each: the CPU time gunicorn and PostgreSQL spent per event, which depends far less
than the rates on whatever else the machine is running, and the load average. Figures
only: nothing here asserts a time.

    python bench/api.py [--workers 2] [--threads 16] [--concurrency 16] [--singles 5000]
                        [--batches 20] [--batch-size 1000] [--batch-concurrency 2]
                        [--repeat 2] [--slices 5] [--history 20000]
                        [--paced 2000] [--paced-share 0.6] [--paced-connections 64]
"""

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankside.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

QUEUE = f"bench-api-{os.getpid()}"
HOST = "127.0.0.1"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def load_average() -> str:
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg())


# --- the world the requests need ------------------------------------------------------


def setup_bank(customers: int) -> str:
    """A live bank whose customers each have a card linked to Messenger; returns a key."""

    from bench.api_urls import BARE_TABLE
    from bench.people import bank_on_page, unlimited_api_key
    from portal.events import DataScope

    bank = bank_on_page(
        "bench",
        "900000001",
        customers,
        scopes=DataScope.values,
        psid=lambda n: f"7{n:09d}",
        purpose="bench",
    )
    secret = unlimited_api_key(bank, name="Benchmark", actor="benchmark")
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {BARE_TABLE} (id bigserial PRIMARY KEY, body jsonb NOT NULL, "
            "received_at timestamptz NOT NULL)"
        )
    return secret


def statistics_refresh() -> None:
    """ANALYZE, as autovacuum keeps doing in production: before each measured phase, so
    that the plans every gunicorn worker's connection caches (its prepared statements, the
    foreign-key checks) are made from statistics of the tables as they are now."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def history_seed(events: "Events", count: int, batch_size: int = 1000) -> None:
    """A bank that has been live a while: `count` events posted before the measures (as
    batches, through the API's own `event_ingest`), their notifications delivered as the
    workers would have (nothing is sent: their state is set), and the same number of rows
    in the bare insert's table. Then ANALYZE.

    Measuring on empty tables measures something production never runs: plans cached by
    a connection while a table is nearly empty, the foreign-key checks' among them, keep
    scanning the whole table as it grows, so the cost of each post would grow with the
    number of events posted before it in the run.
    """
    from bench.api_urls import BARE_TABLE
    from notifications.services import event_ingest
    from portal.audit import Actor
    from portal.models import Bank

    bank = Bank.objects.get(slug="bench")
    actor = Actor.system("benchmark history")
    for start in range(0, count, batch_size):
        batch = [events.next() for _ in range(min(batch_size, count - start))]
        report = event_ingest(actor=actor, bank=bank, events=batch)
        if report.count("accepted") != len(batch):
            raise SystemExit(f"the history was not accepted: {report.as_dict()['results'][:3]}")
    delivered_mark()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {BARE_TABLE} (body, received_at) "  # noqa: S608 - a fixed name
            "SELECT '{}'::jsonb, now() FROM generate_series(1, %s)",
            [count],
        )
    statistics_refresh()


def delivered_mark() -> None:
    """Every open notification marked delivered, as if the workers had sent it (nothing is
    sent): a history's, whose sending is not what is measured."""
    from notifications.models import Notification

    now = timezone.now()
    Notification.objects.filter(state__in=Notification.OPEN).update(
        state=Notification.State.DELIVERED, sent_at=now, finished_at=now
    )


class Events:
    """New events for the bench customers, cycling through every event type."""

    def __init__(self, customers: int) -> None:
        from notifications.api.schemas import EXAMPLE_EVENTS

        self.templates = [json.loads(json.dumps(e)) for e in EXAMPLE_EVENTS.values()]
        self.customers = customers
        self.n = 0

    def next(self) -> dict:
        self.n += 1
        template = self.templates[self.n % len(self.templates)]
        return {
            **template,
            "id": f"bench-{self.n}",
            "customer_id": f"cu-{self.n % self.customers}",
            "account_id": "visa",
        }


# --- gunicorn -------------------------------------------------------------------------


class Server:
    def __init__(
        self, database: str, workers: int, threads: int, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.log = Path(tempfile.mkdtemp(prefix="bankside-bench-api-")) / "gunicorn.log"
        self.output = self.log.open("w")
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                sys.executable,
                "-m",
                "gunicorn",
                "bankside.wsgi:application",
                "--bind",
                f"{HOST}:{self.port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--access-logfile",
                "-",
                "--forwarded-allow-ips",
                "*",
                "--no-control-socket",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "bench.api_settings",
                "BENCH_DATABASE_NAME": database,
                "BENCH_QUEUE": QUEUE,
                "PYTHONPATH": str(ROOT),
                **(env or {}),
            },
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited; see {self.log}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"gunicorn did not start; see {self.log}")

    def close(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        self.output.close()
        shutil.rmtree(self.log.parent, ignore_errors=True)


# --- the load generator ---------------------------------------------------------------


def http_request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {HOST}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "X-Forwarded-Proto: https",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One HTTP/1.1 connection, reopened whenever the server closes it (gunicorn's sync
    workers close after each response, its threaded ones a connection left idle for
    its keep-alive time)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        if self.reader is not None and self.reader.at_eof():  # closed while idle (keep-alive)
            self.writer.close()
            self.reader = self.writer = None
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.writer.close()
            self.reader = self.writer = None
        return int(status_line.split(" ")[1]), body


async def drive(port: int, requests: list[bytes], concurrency: int, expect: int):
    """Send `requests` with `concurrency` in flight; returns (wall seconds, latencies)."""
    pending = iter(requests)
    latencies: list[float] = []

    async def client() -> None:
        connection_ = Connection(port)
        for raw in pending:
            started = time.perf_counter()
            status, body = await connection_.send(raw)
            latencies.append(time.perf_counter() - started)
            if status != expect:
                raise SystemExit(f"unexpected {status}: {body[:500]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


async def drive_paced(
    port: int, requests: list[bytes], rate: float, expect: int, connections: int
) -> tuple[float, list[float]]:
    """Send `requests` at `rate` a second on average, whatever the answers do (an open
    loop: the arrivals of a Poisson process, seeded, so every run offers the same
    sequence), over at most `connections` connections; returns (wall seconds, latencies).

    A request's latency runs from the moment it was due, not from when it was sent: one
    that waits for a free connection because the server is behind counts that wait, as
    the caller it stands for would.
    """
    arrivals = random.Random(len(requests))  # noqa: S311 - arrival times, not secrets
    idle: list[Connection] = []
    opened = 0
    freed = asyncio.Condition()
    latencies: list[float] = []

    async def one(raw: bytes, due: float) -> None:
        nonlocal opened
        async with freed:
            while not idle and opened >= connections:
                await freed.wait()
            if idle:  # the one idle longest: none sits out the server's keep-alive
                connection_ = idle.pop(0)
            else:
                opened += 1
                connection_ = Connection(port)
        status, body = await connection_.send(raw)
        latencies.append(time.perf_counter() - due)
        async with freed:
            idle.append(connection_)
            freed.notify()
        if status != expect:
            raise SystemExit(f"unexpected {status}: {body[:500]!r}")

    started = due = time.perf_counter()
    sent = []
    for raw in requests:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        sent.append(asyncio.create_task(one(raw, due)))
        due += arrivals.expovariate(rate)
    await asyncio.gather(*sent)
    return time.perf_counter() - started, latencies


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def server_pids(server: "Server") -> tuple[list[int], list[int]]:
    """gunicorn's master and workers; the PostgreSQL backends serving them (autovacuum,
    which the writes also cause, is not counted)."""
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        backends = [pid for (pid,) in cursor.fetchall()]
    return [server.process.pid, *map(int, children.read_text().split())], backends


@dataclass
class Figures:
    wall: float
    latencies: list[float]
    app_cpu: float  # gunicorn, seconds
    db_cpu: float  # PostgreSQL
    generator_cpu: float

    @classmethod
    def none(cls) -> "Figures":
        """The figures of no request: what a load's runs are added to."""
        return cls(wall=0.0, latencies=[], app_cpu=0.0, db_cpu=0.0, generator_cpu=0.0)

    def __add__(self, other: "Figures") -> "Figures":
        """Two runs of one load taken together."""
        return Figures(
            wall=self.wall + other.wall,
            latencies=self.latencies + other.latencies,
            app_cpu=self.app_cpu + other.app_cpu,
            db_cpu=self.db_cpu + other.db_cpu,
            generator_cpu=self.generator_cpu + other.generator_cpu,
        )


def measure(server: "Server", requests: list[bytes], concurrency: int, expect: int) -> Figures:
    statistics_refresh()
    return _measured(server_pids(server), drive(server.port, requests, concurrency, expect))


def _measured(
    pids: tuple[list[int], list[int]], driven: Coroutine[Any, Any, tuple[float, list[float]]]
) -> Figures:
    """The requests `driven` sends (`drive`, `drive_paced`), with the CPU the processes
    `pids` (gunicorn's, PostgreSQL's) and the load generator spent meanwhile."""
    app, db = pids
    app_before, db_before = cpu_seconds(app), cpu_seconds(db)
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall, latencies = asyncio.run(driven)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return Figures(
        wall=wall,
        latencies=latencies,
        app_cpu=cpu_seconds(app) - app_before,
        db_cpu=cpu_seconds(db) - db_before,
        generator_cpu=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    )


@dataclass
class Load:
    """One of a round's loads: its requests, how many go in flight, the answer each gets,
    and how many events each request carries."""

    label: str
    requests: list[bytes]
    concurrency: int
    expect: int
    events_each: int = 1

    @property
    def events(self) -> int:
        return len(self.requests) * self.events_each


def measure_in_turns(server: "Server", loads: list[Load], slices: int) -> list[Figures]:
    """`measure` of each load, the loads taking turns slice by slice (the order reversed
    every other slice), so that a change in the machine's speed falls on each alike; the
    figures of a load's slices summed."""
    statistics_refresh()
    pids = server_pids(server)
    totals = [Figures.none() for _ in loads]
    for turn in range(slices):
        order = list(range(len(loads)))
        for n in order if turn % 2 == 0 else order[::-1]:
            load = loads[n]
            size = -(-len(load.requests) // slices)
            requests = load.requests[turn * size : (turn + 1) * size]
            if requests:
                totals[n] += _measured(
                    pids, drive(server.port, requests, load.concurrency, load.expect)
                )
    return totals


# The loads whose requests carry one event each, whose latencies compare with the bare
# insert's (a batch's request carries a thousand).
LATENCY_LOADS = ("single event", "bare DRF", "round trips")


def against_bare(figure: dict[str, float], labels: tuple[str, ...] | None = None) -> str:
    """Each load's figure (its rate, its p99) as a multiple of the bare insert's; of the
    loads `labels` only, where given."""
    bare = figure["bare DRF"]
    return ", ".join(
        f"{label} {value / bare:.2f}x"
        for label, value in figure.items()
        if label != "bare DRF" and (labels is None or label in labels)
    )


def report(label: str, events: int, figures: Figures) -> None:
    latencies = figures.latencies
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    print(
        f"  {label:<13} {events / figures.wall:7.0f} events/s   "
        f"p50 {p50:7.1f} ms   p99 {p99:7.1f} ms per request"
    )
    print(
        f"  {'':<13} CPU per event: gunicorn {figures.app_cpu / events * 1000:.2f} ms, "
        f"PostgreSQL {figures.db_cpu / events * 1000:.2f} ms; load generator CPU "
        f"{figures.generator_cpu / figures.wall:4.0%}; {load_average()}"
    )


def run(args, database: str) -> None:
    secret = setup_bank(args.customers)
    events = Events(args.customers)
    history_seed(events, args.history)
    connection.close()
    auth = {"Authorization": f"Bearer {secret}"}

    def singles(count: int) -> list[bytes]:
        return [
            http_request("/api/v1/events", json.dumps(events.next()).encode(), auth)
            for _ in range(count)
        ]

    def batches(count: int) -> list[bytes]:
        return [
            http_request(
                "/api/v1/events",
                json.dumps({"events": [events.next() for _ in range(args.batch_size)]}).encode(),
                auth,
            )
            for _ in range(count)
        ]

    def bare(count: int, path: str = "/api/bench/bare-insert") -> list[bytes]:
        return [http_request(path, json.dumps(events.next()).encode(), {}) for _ in range(count)]

    server = Server(database, args.workers, args.threads)
    try:
        print(
            f"gunicorn: {args.workers} workers of {args.threads} threads "
            f"({'sync' if args.threads == 1 else 'gthread'}), production settings; PostgreSQL "
            f"database {database}; {os.cpu_count()} CPUs; {load_average()}"
        )
        # Warm-up: every worker imports, connects and fills its caches.
        measure(server, singles(400), args.concurrency, 202)
        measure(server, bare(400), args.concurrency, 201)
        measure(server, bare(400, "/api/bench/round-trips-only"), args.concurrency, 201)
        measure(server, batches(4), args.batch_concurrency, 202)

        together: dict[str, tuple[int, Figures]] = {}  # label: events, figures of all rounds
        paced = Figures.none()  # the paced single events of all rounds
        offered_each = 0.0  # the rate each of them was offered at, summed
        for round_ in range(1, args.repeat + 1):
            print(f"\nRound {round_} of {args.repeat} ({args.slices} slices each, in turns)")
            loads = [
                Load("single event", singles(args.singles), args.concurrency, 202),
                Load(
                    f"batch of {args.batch_size}",
                    batches(args.batches),
                    args.batch_concurrency,
                    202,
                    events_each=args.batch_size,
                ),
                Load("bare DRF", bare(args.singles), args.concurrency, 201),
                Load(
                    "round trips",
                    bare(args.singles, "/api/bench/round-trips-only"),
                    args.concurrency,
                    201,
                ),
            ]
            rate, p99 = {}, {}
            for load, figures in zip(
                loads, measure_in_turns(server, loads, args.slices), strict=True
            ):
                report(load.label, load.events, figures)
                rate[load.label] = load.events / figures.wall
                p99[load.label] = percentile(figures.latencies, 0.99)
                counted, so_far = together.get(load.label, (0, Figures.none()))
                together[load.label] = (counted + load.events, so_far + figures)
            print(f"  against the bare insert: {against_bare(rate)}")
            print(f"  p99 against the bare insert's: {against_bare(p99, LATENCY_LOADS)}")
            offered = args.paced_share * rate["bare DRF"]
            requests = singles(args.paced)
            figures = _measured(
                server_pids(server),
                drive_paced(server.port, requests, offered, 202, args.paced_connections),
            )
            print(
                f"  single events offered at {args.paced_share:g}x the bare insert's rate, "
                f"{offered:.0f}/s (open loop, up to {args.paced_connections} connections):"
            )
            report("paced single", len(requests), figures)
            paced += figures
            offered_each += offered * len(requests)
            print(
                "  p99 against the bare insert's: "
                f"{percentile(figures.latencies, 0.99) / p99['bare DRF']:.2f}x"
            )
        if args.repeat > 1:
            print(
                f"\nAll {args.repeat} rounds together, against the bare insert: "
                + against_bare(
                    {label: counted / all_.wall for label, (counted, all_) in together.items()}
                )
            )
            print(
                f"All {args.repeat} rounds together, p99 against the bare insert's: "
                + against_bare(
                    {
                        label: percentile(together[label][1].latencies, 0.99)
                        for label in LATENCY_LOADS
                    },
                    LATENCY_LOADS,
                )
            )
        sent = len(paced.latencies)
        paced_p99 = percentile(paced.latencies, 0.99)
        bare_p99 = percentile(together["bare DRF"][1].latencies, 0.99)
        print(
            f"Single events offered at {args.paced_share:g}x the bare insert's rate, all rounds: "
            f"{sent / paced.wall:.0f} events/s of {offered_each / sent:.0f}/s offered, "
            f"p50 {percentile(paced.latencies, 0.5) * 1000:.1f} ms, "
            f"p99 {paced_p99 * 1000:.1f} ms ({paced_p99 / bare_p99:.2f}x the bare insert's, "
            f"{bare_p99 * 1000:.1f} ms), max {max(paced.latencies) * 1000:.1f} ms"
        )
    finally:
        server.close()
    from notifications.models import Event, Notification

    print(
        f"\nthe API stored {Event.objects.count()} events and "
        f"{Notification.objects.count()} notifications (one per event posted to it, "
        f"{args.history} of each before the measures)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--singles", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-concurrency", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--slices", type=int, default=5, help="turns each load's requests are split into"
    )
    parser.add_argument(
        "--history", type=int, default=20_000, help="events posted before the measures"
    )
    parser.add_argument(
        "--paced", type=int, default=2000, help="single events offered at a set rate a round"
    )
    parser.add_argument(
        "--paced-share",
        type=float,
        default=0.6,
        help="their rate, as a share of the round's bare insert rate",
    )
    parser.add_argument("--paced-connections", type=int, default=64)
    args = parser.parse_args()
    if args.history < 0:
        parser.error("--history cannot be negative")
    if args.paced < 1 or args.paced_connections < 1 or not 0 < args.paced_share <= 10:
        parser.error("--paced and --paced-connections take 1 or more, --paced-share 0 to 10")
    if args.workers < 1 or args.threads < 1:
        parser.error("--workers and --threads take 1 or more")
    # A slice of batches holds two waves of them at least: a slice ends waiting for its
    # last batch, with fewer in flight, and a batch takes a few hundred milliseconds.
    most = min(args.singles // args.concurrency, args.batches // (2 * args.batch_concurrency))
    if not 1 <= args.slices <= most:
        parser.error(
            f"--slices takes 1 to {most} here: a slice holds --concurrency single events "
            "and twice --batch-concurrency batches at least"
        )

    database = settings.DATABASES["default"]
    if database["ENGINE"] != settings.POSTGRESQL_ENGINE:
        raise SystemExit("The benchmark runs against PostgreSQL: set DATABASE_URL=postgres://…")
    database["TEST"] = {**database.get("TEST", {}), "NAME": f"{database['NAME']}_bench_api"}
    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    print(f"bankside API benchmark on PostgreSQL database {name}")
    try:
        run(args, name)
    finally:
        connection.close()
        connection.creation.destroy_test_db(name, verbosity=0)
        _purge_queue()


def _purge_queue() -> None:
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(QUEUE)


if __name__ == "__main__":
    main()
