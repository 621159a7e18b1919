"""Benchmark: the CPU instructions one posted event costs the API, counted by valgrind.

Rates measured in seconds (bench/api.py) move with whatever else the machine runs: on a
shared 2-core machine the same code and the same bare insert vary by a quarter from one
minute to the next, more than most changes to the code. Instructions do not: callgrind
counts those a process executes in user space, the same for the same code and inputs.
So this is the figure to compare two versions of the code by.

It creates its own database (`<DATABASE_URL's name>_bench_instructions`) with the bank of
bench/api.py and its history (`history_seed`), then runs the production request path in
one process, as a gunicorn worker does (bench/api_settings.py, the WSGI application,
PostgreSQL and Redis as configured; without gunicorn's own HTTP parsing), under
callgrind: `--few` requests, then `--many` in a second run. The difference over the
extra requests is the cost per request, free of start-up; the request bodies are made
beforehand and not counted. For:

1. `POST /api/v1/events` with one new event, cycling through every event type;
2. the same with batches of `--batch-size` events, per event;
3. the same stack's bare DRF one-row insert (bench settings only), for reference.

What the database server, Redis and the kernel spend is not counted: bench/api.py shows
those as CPU time. A delivery nudge is kept pending throughout, so Celery's publishing is
not counted either. Figures only: nothing here asserts a count.

    python bench/instructions.py [--few 20] [--many 220] [--batch-size 100]
                                 [--loads single,batch,bare] [--history 20000]

(Batches run a tenth as many requests as `--few` and `--many` say.)
"""

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = "--child"


def child(args) -> None:
    """One measured run: post each line of `args.bodies` as a request of `args.kind`
    through the WSGI app. The bodies are made beforehand, by the parent: only the requests
    are counted."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.api_settings"
    import django

    django.setup()
    import redis
    from django.conf import settings

    from bankside.wsgi import application
    from notifications.services import nudge

    # A delivery nudge is pending throughout, as it nearly always is under load: otherwise
    # how often a post publishes one (at most once per `PENDING_MS` of wall time) would
    # depend on how fast valgrind runs, and so would the count.
    pending = redis.Redis.from_url(settings.REDIS_URL)
    for urgent in (False, True):
        pending.set(nudge._pending_key(urgent=urgent), 1, px=3_600_000)
    try:
        statuses = _post_each(application, args)
    finally:
        nudge.deliveries_nudge_taken()
    expected = "201" if args.kind == "bare" else "202"
    wrong = [status for status in statuses if not status.startswith(expected)]
    if wrong:
        raise SystemExit(f"unexpected answers: {wrong[:3]}")


def _post_each(application, args) -> list[str]:
    """Post each line of `args.bodies` through `application`; the answers' statuses."""
    secret = Path(args.secret_file).read_text()
    path = "/api/bench/bare-insert" if args.kind == "bare" else "/api/v1/events"
    statuses = []
    with open(args.bodies, "rb") as bodies:
        for line in bodies:
            raw = line.rstrip(b"\n")
            environ = {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": path,
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "443",
                "HTTP_HOST": "127.0.0.1",
                "CONTENT_TYPE": "application/json",
                "CONTENT_LENGTH": str(len(raw)),
                "HTTP_X_FORWARDED_PROTO": "https",
                "wsgi.url_scheme": "https",
                "wsgi.input": io.BytesIO(raw),
                "wsgi.errors": sys.stderr,
                "REMOTE_ADDR": "127.0.0.1",
            }
            if args.kind != "bare":
                environ["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
            response = application(environ, lambda status, headers: statuses.append(status))
            b"".join(response)
            response.close()
    return statuses


def instructions(kind: str, bodies: list[bytes], database: str, secret_file: str) -> int:
    """User-space instructions of one child run, posting `bodies`, under callgrind."""
    out = Path(tempfile.mkdtemp(prefix="bankside-bench-instructions-"))
    (out / "bodies").write_bytes(b"".join(body + b"\n" for body in bodies))
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}/callgrind.out",
        sys.executable,
        __file__,
        CHILD,
        kind,
        str(out / "bodies"),
        "--secret-file",
        secret_file,
    ]
    env = {**os.environ, "BENCH_DATABASE_NAME": database, "BENCH_QUEUE": QUEUE}
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv
            command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"the measured run failed:\n{done.stderr[-3000:]}")
    return int(found.group(1))


QUEUE = f"bench-instructions-{os.getpid()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(CHILD, nargs=2, metavar=("KIND", "BODIES"), help=argparse.SUPPRESS)
    parser.add_argument("--secret-file", help=argparse.SUPPRESS)
    parser.add_argument("--few", type=int, default=20)
    parser.add_argument("--many", type=int, default=220)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument(
        "--history", type=int, default=20_000, help="events posted before the counts"
    )
    parser.add_argument(
        "--loads",
        default="single,batch,bare",
        help="which to count, comma-separated: single, batch, bare (default: all three)",
    )
    args = parser.parse_args()
    if args.child:
        args.kind, args.bodies = args.child
        child(args)
        return
    if args.history < 0:
        parser.error("--history cannot be negative")
    if args.many <= args.few or args.few < 1:
        parser.error("--many must be more than --few, and --few at least 1")
    loads = [load.strip() for load in args.loads.split(",") if load.strip()]
    if not loads or set(loads) - {"single", "batch", "bare"}:
        parser.error("--loads takes single, batch and bare, comma-separated")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankside.settings.test")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    from bench.api import setup_bank, statistics_refresh

    database = settings.DATABASES["default"]
    if database["ENGINE"] != settings.POSTGRESQL_ENGINE:
        raise SystemExit("The benchmark runs against PostgreSQL: set DATABASE_URL=postgres://…")
    database["TEST"] = {
        **database.get("TEST", {}),
        "NAME": f"{database['NAME']}_bench_instructions",
    }
    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    secret_dir = Path(tempfile.mkdtemp(prefix="bankside-bench-instructions-"))
    print(f"bankside API instructions per request, counted by callgrind; database {name}")
    try:
        secret_file = secret_dir / "key"
        secret_file.write_text(setup_bank(args.customers))
        from bench.api import Events, history_seed

        events = Events(args.customers)
        history_seed(events, args.history)
        connection.close()

        def bodies(kind: str, count: int) -> list[bytes]:
            if kind == "batch":
                made = [
                    {"events": [events.next() for _ in range(args.batch_size)]}
                    for _ in range(count)
                ]
            else:
                made = [events.next() for _ in range(count)]
            return [json.dumps(body).encode() for body in made]

        # Batches: a tenth as many requests, each of `--batch-size` events.
        batches = max(1, args.few // 10), max(2, args.many // 10)
        for kind, label, per, (few_count, many_count) in (
            ("single", "single event", 1, (args.few, args.many)),
            ("batch", f"batch of {args.batch_size}", args.batch_size, batches),
            ("bare", "bare DRF insert", 1, (args.few, args.many)),
        ):
            if kind not in loads:
                continue
            statistics_refresh()
            connection.close()
            few = instructions(kind, bodies(kind, few_count), name, str(secret_file))
            many = instructions(kind, bodies(kind, many_count), name, str(secret_file))
            per_event = (many - few) / (many_count - few_count) / per
            print(f"  {label:<18} {per_event / 1e6:8.3f} million instructions per event")
    finally:
        shutil.rmtree(secret_dir, ignore_errors=True)
        connection.close()
        connection.creation.destroy_test_db(name, verbosity=0)
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(QUEUE)


if __name__ == "__main__":
    main()
