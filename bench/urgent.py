"""Benchmark: fraud alerts overtake a Page's routine backlog, and the Page's limit is used whole.

Run with `make bench` (after bench/delivery.py) or on its own:

    DJANGO_SETTINGS_MODULE=bankside.settings.test .venv/bin/python bench/urgent.py
        [--notifications 30000] [--people 3000] [--alerts 50] [--alert-seconds 60]
        [--limit 300] [--workers 3] [--urgent-workers 1]
        [--designs today,urgent-lanes,digests]

It creates its own database (`<DATABASE_URL's name>_bench_urgent`), starts the minimal
fake Send API (bench/fake_send_api.py) and Celery worker processes, as bench/delivery.py
does, and runs each design in turn on a Page of its own, limited to `--limit` calls/s.
`--workers` processes consume every queue but the urgent one, and `--urgent-workers` (1)
more, in a worker of their own, consume only the urgent queue, as deployed (compose's
`worker-urgent`); `--urgent-workers 0` runs every queue in the same `--workers` processes.
The design of before (`today`) has no urgent queue: its workers consume every queue.

1. `--notifications` routine card transactions are queued for `--people` linked
   customers (the same number each), and the workers start draining them;
2. `--alerts` fraud alerts are posted through the events API, spread evenly over the
   next `--alert-seconds`: half for people who have routine updates queued, half for
   people who have none;
3. when nothing is left to send, the fake Send API's record of calls gives: fraud alert
   accepted (stored) -> its Send API call, p50/p99/max; routine calls per second under
   backlog (from the first routine call until one second's worth at the limit was left to
   send: the rate the budget allows while work waits, which the target is about) and from
   the first to the last (the whole run, its draining tail included), as shares of the
   limit; the busiest one-second window of calls
   (sliding, at the fake Send API's arrival times, alerts included); and Send API calls
   per delivered notification (1.00 while every notification is its own message).

The designs: `urgent-lanes` is this code with digests off (urgent notifications claimed
and sent first, the Page's whole limit counted in any window of a second, with a reserve
only urgent calls take); `digests` is the same with digests on, as deployed (a person's
several routine updates on a backlogged Page go out as one message: fewer calls per
delivered notification). `today` stands for the design before: one class (the alerts are
queued routine, as every notification was) and no reserve, with the budget at the old
headroom of 90% of the limit (`NOTIFICATIONS_PAGE_RATE_HEADROOM` 0.9). Figures only:
nothing here asserts a time. A quick run: `--notifications 3000 --people 300
--alert-seconds 6`.
"""

import argparse
import json
import os
import sys
import time
from bisect import bisect_left
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankside.settings.test")

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from bench.delivery import (  # noqa: E402 - sets Django up
    Machine,
    event,
    open_left,
    percentile,
)

DESIGNS = {
    # name: (worker settings, every notification routine)
    "today": (
        {
            "BENCH_PAGE_RATE_HEADROOM": "0.9",
            "BENCH_PAGE_URGENT_RESERVE": "0",
            "NOTIFICATIONS_DIGESTS": "false",
        },
        True,
    ),
    "urgent-lanes": ({"NOTIFICATIONS_DIGESTS": "false"}, False),
    "digests": ({"NOTIFICATIONS_DIGESTS": "true"}, False),
}
PAGE_PREFIX = "91000000"


@dataclass
class Figures:
    design: str
    alerts: int
    reached: int
    p50: float
    p99: float
    worst: float
    worst_queued: float  # the alerts for people with routine updates queued
    worst_free: float  # the alerts for people without
    routine_calls: int
    routine_rate: float  # first to last
    backlog_rate: float  # until a second's worth at the limit was left
    busiest: int
    calls: int
    delivered: int
    drained: float


def load(bank, notifications: int, people: int) -> int:
    """`notifications` routine card transactions, the same number for each of `people`."""
    from notifications.services import event_ingest
    from portal.audit import Actor

    actor = Actor.system("benchmark")
    per_person = max(1, notifications // people)
    events = [event(n, "transaction.posted")[1] for _ in range(per_person) for n in range(people)]
    total = 0
    for start in range(0, len(events), 1000):
        report = event_ingest(actor=actor, bank=bank, events=events[start : start + 1000])
        total += report.count("accepted")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return total


def alerts_post(bank, secret: str, *, people: int, alerts: int, seconds: float, routine: bool):
    """Post the fraud alerts one at a time, evenly over `seconds`; returns their marks.

    Even ones go to people with routine updates queued, odd ones to people without.
    `routine`: queued as routine notifications, as the one-class design did.
    """
    from portal.policies import PolicyRules

    client = Client()
    marks: list[str] = []
    started = time.monotonic()
    one_class = (
        mock.patch.object(PolicyRules, "is_urgent", property(lambda self: False))
        if routine
        else nullcontext()
    )
    with one_class:
        for i in range(alerts):
            pause = started + (i + 0.5) * seconds / alerts - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            n = (i // 2) * max(1, people // alerts) if i % 2 == 0 else people + i // 2
            mark, payload = event(n % people if i % 2 == 0 else n)
            response = client.post(
                "/api/v1/events",
                json.dumps({"events": [payload]}),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {secret}",
            )
            if response.status_code != 202:
                raise SystemExit(f"unexpected {response.status_code}: {response.content[:300]!r}")
            marks.append(mark)
    return marks


def run(machine: Machine, design: str, index: int, args: argparse.Namespace) -> Figures:
    from bench.people import bank_on_page, unlimited_api_key
    from notifications.models import Event, Notification
    from notifications.tasks import deliver_due

    env, one_class = DESIGNS[design]
    urgent_processes = 0 if one_class else args.urgent_workers
    page = f"{PAGE_PREFIX}{index}"
    bank = bank_on_page(
        f"bench-urgent-{index}",
        page,
        args.people + args.alerts,
        scopes=["fraud_alerts", "transactions"],
        psid=lambda n: f"{index + 5}{n:09d}",
        purpose="bench",
    )
    secret = unlimited_api_key(bank, name="Benchmark", actor="benchmark")
    queued = load(bank, args.notifications, args.people)
    skip = len(machine.calls())
    machine.start_workers(
        args.workers,
        urgent_processes=urgent_processes,
        BENCH_PAGE_RATE_LIMITS=json.dumps({page: args.limit}),
        **env,
    )
    started = time.monotonic()
    for _ in range(args.workers):
        deliver_due.delay()
    time.sleep(1.0)  # the backlog is draining when the first alert comes in
    marks = alerts_post(
        bank,
        secret,
        people=args.people,
        alerts=args.alerts,
        seconds=args.alert_seconds,
        routine=one_class,
    )
    deadline = time.monotonic() + args.timeout
    while open_left(bank=bank):
        if machine.api.poll() is not None:  # stopped from outside: no figure would be true
            raise SystemExit(f"{design}: the fake Send API stopped ({machine.api.returncode})")
        if time.monotonic() > deadline:
            raise SystemExit(f"{design}: the Page did not drain in {args.timeout:.0f} s")
        time.sleep(0.1)
    drained = time.monotonic() - started
    machine.stop_workers()

    calls = [(moment, mark) for moment, p, mark in machine.calls()[skip:] if p == page]
    accepted = dict(Event.objects.filter(event_id__in=marks).values_list("event_id", "received_at"))
    arrived: dict[str, float] = {}
    for moment, mark in calls:
        if mark in accepted:
            arrived.setdefault(mark, moment)
    latency = {m: arrived[m] - accepted[m].timestamp() for m in marks if m in arrived}
    latencies = list(latency.values())
    queued_for = [latency[m] for m in marks[0::2] if m in latency]  # see alerts_post
    free_for = [latency[m] for m in marks[1::2] if m in latency]
    routine = sorted(moment for moment, mark in calls if mark not in accepted)
    moments = sorted(moment for moment, _ in calls)
    busiest = max((bisect_left(moments, m + 1.0) - i for i, m in enumerate(moments)), default=0)
    span = routine[-1] - routine[0] if len(routine) > 1 else float("nan")
    # Under backlog: until the last second's worth of calls at the limit was left to send,
    # when every routine notification left could already be in some worker's hands.
    under = routine[: max(2, len(routine) - args.limit)]
    under_span = under[-1] - under[0] if len(under) > 1 else float("nan")
    delivered = Notification.objects.filter(bank=bank, state__in=Notification.SENT_STATES).count()
    if delivered < queued + len(marks):
        print(f"  ({design}: {delivered} of {queued + len(marks)} notifications were sent)")
    return Figures(
        design=design,
        alerts=len(marks),
        reached=len(latencies),
        p50=percentile(latencies, 0.5) if latencies else float("nan"),
        p99=percentile(latencies, 0.99) if latencies else float("nan"),
        worst=max(latencies, default=float("nan")),
        worst_queued=max(queued_for, default=float("nan")),
        worst_free=max(free_for, default=float("nan")),
        routine_calls=len(routine),
        routine_rate=(len(routine) - 1) / span,
        backlog_rate=(len(under) - 1) / under_span,
        busiest=busiest,
        calls=len(calls),
        delivered=delivered,
        drained=drained,
    )


def report(figures: list[Figures], args: argparse.Namespace) -> None:
    limit = args.limit
    print(
        f"\nUrgent first: one Page at {limit} calls/s, {args.workers} worker processes "
        f"and {args.urgent_workers} on the urgent queue alone (none for today's design), "
        f"{args.notifications} routine notifications for {args.people} people, then "
        f"{args.alerts} fraud alerts over {args.alert_seconds:.0f} s"
    )
    rows = [
        ("fraud alerts reaching the Send API", lambda f: f"{f.reached} of {f.alerts}"),
        ("alert accepted -> call, p50", lambda f: f"{f.p50 * 1000:.0f} ms"),
        ("alert accepted -> call, p99 (< 1 s)", lambda f: f"{f.p99 * 1000:.0f} ms"),
        ("alert accepted -> call, max (< 2 s)", lambda f: f"{f.worst * 1000:.0f} ms"),
        (
            "  max: routine queued / none",
            lambda f: f"{f.worst_queued * 1000:.0f} / {f.worst_free * 1000:.0f} ms",
        ),
        (
            "routine calls/s under backlog (>= 97%)",
            lambda f: f"{f.backlog_rate:.1f} ({f.backlog_rate / limit:.1%})",
        ),
        (
            "routine calls/s, first to last",
            lambda f: f"{f.routine_rate:.1f} ({f.routine_rate / limit:.1%})",
        ),
        (f"busiest 1-s window (<= {limit})", lambda f: f"{f.busiest} calls"),
        (
            "Send API calls per delivered notification",
            lambda f: f"{f.calls / max(1, f.delivered):.3f} ({f.calls} / {f.delivered})",
        ),
        ("drained in", lambda f: f"{f.drained:.1f} s"),
    ]
    width = max(len(name) for name, _ in rows) + 2
    print(" " * width + "".join(f"{f.design:>22}" for f in figures))
    for name, cell in rows:
        print(f"{name:<{width}}" + "".join(f"{cell(f):>22}" for f in figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=30_000)
    parser.add_argument("--people", type=int, default=3_000)
    parser.add_argument("--alerts", type=int, default=50)
    parser.add_argument("--alert-seconds", type=float, default=60.0)
    parser.add_argument("--limit", type=int, default=300, help="the Page's calls per second")
    parser.add_argument("--workers", type=int, default=3, help="worker processes")
    parser.add_argument(
        "--urgent-workers",
        type=int,
        default=1,
        help="worker processes on the urgent queue alone (0: every queue in --workers)",
    )
    parser.add_argument("--designs", default="today,urgent-lanes,digests")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    designs = [d for d in args.designs.split(",") if d]
    unknown = set(designs) - set(DESIGNS)
    if unknown or not designs:
        parser.error(f"--designs: choose from {', '.join(DESIGNS)}")
    if args.people < 1 or args.notifications < args.people or args.alerts < 1:
        parser.error("need at least one person, a notification per person and one alert")

    with Machine.running("urgent", "urgent-first", page_prefix=PAGE_PREFIX) as machine:
        figures = [run(machine, design, i, args) for i, design in enumerate(designs)]
        report(figures, args)


if __name__ == "__main__":
    main()
