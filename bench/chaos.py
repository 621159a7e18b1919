"""Chaos run: each notification reaches its person once and only once, in order, while
workers die, Redis loses everything, PostgreSQL restarts, a web process is killed, the
Send API fails a fifth of the calls and its echoes come late or not at all.

Run with `make chaos` (`CHAOS_ARGS` passes options). It starts, all on this machine and
all its own, so that nothing it restarts disturbs anyone else:

- a PostgreSQL cluster (initdb into a temporary directory, a free port; run as the
  `postgres` user when started as root), holding the run's database;
- a Redis (`redis-server` on a free port, no persistence) for the broker and the Page
  buckets;
- the web process (gunicorn with the production settings, bench/api_settings.py, as
  bench/api.py runs it), serving the events API and the Messenger webhook;
- the minimal fake Send API (bench/fake_send_api.py), failing `--transient` of the calls
  with transient errors, throttling each Page for a moment every few seconds, and posting
  the echo of every message it accepts to the bank's webhook, signed with the Page's app
  secret as Meta does: `--echo-drop` of them dropped on purpose, `--echo-delay-share` of
  them held back `--echo-delay` seconds;
- `--workers` real Celery worker processes and Celery beat (the outbox sweeper).

Then it posts `--events` fraud alerts to `--customers` linked customers on `--pages` Pages
through the events API over HTTP (one poster per bank, batches of 100), in order per
customer, each failed request retried with the same event ids, as a core-banking system
does (`simulate_core`). Digests are off, so
each notification is one message. While the core posts, it SIGKILLs a gunicorn worker
serving it (`--web-kills`; gunicorn starts another). While delivery runs, it SIGKILLs a
busy Celery worker process `--kills` times, restarts Redis with its data gone
`--redis-restarts` times and restarts PostgreSQL (`pg_ctl restart -m fast`)
`--postgres-restarts` times, spread over the run. When nothing is left to send, it reads
the fake Send API's record of calls and echoes and prints the tally; it exits non-zero if
an invariant fails:

- expected notifications (one per accepted event), sent, missing: must be 0;
- per-recipient order violations (a message that reached a person before an earlier one
  did): must be 0;
- duplicates: a notification accepted by the Send API twice, so that its person got it
  twice: must be 0. One case is counted apart, not as a duplicate: the echo of the
  message's first copy was dropped on purpose, so its send stayed uncertain and, after
  `--echo-wait`, the engine sent it again once, as it promises. The run prints how many
  echoes it dropped, how many messages were resent for it, and checks that each such
  resend is one the engine flagged `resent`;
- uncertain sends (a worker died after handing the message to the Send API and before
  recording the answer): each is settled by its echo, or resent once (flagged `resent`).

`--json PATH` also writes the tally as JSON.

    python bench/chaos.py [--events 10000] [--customers 1000] [--pages 3] [--kills 2]
                          [--redis-restarts 1] [--postgres-restarts 1] [--web-kills 1]
                          [--transient 0.19] [--echo-drop 0.02] [--workers 2]
"""

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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


def web_worker_serving(pids: list[int], port: int, client_port: int) -> int | None:
    """Which of these processes holds the server end of the TCP connection from
    `client_port` to `port` on this machine (from /proc), if any does yet."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
                if int(local, 16) == port and int(remote, 16) == client_port:
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, PermissionError, ProcessLookupError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return pid
    return None


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


class PrivatePostgres:
    """A PostgreSQL cluster of the run's own: initdb into a temporary directory, a free port.

    PostgreSQL refuses to run as root: started as root, every command runs as the
    `postgres` user, who owns the directory. Durability against a power cut is of no use
    here (fsync off); a restart is a real one, every connection cut.
    """

    def __init__(self) -> None:
        self.bin = self.binaries()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bankside-chaos-pg-"))
        self.data = self.dir / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres", "postgres")

    @staticmethod
    def binaries() -> Path:
        found = shutil.which("pg_ctl")
        candidates = [
            *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True),
            *([Path(found).parent] if found else []),
            Path("/usr/local/bin"),
        ]
        for candidate in candidates:
            if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
                return candidate
        raise SystemExit("The chaos run needs PostgreSQL's initdb and pg_ctl")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/bankside"

    def run(self, *argv: str) -> None:
        done = subprocess.run(  # noqa: S603 - fixed argv
            [*self.as_user, *argv], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"{argv[0]} failed: {done.stderr[-2000:] or done.stdout[-2000:]}")

    def pg_ctl(self, *action: str) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self.run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "postgres.log"),
            "-w",
            "-t",
            "120",
            "-o",
            options,
            *action,
        )

    def start(self) -> None:
        self.run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        self.pg_ctl("start")

    def restart(self) -> None:
        self.pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(SystemExit):
                self.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Web:
    """gunicorn serving the events API and the Messenger webhook (production settings)."""

    def __init__(self, database: str, directory: Path, workers: int) -> None:
        self.database = database
        self.workers = workers
        self.port = free_port()
        self.output = (directory / "gunicorn.log").open("a")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                sys.executable,
                "-m",
                "gunicorn",
                "bankside.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--threads",
                "4",
                "--forwarded-allow-ips",
                "*",
                "--no-control-socket",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "bench.api_settings",
                "BENCH_DATABASE_NAME": self.database,
                "BENCH_QUEUE": QUEUE,
                "PYTHONPATH": str(ROOT),
                "LOG_LEVEL": "ERROR",
            },
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited at start; see {self.output.name}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                if len(children(self.process.pid)) >= self.workers:
                    return
            time.sleep(0.1)
        raise SystemExit(f"gunicorn did not start; see {self.output.name}")

    def worker_pids(self) -> list[int]:
        return children(self.process.pid) if self.process is not None else []

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self.output.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--redis-restarts", type=int, default=1)
    parser.add_argument("--postgres-restarts", type=int, default=1)
    parser.add_argument("--web-kills", type=int, default=1, help="while the core posts")
    parser.add_argument("--transient", type=float, default=0.19, help="share of calls failed")
    parser.add_argument("--throttle-every", type=float, default=4.0)
    parser.add_argument("--throttle-for", type=float, default=0.25)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--echo-drop", type=float, default=0.02, help="echoes dropped")
    parser.add_argument("--echo-delay", type=float, default=2.0, help="seconds")
    parser.add_argument("--echo-delay-share", type=float, default=0.1, help="echoes delayed")
    parser.add_argument(
        "--echo-wait", type=float, default=45.0, help="seconds an uncertain send waits"
    )
    parser.add_argument("--rate", type=float, default=500, help="events posted per second")
    parser.add_argument("--lease", type=float, default=10.0, help="lease seconds")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the tally here")
    args = parser.parse_args(argv)
    if args.customers < args.pages or args.events < args.customers:
        parser.error("need at least one customer per Page and one event per customer")
    if args.web_workers < 2 and args.web_kills:
        parser.error("a web kill needs --web-workers 2 or more (one keeps serving)")
    if not 0 <= args.echo_drop <= 1 or not 0 <= args.echo_delay_share <= 1:
        parser.error("--echo-drop and --echo-delay-share are shares from 0 to 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    postgres = PrivatePostgres()
    redis_server = PrivateRedis()
    try:
        postgres.start()
        redis_server.start()
        return chaos(args, postgres, redis_server)
    finally:
        redis_server.stop()
        shutil.rmtree(redis_server.dir, ignore_errors=True)
        postgres.stop()


def chaos(args: argparse.Namespace, postgres: PrivatePostgres, redis_server: PrivateRedis) -> int:
    os.environ["REDIS_URL"] = redis_server.url
    os.environ["DATABASE_URL"] = postgres.url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankside.settings.test")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    database = settings.DATABASES["default"]
    if database["ENGINE"] != settings.POSTGRESQL_ENGINE:
        raise SystemExit("The chaos run needs PostgreSQL settings (bankside.settings.test)")
    database["CONN_MAX_AGE"] = 60
    test_name = f"{database['NAME']}_chaos"
    database["TEST"] = {**database.get("TEST", {}), "NAME": test_name}
    setup_test_environment()
    settings.DEBUG = False
    from bankside.celery import app

    app.conf.task_default_queue = QUEUE
    run = None
    try:
        name = connection.creation.create_test_db(
            verbosity=0, autoclobber=True, keepdb=False, serialize=False
        )
        run = ChaosRun(args, name, redis_server, postgres)
        tally = run.execute()
    finally:
        if run is not None:
            run.close()
        connection.close()
    print_tally(tally)
    if args.json:
        args.json.write_text(json.dumps(tally, indent=2))
    if tally["failed"]:
        print(f"  the Send API's record of calls and echoes, and the logs: {run.dir}")
        return 1
    shutil.rmtree(run.dir, ignore_errors=True)
    return 0


class ChaosRun:
    def __init__(
        self,
        args: argparse.Namespace,
        database: str,
        redis_server: PrivateRedis,
        postgres: PrivatePostgres,
    ):
        self.args = args
        self.database = database
        self.redis = redis_server
        self.postgres = postgres
        self.dir = Path(tempfile.mkdtemp(prefix="bankside-chaos-"))
        self.log = self.dir / "calls.log"
        self.echo_log = self.dir / "calls.log.echoes"
        self.targets = self.dir / "echo-targets.json"
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
                "--echo-targets",
                str(self.targets),
                "--echo-drop",
                str(args.echo_drop),
                "--echo-delay",
                str(args.echo_delay),
                "--echo-delay-share",
                str(args.echo_delay_share),
            ]
        )
        self.web = Web(database, self.dir, args.web_workers)
        self.workers: subprocess.Popen | None = None
        self.beat: subprocess.Popen | None = None
        self.kills = 0
        self.lost_pids: list[int] = []
        self.redis_restarts = 0
        self.postgres_restarts = 0
        self.web_kills = 0
        self.web_restarts = 0
        self.worker_restarts = 0
        self.post_retries: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.actions: list[str] = []
        self.started = time.monotonic()

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
            # An uncertain send waits this long for its echo before it is resent once:
            # longer than the fake Send API keeps retrying an echo the webhook refused.
            "BENCH_ECHO_WAIT_SECONDS": str(self.args.echo_wait),
            # One message per notification, so that the record of calls tells each apart.
            "NOTIFICATIONS_DIGESTS": "false",
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

    def start(self, banks) -> None:
        self.web.start()
        # Where the fake Send API posts each Page's echoes: the bank's webhook, signed with
        # the Page's app secret (read from the integration, as Meta holds it).
        targets = {
            bank.integration.page_id: {
                "url": f"http://127.0.0.1:{self.web.port}/webhooks/messenger/{bank.slug}/",
                "app_secret": bank.integration.app_secret,
                "app_id": bank.integration.app_id or "1",
            }
            for bank in banks
        }
        self.targets.write_text(json.dumps(targets))
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
        self.web.stop()
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

    def kill_web_worker(self, client_port: int) -> None:
        """SIGKILL the gunicorn worker serving the core's post in flight (the one holding
        the connection from `client_port`); gunicorn's master starts another in its place,
        as the process manager would start the web process again."""
        pids = self.web.worker_pids()
        serving = None
        deadline = time.monotonic() + 2
        while serving is None and time.monotonic() < deadline:
            serving = web_worker_serving(pids, self.web.port, client_port)
            if serving is None:
                time.sleep(0.005)
        if serving is None:
            return
        os.kill(serving, signal.SIGKILL)
        self.web_kills += 1
        self.actions.append(
            f"{self.elapsed():6.1f} s  killed web (gunicorn) worker {serving} (SIGKILL) while "
            "it served the core's post"
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            fresh = [pid for pid in self.web.worker_pids() if pid not in pids]
            if fresh:
                self.web_restarts += 1
                self.actions.append(
                    f"{self.elapsed():6.1f} s  gunicorn started web worker {fresh[0]} in its place"
                )
                return
            time.sleep(0.05)

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

    def restart_postgres(self) -> None:
        began = time.monotonic()
        self.postgres.restart()
        self.postgres_restarts += 1
        self.actions.append(
            f"{self.elapsed():6.1f} s  restarted PostgreSQL (pg_ctl restart -m fast, "
            f"{time.monotonic() - began:.1f} s): every connection cut"
        )

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # The run

    def execute(self) -> dict:
        banks, keys, customers = self.setup()
        self.start(banks)
        plan = self.schedule()
        self.started = time.monotonic()
        expected = self.post(banks, keys, customers, plan)
        self.wait_for_delivery(banks, expected, plan)
        elapsed = self.elapsed()
        self.close()
        time.sleep(0.2)
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
        """When to strike, as shares of the expected notifications sent: spread mid-run.
        (The web kills strike while the core posts: see `post`.)"""
        counts = {
            "kill": self.args.kills,
            "redis": self.args.redis_restarts,
            "postgres": self.args.postgres_restarts,
        }
        strikes: list[str] = []
        while any(counts.values()):  # alternate: kill, Redis, PostgreSQL, kill, …
            for kind in counts:
                if counts[kind]:
                    strikes.append(kind)
                    counts[kind] -= 1
        count = len(strikes)
        return [(0.15 + 0.6 * (i + 0.5) / count, strike) for i, strike in enumerate(strikes)]

    def post(self, banks, keys, customers, plan) -> dict[str, tuple[int, str]]:
        """Post the events through the API, one poster per bank, each in rounds (event k of
        every customer, then k + 1) in batches of 100; returns mark -> (bank index, psid)
        of each accepted event."""
        from notifications.api.schemas import EXAMPLE_EVENTS

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
        # Each bank's events are posted by a poster of its own (a core-banking system per
        # bank), in order, at its share of `--rate`; the first one's posts take the web kills,
        # spread over its posting (at 50% of it for one).
        queues = [[item for item in queue if item[0] == b] for b in range(len(banks))]
        web_kills = [
            int(len(queues[0]) * (0.2 + 0.6 * (i + 0.5) / self.args.web_kills))
            for i in range(self.args.web_kills)
        ]
        accepted: dict[str, tuple[int, str]] = {}
        errors: list[BaseException] = []
        batch = 100

        def poster(b: int) -> None:
            items = queues[b]
            rate = self.args.rate * len(items) / len(queue)
            started = time.monotonic()
            try:
                for position in range(0, len(items), batch):
                    time.sleep(max(0.0, started + position / rate - time.monotonic()))
                    kill_web = b == 0 and bool(web_kills) and position >= web_kills[0]
                    if kill_web:
                        web_kills.pop(0)
                    chunk = items[position : position + batch]
                    self.post_batch(keys[b], [item[1] for item in chunk], kill_web=kill_web)
                    for _, _, mark, psid in chunk:
                        accepted[mark] = (b, psid)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        posters = [threading.Thread(target=poster, args=(b,)) for b in range(len(banks))]
        for thread in posters:
            thread.start()
        while any(thread.is_alive() for thread in posters):
            self.strike(plan)
            if self.workers.poll() is not None:
                self.supervise()
            time.sleep(0.25)
        if errors:
            raise SystemExit(f"posting failed: {errors[0]!r}")
        return accepted

    def post_batch(self, secret: str, events: list[dict], *, kill_web: bool = False) -> None:
        """POST until the API has stored every event (accepted now or a duplicate): a
        failed request is sent again as it was, with the same event ids."""
        body = json.dumps({"events": events}).encode()
        headers = {
            "Authorization": f"Bearer {secret}",
            "Content-Type": "application/json",
            "X-Forwarded-Proto": "https",  # as through the bank's TLS proxy
        }
        for _ in range(600):
            client = http.client.HTTPConnection("127.0.0.1", self.web.port, timeout=120)
            try:
                client.request("POST", "/api/v1/events", body, headers)
                if kill_web:  # while the web process works on this post
                    kill_web = False
                    self.kill_web_worker(client.sock.getsockname()[1])
                response = client.getresponse()
                status, content = response.status, response.read()
            except (OSError, http.client.HTTPException) as exc:
                with self.lock:
                    self.post_retries[type(exc).__name__] += 1
                time.sleep(0.2)
                continue
            finally:
                client.close()
            if status == 202:
                results = json.loads(content).get("results", [])
                statuses = {r.get("status") for r in results}
                if len(results) == len(events) and statuses <= {"accepted", "duplicate"}:
                    return
                raise SystemExit(f"events refused: {content[:300]!r}")
            with self.lock:
                self.post_retries[f"HTTP {status}"] += 1
            time.sleep(0.2)
        raise SystemExit("the events API did not accept a batch after 600 tries")

    def strike(self, plan: list[tuple[float, str]]) -> None:
        if not plan:
            return
        share, kind = plan[0]
        if self.sent_calls() < share * self.args.events:
            return
        plan.pop(0)
        if kind == "kill":
            self.kill_busy_worker()
        elif kind == "redis":
            self.restart_redis()
        else:
            self.restart_postgres()

    def sent_calls(self) -> int:
        """Calls answered with success so far (the fake flushes its log every 0.5 s)."""
        try:
            with self.log.open("rb") as log:
                return sum(1 for line in log if b" ok " in line)
        except FileNotFoundError:
            return 0

    def open_left(self, banks) -> bool:
        """Whether any notification is still pending or in flight; asked again after the
        database was out of reach (restarting), as any client of it would."""
        from django.db import InterfaceError, OperationalError, connection

        from notifications.models import Notification

        open_states = [Notification.State.PENDING, Notification.State.IN_FLIGHT]
        for _ in range(120):
            try:
                return Notification.objects.filter(bank__in=banks, state__in=open_states).exists()
            except (OperationalError, InterfaceError):
                connection.close()
                time.sleep(0.5)
        raise SystemExit("the run's database stayed out of reach")

    def wait_for_delivery(self, banks, expected, plan) -> None:
        deadline = time.monotonic() + self.args.timeout
        while True:
            self.strike(plan)
            if not plan and not self.open_left(banks):
                return
            if time.monotonic() > deadline:
                self.actions.append(f"{self.elapsed():6.1f} s  gave up waiting (--timeout)")
                return
            if self.workers.poll() is not None:
                self.supervise()
            time.sleep(0.25)

    # The tally

    def tally(self, banks, expected: dict[str, tuple[int, str]], elapsed: float) -> dict:
        from django.db import connection

        from notifications.models import DeliveryAttempt, MessageEcho, Notification
        from portal.models import AuditEvent

        connection.close()  # cut by the PostgreSQL restart, perhaps
        calls = []
        for line in self.log.read_text().splitlines():
            moment, page, mark, psid, answer, mid = line.split(" ")
            calls.append((float(moment), page, mark, psid, answer, mid))
        calls.sort(key=lambda call: call[0])
        answers = Counter(call[4] for call in calls)
        # Each accepted copy of each message, in arrival order: mark -> [(psid, mid)].
        copies: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for _, _, mark, psid, answer, mid in calls:
            if answer == "ok":
                copies[mark].append((psid, mid))
        echoes = Counter()
        dropped_mids: set[str] = set()
        for line in self.echo_log.read_text().splitlines():
            _, _, mid, _, what = line.split(" ")
            echoes[what] += 1
            if what == "dropped":
                dropped_mids.add(mid)
        # Each message's first arrival, per person, in arrival order: the marks number
        # the events in the order they were posted, which is each person's event order.
        first_arrivals: dict[str, list[int]] = defaultdict(list)
        seen: set[str] = set()
        for _, _, mark, psid, answer, _ in calls:
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
        missing = sorted(set(expected) - set(copies), key=lambda m: int(m.split("-")[1]))
        rows = Notification.objects.filter(bank__in=banks)
        by_mark = {
            mark: (pk, uncertain, resent)
            for pk, mark, uncertain, resent in rows.values_list(
                "pk", "event__event_id", "uncertain", "resent"
            )
        }
        echoed = set(
            MessageEcho.objects.filter(bank__in=banks, notification__isnull=False).values_list(
                "notification_id", flat=True
            )
        )
        # A duplicate: the same notification accepted by the Send API twice, to its person.
        # The one case apart: its first copy's echo was dropped on purpose, and the engine,
        # left without it, resent the message once, flagged `resent`.
        duplicates = 0
        duplicated: list[str] = []
        resent_for_drop: list[str] = []
        resent_for_drop_unflagged: list[str] = []
        for mark, got in copies.items():
            extra = len(got) - 1
            if extra <= 0:
                continue
            _, _, resent = by_mark.get(mark, (None, False, False))
            if got[0][1] in dropped_mids:
                if resent:
                    resent_for_drop.append(mark)
                    extra -= 1
                else:
                    resent_for_drop_unflagged.append(mark)
            if extra > 0:
                duplicates += extra
                duplicated.append(mark)
        uncertain = {mark for mark, (_, u, _) in by_mark.items() if u}
        resent_marks = {mark for mark, (_, _, r) in by_mark.items() if r}
        settled_by_echo = {m for m in uncertain - resent_marks if by_mark[m][0] in echoed}
        resent_once = {m for m in uncertain & resent_marks if len(copies.get(m, [])) <= 2}
        # A resend whose first copy never reached the Send API (the worker died before the
        # call, or the call failed): the person got it once.
        resent_first_lost = {m for m in resent_once if len(copies.get(m, [])) == 1}
        worker_lost = DeliveryAttempt.objects.filter(
            notification__bank__in=banks, outcome=DeliveryAttempt.Outcome.WORKER_LOST
        ).count()
        lost_workers = {
            ":".join(str(details.get("worker", "")).split(":")[:2])
            for details in AuditEvent.objects.filter(
                bank__in=banks, action="notification.send_uncertain"
            ).values_list("details", flat=True)
        }
        states = Counter(rows.values_list("state", flat=True))
        notifications = rows.count()
        sent_states = set(Notification.SENT_STATES)
        settled = sum(count for state, count in states.items() if state in sent_states)
        checks = {
            "every accepted event has its notification": notifications == len(expected),
            "none missing": not missing,
            "every notification recorded as sent": settled == notifications,
            "per-recipient order held": violations == 0,
            "no duplicates": duplicates == 0,
            "every resend after a dropped echo flagged resent by the engine": (
                not resent_for_drop_unflagged
            ),
            "every uncertain send settled by its echo or resent once": (
                settled_by_echo | resent_once == uncertain
            ),
            "every resend was of an uncertain send": resent_marks <= uncertain,
            # A pool whose main process died (and was restarted) loses the sends in flight
            # of each of its worker processes, as if each had been killed; so does a
            # worker whose database connection was cut by the PostgreSQL restart mid-send.
            "workers lost mid-send <= kills": len(lost_workers)
            <= self.kills
            + self.worker_restarts * self.args.workers
            + self.postgres_restarts * self.args.workers,
            "all strikes done": self.kills == self.args.kills
            and self.redis_restarts == self.args.redis_restarts
            and self.postgres_restarts == self.args.postgres_restarts
            and self.web_kills == self.args.web_kills,
            "every killed web worker replaced": self.web_restarts == self.web_kills,
        }
        return {
            "events": self.args.events,
            "customers": self.args.customers,
            "pages": len(banks),
            "seconds": round(elapsed, 1),
            "expected": len(expected),
            "notifications": notifications,
            "sent": len(set(copies) & set(expected)),
            "missing": len(missing),
            "missing_examples": missing[:10],
            "order_violations": violations,
            "duplicates": duplicates,
            "duplicate_examples": duplicated[:10],
            "echoes": dict(echoes),
            "echoes_dropped": echoes["dropped"],
            "resent_after_dropped_echo": len(resent_for_drop),
            "resent_after_dropped_echo_unflagged": len(resent_for_drop_unflagged),
            "uncertain": len(uncertain),
            "uncertain_settled_by_echo": len(settled_by_echo),
            "uncertain_resent_once": len(resent_once),
            "resent_first_copy_never_arrived": len(resent_first_lost),
            "resent": len(resent_marks),
            "worker_lost_attempts": worker_lost,
            "workers_lost_mid_send": len(lost_workers),
            "kills": self.kills,
            "redis_restarts": self.redis_restarts,
            "postgres_restarts": self.postgres_restarts,
            "web_kills": self.web_kills,
            "web_restarts": self.web_restarts,
            "worker_restarts": self.worker_restarts,
            "post_retries": dict(self.post_retries),
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
    echoes = t["echoes"]
    print(
        f"\nChaos run: {t['events']} events to {t['customers']} customers on {t['pages']} "
        f"Pages, {t['seconds']} s"
    )
    for action in t["actions"]:
        print(f"  {action}")
    retries = sum(t["post_retries"].values())
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(t["post_retries"].items()))
    print(
        f"  core's posts retried  {retries:8d}  (same event ids{': ' + reasons if reasons else ''})"
    )
    print(
        f"  Send API calls        {t['calls']:8d}: ok {answers.get('ok', 0)}, transient "
        f"{answers.get('transient', 0)} ({100 * answers.get('transient', 0) / calls:.1f}%), "
        f"throttled {answers.get('throttled', 0)} "
        f"({100 * answers.get('throttled', 0) / calls:.1f}%)"
    )
    print(
        f"  echoes                {sum(echoes.values()):8d}: posted {echoes.get('posted', 0)}, "
        f"dropped on purpose {echoes.get('dropped', 0)}, never taken by the webhook "
        f"{echoes.get('failed', 0)}"
    )
    print(f"  expected              {t['expected']:8d} notifications")
    print(f"  sent                  {t['sent']:8d}")
    print(f"  missing               {t['missing']:8d}  (must be 0)")
    print(f"  order violations      {t['order_violations']:8d}  (must be 0)")
    print(f"  duplicates            {t['duplicates']:8d}  (must be 0)")
    print(
        f"  resent, echo dropped  {t['resent_after_dropped_echo']:8d}  (the first copy's echo "
        f"dropped on purpose; each flagged resent by the engine: "
        f"{'yes' if not t['resent_after_dropped_echo_unflagged'] else 'NO'})"
    )
    print(
        f"  uncertain sends       {t['uncertain']:8d}  detected by the engine: settled by "
        f"their echo {t['uncertain_settled_by_echo']}, resent once "
        f"{t['uncertain_resent_once']} ({t['worker_lost_attempts']} worker-lost attempts)"
    )
    print(
        f"  resent, first lost    {t['resent_first_copy_never_arrived']:8d}  (their first copy "
        "never reached the Send API: the person got them once)"
    )
    print(
        f"  workers lost mid-send {t['workers_lost_mid_send']:8d}  "
        f"(worker kills: {t['kills']}; Redis restarts: {t['redis_restarts']}; PostgreSQL "
        f"restarts: {t['postgres_restarts']}; web kills: {t['web_kills']}; worker pools "
        f"restarted after a crash: {t['worker_restarts']})"
    )
    print(f"  final states          {dict(sorted(t['states'].items()))}")
    for name, ok in t["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'}  {name}")
    if t["missing_examples"]:
        print(f"  missing, e.g.: {', '.join(t['missing_examples'])}")
    if t["duplicate_examples"]:
        print(f"  duplicated, e.g.: {', '.join(t['duplicate_examples'])}")


if __name__ == "__main__":
    sys.exit(main())
