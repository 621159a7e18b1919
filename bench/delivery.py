"""Benchmark: delivery by real Celery workers to a fake Send API on this machine.

Run with `make bench` (after the ingest benchmark). It creates its own database
(`<DATABASE_URL's name>_bench_delivery`), starts a minimal fake Send API
(bench/fake_send_api.py) and Celery worker processes (bench/delivery_settings.py), prints
the figures and cleans up. Figures only: nothing here asserts a time.

1. Throughput: the outbox is loaded with `--people` x `--per-person` notifications on each
   of `--pages` Pages (rate limits set high), then two worker processes drain it.
2. Latency: events posted through the API at `--rate` events/s for `--seconds`, with the
   workers running; event accepted (stored) -> Send API call arrives, p50/p99.
3. The limit holds: one Page limited to 300 calls/s, three worker processes; the busiest
   one-second window of calls the fake Send API saw.
4. At the Graph API's pace: the same Page against a fake Send API that answers each call
   `--answer-ms` late (200 ms by default), with each of `--paced-workers` worker process
   counts: the calls per second each reaches, against what its calls in flight allow.

After the throughput part it reports the bytes PostgreSQL keeps per delivered
notification (`storage`): what every table grew by during that part (rows, indexes and
TOAST; a partitioned table as the sum of its partitions), divided by the notifications
sent.

    python bench/delivery.py [--pages 4] [--people 1000] [--per-person 5]
                             [--rate 300] [--seconds 60] [--skip-latency] [--skip-limit]
                             [--answer-ms 200] [--paced-workers 2,4] [--skip-paced]
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankside.settings.test")

import django  # noqa: E402

django.setup()

QUEUE = f"bench-delivery-{os.getpid()}"
PAGE_PREFIX = "90000000"

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that have exited… and live ones."""
    total = 0.0
    for proc in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    return [int(child) for child in found for child in [child]] + [
        grandchild for child in found for grandchild in _children(int(child))
    ]


class DatabaseCpu:
    """CPU of the PostgreSQL backends serving the benchmark's database, sampled while the
    workers run (backends come and go with the workers' connections)."""

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def sample(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            pids = [pid for (pid,) in cursor.fetchall()]
        for pid in pids:
            try:
                value = cpu_seconds(pid)
            except (OSError, IndexError):
                continue
            self.first.setdefault(pid, value)
            self.last[pid] = value

    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def redis_cpu_seconds() -> float:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() == "redis-server":
                    return cpu_seconds(int(proc.name))
            except OSError:
                continue
    return 0.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Machine:
    """The fake Send API and the Celery workers, as subprocesses."""

    def __init__(self, database: str) -> None:
        self.port = free_port()
        self.log = Path(tempfile.mkdtemp(prefix="bankside-bench-")) / "calls.log"
        self.database = database
        self.api = self._api(self.port, self.log)
        self.slow_apis: list[subprocess.Popen] = []
        self.workers: subprocess.Popen | None = None
        self.urgent_workers: subprocess.Popen | None = None
        time.sleep(0.5)

    @staticmethod
    def _api(port: int, log: Path, *options: str) -> subprocess.Popen:
        return subprocess.Popen(  # noqa: S603 - fixed argv
            [
                sys.executable,
                str(ROOT / "bench" / "fake_send_api.py"),
                str(port),
                str(log),
                *options,
            ]
        )

    def slow_api(self, answer_ms: float) -> tuple[str, Path]:
        """Another fake Send API, answering every call `answer_ms` late: its URL and log
        (for `calls`). Workers are pointed at it with `BENCH_GRAPH_API_URL`."""
        port = free_port()
        log = self.log.with_name(f"calls-{answer_ms:g}ms-{len(self.slow_apis)}.log")
        self.slow_apis.append(self._api(port, log, "--answer-ms", str(answer_ms)))
        time.sleep(0.5)
        return f"http://127.0.0.1:{port}", log

    def start_workers(self, processes: int, *, urgent_processes: int = 0, **env: str) -> None:
        """`processes` Celery worker processes on every queue; with `urgent_processes`,
        those many more in a worker of their own on the urgent queue only, and the first
        ones on every other queue (production's `worker-urgent` beside the others)."""
        from bankside.celery import app, queue_name, queue_names
        from notifications.services import deliveries_nudge_taken

        app.control.purge()  # the benchmark's own queue only (see QUEUE)
        deliveries_nudge_taken()  # the purged nudges are no longer pending
        urgent = queue_name(QUEUE, "urgent")
        others = [name for name in queue_names(QUEUE) if name != urgent]
        self.workers = self._worker(processes, "bench", others if urgent_processes else None, env)
        if urgent_processes:
            self.urgent_workers = self._worker(urgent_processes, "benchurgent", [urgent], env)
        expected = 2 if urgent_processes else 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if len(app.control.ping(timeout=0.5) or []) >= expected:
                return
        raise SystemExit("the Celery workers did not start")

    def _worker(
        self, processes: int, name: str, queues: list[str] | None, env: dict[str, str]
    ) -> subprocess.Popen:
        return subprocess.Popen(  # noqa: S603 - fixed argv
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bankside",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(processes),
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--hostname",
                f"{name}{os.getpid()}@%h",
                *(["--queues", ",".join(queues)] if queues else []),
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "bench.delivery_settings",
                "BENCH_DATABASE_NAME": self.database,
                "BENCH_GRAPH_API_URL": f"http://127.0.0.1:{self.port}",
                "PYTHONPATH": str(ROOT),
                "BENCH_QUEUE": QUEUE,
                "LOG_LEVEL": "WARNING",
                **env,
            },
        )

    def stop_workers(self) -> None:
        for workers in (self.workers, self.urgent_workers):
            if workers is not None:
                workers.send_signal(signal.SIGTERM)
                workers.wait(30)
        self.workers = self.urgent_workers = None

    def calls(self, log: Path | None = None) -> list[tuple[float, str, str]]:
        time.sleep(0.7)  # the fake API flushes its log every half second
        rows = []
        for line in (log or self.log).read_text().splitlines():
            moment, page, mark = line.split(" ")[:3]
            rows.append((float(moment), page, mark))
        return rows

    def close(self) -> None:
        self.stop_workers()
        for api in (self.api, *self.slow_apis):
            api.send_signal(signal.SIGTERM)
            api.wait(10)

    @classmethod
    @contextmanager
    def running(cls, bench: str, title: str, *, page_prefix: str) -> Iterator["Machine"]:
        """A database of the benchmark's own, the fake Send API and room for workers.

        The database is `<DATABASE_URL's name>_bench_<bench>`, created empty and dropped
        on the way out; the Page buckets of Pages starting with `page_prefix` are
        forgotten, so a run never inherits the last one's calls.
        """
        database = settings.DATABASES["default"]
        if database["ENGINE"] != settings.POSTGRESQL_ENGINE:
            raise SystemExit("The benchmark runs against PostgreSQL: set DATABASE_URL=postgres://…")
        if not settings.REDIS_URL:
            raise SystemExit(
                "The benchmark needs Redis (REDIS_URL) for the broker and the buckets."
            )
        database["CONN_MAX_AGE"] = 60
        database["TEST"] = {**database.get("TEST", {}), "NAME": f"{database['NAME']}_bench_{bench}"}
        setup_test_environment()
        settings.DEBUG = False
        from bankside.celery import app

        app.conf.task_default_queue = QUEUE
        # The queues are read once per process (`AllQueuesAMQP`): read them again, so that
        # purging before the workers start empties this benchmark's queues, whatever ran
        # earlier in the process.
        app.amqp.__dict__.pop("queues", None)
        name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        forget_page_buckets(page_prefix)
        print(f"bankside {title} benchmark on PostgreSQL database {name}, {os.cpu_count()} CPUs")
        machine = cls(name)
        try:
            yield machine
        finally:
            machine.close()
            connection.close()
            connection.creation.destroy_test_db(name, verbosity=0)


def setup_pages(pages: int, people: int) -> list:
    """`pages` banks, each live on its own Page with `people` linked customers."""
    from bench.people import bank_on_page

    return [
        bank_on_page(
            f"bench-{p}",
            f"{PAGE_PREFIX}{p}",
            people,
            scopes=["fraud_alerts", "transactions"],
            psid=lambda n, p=p: f"{p + 1}{n:09d}",
            purpose="bench",
        )
        for p in range(pages)
    ]


_marks = iter(range(1, 10**9))


def event(n: int, kind: str = "fraud.alert") -> tuple[str, dict]:
    from notifications.api.schemas import EXAMPLE_EVENTS

    mark = f"bench-{next(_marks)}"
    payload = json.loads(json.dumps(EXAMPLE_EVENTS[kind]))
    payload.update(id=mark, customer_id=f"cu-{n}", account_id="visa")
    payload["data"]["merchant"] = mark
    return mark, payload


def load(banks: list, people: int, per_person: int) -> int:
    from notifications.services import event_ingest
    from portal.audit import Actor

    actor = Actor.system("benchmark")
    total = 0
    for bank in banks:
        events = [event(n)[1] for _ in range(per_person) for n in range(people)]
        for start in range(0, len(events), 1000):
            report = event_ingest(actor=actor, bank=bank, events=events[start : start + 1000])
            total += report.count("accepted")
    # Planner statistics for the freshly filled outbox, as autovacuum keeps them in a
    # running system (without them the first claims plan for an empty table).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return total


def sent_count() -> int:
    from notifications.models import Notification

    return Notification.objects.filter(state__in=Notification.SENT_STATES).count()


def open_left(**filters) -> bool:
    """Whether anything is still pending or in flight (a cheap, indexed question)."""
    from notifications.models import Notification

    return Notification.objects.filter(
        state__in=[Notification.State.PENDING, Notification.State.IN_FLIGHT], **filters
    ).exists()


def drain(expected: int, timeout: float = 600, database: DatabaseCpu | None = None) -> float:
    from notifications.tasks import deliver_due

    started = time.monotonic()
    for _ in range(4):
        deliver_due.delay()
    deadline = started + timeout
    while open_left():
        if time.monotonic() > deadline:
            raise SystemExit(f"only {sent_count()} of {expected} sent after {timeout:.0f} s")
        if database is not None:
            database.sample()
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    if sent_count() < expected:
        raise SystemExit(f"only {sent_count()} of {expected} were sent")
    return elapsed


def table_bytes() -> dict[str, int]:
    """Every table's size with its indexes and TOAST, a partitioned one as the sum of its
    partitions (its own relation holds nothing)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(pg_partition_root(c.oid), c.oid)::regclass::text,"
            " sum(pg_total_relation_size(c.oid))::bigint"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' GROUP BY 1"
        )
        return dict(cursor.fetchall())


def storage(before: dict[str, int], delivered: int) -> None:
    """What each table grew by since `before`, per delivered notification: as written
    (with the dead row versions the run's updates left, which autovacuum lets later rows
    reuse), and compacted (after VACUUM FULL: the live rows and their indexes, what a
    table holds per notification in the long run). The database is the benchmark's own."""
    written = table_bytes()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM FULL")
    compacted = table_bytes()
    grown = {table: written[table] - before.get(table, 0) for table in written}
    print(f"\nStorage: bytes per delivered notification ({delivered} delivered)")
    print(f"  {'table':42s} {'written':>8s} {'compacted':>10s}")
    total = [0, 0]
    for table, size in sorted(grown.items(), key=lambda item: -item[1]):
        if size <= 0:
            continue
        kept = max(0, compacted[table] - before.get(table, 0))
        total[0], total[1] = total[0] + size, total[1] + kept
        print(f"  {table:42s} {size / delivered:8.0f} {kept / delivered:10.0f}")
    print(f"  {'all tables':42s} {total[0] / delivered:8.0f} {total[1] / delivered:10.0f}")


def throughput(machine: Machine, banks: list, people: int, per_person: int) -> None:
    sizes = table_bytes()
    total = load(banks, people, per_person)
    machine.start_workers(2)
    time.sleep(1)  # let the workers open their database connections
    before = (cpu_seconds(machine.workers.pid), cpu_seconds(machine.api.pid), redis_cpu_seconds())
    sampler = DatabaseCpu()
    sampler.sample()
    elapsed = drain(total, database=sampler)
    database = sampler.seconds()
    workers, api, redis_cpu = (
        cpu_seconds(machine.workers.pid) - before[0],
        cpu_seconds(machine.api.pid) - before[1],
        redis_cpu_seconds() - before[2],
    )
    calls = machine.calls()
    first, last = calls[0][0], calls[-1][0]
    print(f"\nThroughput: {total} notifications, {len(banks)} Pages, 2 worker processes")
    print(f"  drained in      {elapsed:10.2f} s (nudge -> all recorded sent)")
    print(f"  delivered       {total / elapsed:10.0f} messages/s")
    print(f"  Send API calls  {len(calls) / max(1e-9, last - first):10.0f} calls/s (first to last)")
    per = 1e6 / total
    print(
        f"  CPU per message {(workers + api + database + redis_cpu) * per:10.0f} us: workers "
        f"{workers * per:.0f}, PostgreSQL {database * per:.0f}, Redis {redis_cpu * per:.0f}, "
        f"fake Send API {api * per:.0f}"
    )

    storage(sizes, sent_count())


def latency(machine: Machine, banks: list, people: int, rate: float, seconds: float) -> None:
    from notifications.models import Event
    from portal.audit import Actor
    from portal.services.api_settings import api_key_rate_limit_set
    from portal.tests.factories import api_key_for

    issued = api_key_for(banks[0], name="Benchmark")
    api_key_rate_limit_set(
        actor=Actor.system("benchmark"), api_key=issued.api_key, per_second=1e6, burst=10**6
    )
    client = Client()
    batch = max(1, round(rate / 20))  # a post every 50 ms
    interval = batch / rate
    marks: list[str] = []
    started = time.monotonic()
    n = 0
    behind = 0
    while time.monotonic() - started < seconds:
        due = started + len(marks) / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        elif pause < -interval:
            behind += 1
        events = []
        for _ in range(batch):
            mark, payload = event(n % people)
            payload["id"] = mark
            marks.append(mark)
            events.append(payload)
            n += 1
        response = client.post(
            "/api/v1/events",
            json.dumps({"events": events}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {issued.secret}",
        )
        if response.status_code != 202:
            raise SystemExit(f"unexpected {response.status_code}: {response.content[:300]!r}")
    posted = time.monotonic() - started
    deadline = time.monotonic() + 120
    while open_left() and time.monotonic() < deadline:
        time.sleep(0.2)
    accepted = dict(Event.objects.filter(event_id__in=marks).values_list("event_id", "received_at"))
    arrived = {mark: moment for moment, _, mark in machine.calls() if mark in accepted}
    latencies = [arrived[mark] - accepted[mark].timestamp() for mark in marks if mark in arrived]
    print(
        f"\nLatency: {len(marks)} events posted at {len(marks) / posted:.0f}/s for {posted:.0f} s"
    )
    print(f"  reached the Send API  {len(latencies):6d} of {len(marks)}")
    print(f"  p50                   {percentile(latencies, 0.5) * 1000:8.1f} ms (accepted -> call)")
    print(f"  p99                   {percentile(latencies, 0.99) * 1000:8.1f} ms")
    print(f"  max                   {max(latencies) * 1000:8.1f} ms")
    if behind:
        print(f"  (the poster fell behind its schedule {behind} times)")


def page_drained(
    machine: Machine,
    bank,
    people: int,
    per_person: int,
    processes: int,
    *,
    timeout: float,
    log: Path | None = None,
    **env: str,
) -> tuple[int, float, list[float]]:
    """Load `bank`'s Page, limited to 300 calls/s, and drain it with `processes` worker
    processes (`env` for their settings; `log`: the fake Send API whose calls to read).
    Returns the messages loaded, the seconds the drain took and the moments of the Page's
    calls. Digests off: this measures the Page's bucket, one message per notification."""
    from notifications.tasks import deliver_due

    machine.stop_workers()
    page = bank.integration.page_id
    total = load([bank], people, per_person)
    skip = len(machine.calls(log))
    machine.start_workers(
        processes,
        BENCH_PAGE_RATE_LIMITS=json.dumps({page: 300}),
        NOTIFICATIONS_DIGESTS="false",
        **env,
    )
    started = time.monotonic()
    for _ in range(processes):
        deliver_due.delay()
    while open_left(bank=bank):
        time.sleep(0.05)
        if time.monotonic() - started > timeout:
            raise SystemExit(f"the Page limited to 300 calls/s did not drain in {timeout:.0f} s")
    elapsed = time.monotonic() - started
    moments = sorted(m for m, p, _ in machine.calls(log)[skip:] if p == page)
    return total, elapsed, moments


def limit(machine: Machine, bank, people: int, per_person: int) -> None:
    total, elapsed, moments = page_drained(machine, bank, people, per_person, 3, timeout=300)
    busiest = max(bisect_left(moments, m + 1.0) - i for i, m in enumerate(moments))
    print(f"\nThe limit holds: one Page at 300 calls/s, 3 worker processes, {total} messages")
    print(f"  sent in         {elapsed:10.2f} s ({total / elapsed:.0f}/s)")
    print(f"  busiest second  {busiest:10d} calls (limit 300)")


def paced(
    machine: Machine, bank, people: int, per_person: int, answer_ms: float, processes: list[int]
) -> None:
    """One Page at 300 calls/s against a Send API that answers each call `answer_ms` late,
    as the Graph API takes its time: the rate each number of worker processes reaches.

    A process has `NOTIFICATIONS_SEND_CONCURRENCY` calls in flight at most, so it can send
    that many per answer time; this shows how many processes a Page's rate needs."""
    url, log = machine.slow_api(answer_ms)
    threads = settings.NOTIFICATIONS_SEND_CONCURRENCY
    print(
        f"\nAt the Graph API's pace: one Page at 300 calls/s, the Send API answering in "
        f"{answer_ms:g} ms, {threads} calls in flight per process"
    )
    for count in processes:
        total, _, moments = page_drained(
            machine, bank, people, per_person, count, timeout=600, log=log, BENCH_GRAPH_API_URL=url
        )
        # The rate while every process was sending: from the first second to the last.
        steady = [m for m in moments if moments[0] + 1 <= m <= moments[-1] - 1] if moments else []
        rate = len(steady) / max(1e-9, steady[-1] - steady[0]) if len(steady) > 1 else 0.0
        ceiling = count * threads / (answer_ms / 1000)
        print(
            f"  {count} worker process{'es' if count > 1 else '  '}  {rate:6.0f} calls/s  "
            f"(at most {min(300, ceiling):.0f}: {count} x {threads} calls per "
            f"{answer_ms:g} ms, and the Page's 300)  {total} messages"
        )


def forget_page_buckets(page_prefix: str) -> None:
    import redis

    from notifications.page_limits import KEY_PREFIX

    client = redis.Redis.from_url(settings.NOTIFICATIONS_REDIS_URL or settings.REDIS_URL)
    for key in client.scan_iter(f"{KEY_PREFIX}{page_prefix}*"):
        client.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--per-person", type=int, default=5)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-limit", action="store_true")
    parser.add_argument(
        "--answer-ms", type=float, default=200, help="the slow Send API's answer time"
    )
    parser.add_argument(
        "--paced-workers", default="2,4", help="worker process counts against the slow Send API"
    )
    parser.add_argument("--skip-paced", action="store_true")
    args = parser.parse_args()
    try:
        paced_workers = [int(n) for n in args.paced_workers.split(",")]
    except ValueError:
        parser.error("--paced-workers takes counts separated by commas, such as 2,4")
    if not all(1 <= n <= 32 for n in paced_workers):
        parser.error("--paced-workers takes counts from 1 to 32")
    if not 1 <= args.answer_ms <= 10_000:
        parser.error("--answer-ms takes 1 to 10000 milliseconds")

    with Machine.running("delivery", "delivery", page_prefix=PAGE_PREFIX) as machine:
        banks = setup_pages(args.pages, args.people)
        throughput(machine, banks, args.people, args.per_person)
        if not args.skip_latency:
            latency(machine, banks, args.people, args.rate, args.seconds)
        if not args.skip_limit:
            limit(machine, banks[-1], args.people, 3)
        if not args.skip_paced:
            paced(machine, banks[-1], args.people, 3, args.answer_ms, paced_workers)


if __name__ == "__main__":
    main()
