"""Chaos run: delivery keeps its promises while workers die, Redis loses everything and the
Send API fails a fifth of the calls.

Run with `make chaos` (`CHAOS_ARGS` passes options). It creates its own database
(`<DATABASE_URL's name>_chaos_<pid>`) and starts, all on this machine:

- a private Redis (`redis-server` on a free port, no persistence) for the broker and the
  Page buckets, so that restarting it disturbs nothing else;
- the minimal fake Send API (bench/fake_send_api.py), failing `--transient` of the calls
  with transient errors and throttling each Page for a moment every few seconds;
- `--workers` real Celery worker processes and Celery beat (the outbox sweeper).

Then it posts `--events` fraud alerts to `--customers` linked customers on `--pages` Pages
through the events API (`POST /api/v1/events`, retried on any failure as a core-banking
system would), in order per customer. While delivery runs it kills a busy worker process
with SIGKILL `--kills` times and restarts Redis with its data gone `--redis-restarts`
times, spread over the run. When nothing is left to send, it reads the fake Send API's
record of calls and prints the tally:

- expected notifications (one per accepted event), sent, missing: must be 0;
- per-recipient order violations (a message that reached a person before an earlier one
  did): must be 0;
- duplicates (a message that reached the platform twice);
- uncertain sends the engine detected: a message whose worker died after handing it to
  the Send API and before recording the answer is flagged `uncertain`, its lost attempt
  recorded, and waits for its echo; this run posts no echoes yet, so after the wait
  (half a lease) it is resent once, flagged `resent`. Every duplicate must be one of
  these, and the workers found lost mid-send must be no more than the kills.

It exits non-zero if an invariant fails. `--json PATH` also writes the tally as JSON.

    python bench/chaos.py [--events 10000] [--customers 1000] [--pages 3] [--kills 2]
                          [--redis-restarts 1] [--transient 0.19] [--workers 2]
"""

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
QUEUE = f"chaos-{os.getpid()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


class PrivateRedis:
    """A redis-server of the run's own, without persistence: a restart loses every key."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="bankside-chaos-redis-")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise SystemExit("The chaos run needs redis-server (Debian: apt-get install redis)")
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise SystemExit("the private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--redis-restarts", type=int, default=1)
    parser.add_argument("--transient", type=float, default=0.19, help="share of calls failed")
    parser.add_argument("--throttle-every", type=float, default=4.0)
    parser.add_argument("--throttle-for", type=float, default=0.25)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--rate", type=float, default=500, help="events posted per second")
    parser.add_argument("--lease", type=float, default=10.0, help="lease seconds")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the tally here")
    args = parser.parse_args(argv)
    if args.customers < args.pages or args.events < args.customers:
        parser.error("need at least one customer per Page and one event per customer")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    redis_server = PrivateRedis()
    redis_server.start()
    os.environ["REDIS_URL"] = redis_server.url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankside.settings.test")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    database = settings.DATABASES["default"]
    if database["ENGINE"] != settings.POSTGRESQL_ENGINE:
        raise SystemExit("The chaos run needs PostgreSQL: set DATABASE_URL=postgres://…")
    database["CONN_MAX_AGE"] = 60
    test_name = f"{database['NAME']}_chaos_{os.getpid()}"
    database["TEST"] = {**database.get("TEST", {}), "NAME": test_name}
    setup_test_environment()
    settings.DEBUG = False
    from bankside.celery import app

    app.conf.task_default_queue = QUEUE
    run = None
    try:
        name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        run = ChaosRun(args, name, redis_server)
        tally = run.execute()
    finally:
        if run is not None:
            run.close()
        connection.close()
        with contextlib.suppress(Exception):
            connection.creation.destroy_test_db(test_name, verbosity=0)
        redis_server.stop()
    print_tally(tally)
    if args.json:
        args.json.write_text(json.dumps(tally, indent=2))
    shutil.rmtree(redis_server.dir, ignore_errors=True)
    if tally["failed"]:
        print(f"  the Send API's record of calls and the workers' logs: {run.dir}")
        return 1
    shutil.rmtree(run.dir, ignore_errors=True)
    return 0


class ChaosRun:
    def __init__(self, args: argparse.Namespace, database: str, redis_server: PrivateRedis):
        self.args = args
        self.database = database
        self.redis = redis_server
        self.dir = Path(tempfile.mkdtemp(prefix="bankside-chaos-"))
        self.log = self.dir / "calls.log"
        self.port = free_port()
        self.api = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                sys.executable,
                str(ROOT / "bench" / "fake_send_api.py"),
                str(self.port),
                str(self.log),
                "--transient",
                str(args.transient),
                "--throttle-every",
                str(args.throttle_every),
                "--throttle-for",
                str(args.throttle_for),
                "--seed",
                str(args.seed),
            ]
        )
        self.workers: subprocess.Popen | None = None
        self.beat: subprocess.Popen | None = None
        self.kills = 0
        self.lost_pids: list[int] = []
        self.redis_restarts = 0
        self.worker_restarts = 0
        self.actions: list[str] = []

    # Processes

    def env(self) -> dict[str, str]:
        lease = self.args.lease
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.delivery_settings",
            "BENCH_DATABASE_NAME": self.database,
            "BENCH_GRAPH_API_URL": f"http://127.0.0.1:{self.port}",
            "BENCH_PAGE_RATE_LIMIT": "300",
            "BENCH_QUEUE": QUEUE,
            "BENCH_LEASE_SECONDS": str(lease),
            "BENCH_TASK_SECONDS": str(max(2.0, lease / 2)),
            "BENCH_RETRY_BASE_SECONDS": "0.5",
            "BENCH_RETRY_MAX_DELAY_SECONDS": "4",
            "BENCH_THROTTLE_COOLDOWN_SECONDS": "2",
            "BENCH_SWEEP_SECONDS": "1",
            # No webhook endpoint runs here, so no echo comes: an uncertain send is resent
            # once after this wait (README "Echoes").
            "BENCH_ECHO_WAIT_SECONDS": str(max(1.0, lease / 2)),
            "PYTHONPATH": str(ROOT),
            "LOG_LEVEL": "ERROR",
        }

    def spawn_workers(self) -> None:
        self.workers = subprocess.Popen(  # noqa: S603 - fixed argv
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
                str(self.args.workers),
                "--loglevel",
                "ERROR",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--hostname",
                f"chaos{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "workers.log", "a"),  # noqa: SIM115 - lives with the process
        )

    def start(self) -> None:
        common = [sys.executable, "-m", "celery", "-A", "bankside"]
        self.spawn_workers()
        self.beat = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                *common,
                "beat",
                "--loglevel",
                "ERROR",
                "--schedule",
                str(self.dir / "beat-schedule"),
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "beat.log", "w"),  # noqa: SIM115 - lives with the process
        )
        from bankside.celery import app

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.workers.poll() is not None:
                raise SystemExit("the Celery workers exited at start: see " + str(self.dir))
            if app.control.ping(timeout=0.5) and len(children(self.workers.pid)) >= 1:
                return
        raise SystemExit("the Celery workers did not start")

    def close(self) -> None:
        for proc in (self.beat, self.workers):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.beat = self.workers = None
        if self.api.poll() is None:
            self.api.send_signal(signal.SIGTERM)
            self.api.wait(10)

    # Chaos

    def kill_busy_worker(self) -> None:
        """SIGKILL the worker process that used the most CPU in the last moment."""
        pids = children(self.workers.pid)
        before = {pid: cpu_ticks(pid) for pid in pids}
        time.sleep(0.3)
        busiest = max(pids, key=lambda pid: cpu_ticks(pid) - before[pid], default=None)
        if busiest is None:
            return
        os.kill(busiest, signal.SIGKILL)
        self.kills += 1
        self.lost_pids.append(busiest)
        self.actions.append(f"{self.elapsed():6.1f} s  killed worker process {busiest} (SIGKILL)")

    def supervise(self) -> None:
        """Start the workers again after their main process died, as the process manager
        (`restart: unless-stopped` in docker-compose.yml) would; counted in the tally."""
        code = self.workers.returncode
        for pid in children(self.workers.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.worker_restarts += 1
        if self.worker_restarts > 3:
            raise SystemExit("the Celery workers keep exiting: see " + str(self.dir))
        self.actions.append(
            f"{self.elapsed():6.1f} s  the workers' main process exited ({code}); restarted"
        )
        self.spawn_workers()

    def restart_redis(self) -> None:
        self.redis.restart()
        self.redis_restarts += 1
        self.actions.append(f"{self.elapsed():6.1f} s  restarted Redis, its data gone")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # The run

    def execute(self) -> dict:
        banks, keys, customers = self.setup()
        self.start()
        plan = self.schedule()
        self.started = time.monotonic()
        expected = self.post(banks, keys, customers, plan)
        self.wait_for_delivery(banks, expected, plan)
        elapsed = self.elapsed()
        self.close()
        return self.tally(banks, expected, elapsed)

    def setup(self):
        from bench.people import bank_on_page, unlimited_api_key

        banks, keys, customers = [], [], []
        share = [self.args.customers // self.args.pages] * self.args.pages
        for p in range(self.args.customers % self.args.pages):
            share[p] += 1
        for p, people in enumerate(share):
            bank = bank_on_page(
                f"chaos-{p}",
                f"80000000{p}",
                people,
                scopes=["fraud_alerts", "transactions"],
                psid=lambda n, p=p: f"{p + 1}{n:09d}",
                purpose="chaos",
            )
            banks.append(bank)
            keys.append(unlimited_api_key(bank, name="Chaos", actor="chaos run"))
            customers.append(people)
        return banks, keys, customers

    def schedule(self) -> list[tuple[float, str]]:
        """When to strike, as shares of the expected notifications sent: spread mid-run."""
        kills, restarts = self.args.kills, self.args.redis_restarts
        strikes: list[str] = []
        while kills or restarts:  # alternate: kill, Redis, kill, …
            if kills:
                strikes.append("kill")
                kills -= 1
            if restarts:
                strikes.append("redis")
                restarts -= 1
        count = len(strikes)
        return [(0.15 + 0.6 * (i + 0.5) / count, strike) for i, strike in enumerate(strikes)]

    def post(self, banks, keys, customers, plan) -> dict[str, tuple[int, str]]:
        """Post the events through the API in rounds (event k of every customer, then
        k + 1); returns mark -> (bank index, psid) of each accepted event."""
        from django.test import Client

        from notifications.api.schemas import EXAMPLE_EVENTS

        client = Client()
        total = self.args.customers
        per_customer = [
            self.args.events // total + (1 if i < self.args.events % total else 0)
            for i in range(total)
        ]
        people = [(b, n) for b, count in enumerate(customers) for n in range(count)]
        base = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        queue: list[tuple[int, dict, str, str]] = []
        seq = 0
        for k in range(max(per_customer)):
            for i, (b, n) in enumerate(people):
                if k >= per_customer[i]:
                    continue
                seq += 1
                mark = f"bench-{seq}"
                payload = json.loads(json.dumps(EXAMPLE_EVENTS["fraud.alert"]))
                payload.update(
                    id=mark,
                    customer_id=f"cu-{n}",
                    account_id="visa",
                    occurred_at=(base + dt.timedelta(milliseconds=seq))
                    .isoformat()
                    .replace("+00:00", "Z"),
                )
                payload["data"]["merchant"] = mark
                queue.append((b, payload, mark, f"{b + 1}{n:09d}"))
        accepted: dict[str, tuple[int, str]] = {}
        batch = 50
        position = 0
        started = time.monotonic()
        while position < len(queue):
            due = started + position / self.args.rate
            self.strike(plan)
            time.sleep(max(0.0, due - time.monotonic()))
            chunk = queue[position : position + batch]
            # One post per bank for this slice, in order.
            for b in sorted({item[0] for item in chunk}):
                mine = [item for item in chunk if item[0] == b]
                self.post_batch(client, keys[b], [item[1] for item in mine])
                for _, _, mark, psid in mine:
                    accepted[mark] = (b, psid)
            position += batch
        return accepted

    def post_batch(self, client, secret: str, events: list[dict]) -> None:
        """POST until the API has stored every event (accepted now or a duplicate)."""
        for _ in range(200):
            try:
                response = client.post(
                    "/api/v1/events",
                    json.dumps({"events": events}),
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {secret}",
                )
            except Exception as exc:  # noqa: BLE001 - a core-banking client retries anything
                self.actions.append(f"{self.elapsed():6.1f} s  post failed: {exc!r:.80}; retried")
                time.sleep(0.2)
                continue
            if response.status_code == 202:
                results = response.json().get("results", [])
                statuses = {r.get("status") for r in results}
                if len(results) == len(events) and statuses <= {"accepted", "duplicate"}:
                    return
                raise SystemExit(f"events refused: {response.content[:300]!r}")
            self.actions.append(
                f"{self.elapsed():6.1f} s  post answered {response.status_code}; retried"
            )
            time.sleep(0.2)
        raise SystemExit("the events API did not accept a batch after 200 tries")

    def strike(self, plan: list[tuple[float, str]]) -> None:
        if not plan:
            return
        share, kind = plan[0]
        if self.sent_calls() < share * self.args.events:
            return
        plan.pop(0)
        if kind == "kill":
            self.kill_busy_worker()
        else:
            self.restart_redis()

    def sent_calls(self) -> int:
        """Calls answered with success so far (the fake flushes its log every 0.5 s)."""
        try:
            with self.log.open("rb") as log:
                return sum(1 for line in log if line.endswith(b" ok\n"))
        except FileNotFoundError:
            return 0

    def wait_for_delivery(self, banks, expected, plan) -> None:
        from notifications.models import Notification

        open_states = [Notification.State.PENDING, Notification.State.IN_FLIGHT]
        deadline = time.monotonic() + self.args.timeout
        while True:
            self.strike(plan)
            if (
                not plan
                and not Notification.objects.filter(bank__in=banks, state__in=open_states).exists()
            ):
                return
            if time.monotonic() > deadline:
                self.actions.append(f"{self.elapsed():6.1f} s  gave up waiting (--timeout)")
                return
            if self.workers.poll() is not None:
                self.supervise()
            time.sleep(0.25)

    # The tally

    def tally(self, banks, expected: dict[str, tuple[int, str]], elapsed: float) -> dict:
        from notifications.models import DeliveryAttempt, Notification
        from portal.models import AuditEvent

        calls = []
        for line in self.log.read_text().splitlines():
            moment, page, mark, psid, answer = line.split(" ")
            calls.append((float(moment), page, mark, psid, answer))
        calls.sort(key=lambda call: call[0])
        answers = Counter(call[4] for call in calls)
        reached = Counter(call[2] for call in calls if call[4] == "ok")
        # Each message's first arrival, per person, in arrival order: the marks number
        # the events in the order they were posted, which is each person's event order.
        first_arrivals: dict[str, list[int]] = defaultdict(list)
        seen: set[str] = set()
        for _, _, mark, psid, answer in calls:
            if answer == "ok" and mark in expected and mark not in seen:
                seen.add(mark)
                first_arrivals[psid].append(int(mark.split("-")[1]))
        violations = 0
        for marks in first_arrivals.values():
            highest = 0
            for number in marks:
                if number < highest:
                    violations += 1
                highest = max(highest, number)
        missing = sorted(set(expected) - set(reached), key=lambda m: int(m.split("-")[1]))
        duplicated = {mark for mark, count in reached.items() if count > 1}
        duplicates = sum(reached[mark] - 1 for mark in duplicated)
        rows = Notification.objects.filter(bank__in=banks)
        states = Counter(rows.values_list("state", flat=True))
        uncertain_marks = set(rows.filter(uncertain=True).values_list("event__event_id", flat=True))
        worker_lost = DeliveryAttempt.objects.filter(
            notification__bank__in=banks, outcome=DeliveryAttempt.Outcome.WORKER_LOST
        ).count()
        lost_workers = {
            ":".join(str(details.get("worker", "")).split(":")[:2])
            for details in AuditEvent.objects.filter(
                bank__in=banks, action="notification.send_uncertain"
            ).values_list("details", flat=True)
        }
        notifications = rows.count()
        sent_states = set(Notification.SENT_STATES)
        settled = sum(count for state, count in states.items() if state in sent_states)
        checks = {
            "every accepted event has its notification": notifications == len(expected),
            "none missing": not missing,
            "every notification recorded as sent": settled == notifications,
            "per-recipient order held": violations == 0,
            "every duplicate was flagged uncertain": duplicated <= uncertain_marks,
            "duplicates <= uncertain sends": duplicates <= len(uncertain_marks),
            # A pool whose main process died (and was restarted) loses the sends in flight
            # of each of its worker processes, as if each had been killed.
            "workers lost mid-send <= kills": len(lost_workers)
            <= self.kills + self.worker_restarts * self.args.workers,
            "all strikes done": self.kills == self.args.kills
            and self.redis_restarts == self.args.redis_restarts,
        }
        return {
            "events": self.args.events,
            "customers": self.args.customers,
            "pages": len(banks),
            "seconds": round(elapsed, 1),
            "expected": len(expected),
            "notifications": notifications,
            "sent": len(set(reached) & set(expected)),
            "missing": len(missing),
            "missing_examples": missing[:10],
            "order_violations": violations,
            "duplicates": duplicates,
            "uncertain": len(uncertain_marks),
            "worker_lost_attempts": worker_lost,
            "workers_lost_mid_send": len(lost_workers),
            "kills": self.kills,
            "redis_restarts": self.redis_restarts,
            "worker_restarts": self.worker_restarts,
            "calls": len(calls),
            "answers": dict(answers),
            "states": dict(states),
            "actions": self.actions,
            "checks": checks,
            "failed": [name for name, ok in checks.items() if not ok],
        }


def print_tally(t: dict) -> None:
    answers = t["answers"]
    calls = max(1, t["calls"])
    print(
        f"\nChaos run: {t['events']} events to {t['customers']} customers on {t['pages']} "
        f"Pages, {t['seconds']} s"
    )
    for action in t["actions"]:
        print(f"  {action}")
    print(
        f"  Send API calls        {t['calls']:8d}: ok {answers.get('ok', 0)}, transient "
        f"{answers.get('transient', 0)} ({100 * answers.get('transient', 0) / calls:.1f}%), "
        f"throttled {answers.get('throttled', 0)} "
        f"({100 * answers.get('throttled', 0) / calls:.1f}%)"
    )
    print(f"  expected              {t['expected']:8d} notifications")
    print(f"  sent                  {t['sent']:8d}")
    print(f"  missing               {t['missing']:8d}  (must be 0)")
    print(f"  order violations      {t['order_violations']:8d}  (must be 0)")
    print(f"  duplicates            {t['duplicates']:8d}  (each must be an uncertain send)")
    print(
        f"  uncertain sends       {t['uncertain']:8d}  detected by the engine "
        f"({t['worker_lost_attempts']} worker-lost attempts recorded)"
    )
    print(
        f"  workers lost mid-send {t['workers_lost_mid_send']:8d}  "
        f"(kills: {t['kills']}; Redis restarts: {t['redis_restarts']}; "
        f"worker pools restarted after a crash: {t['worker_restarts']})"
    )
    print(f"  final states          {dict(sorted(t['states'].items()))}")
    for name, ok in t["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'}  {name}")
    if t["missing_examples"]:
        print(f"  missing, e.g.: {', '.join(t['missing_examples'])}")


if __name__ == "__main__":
    sys.exit(main())
