"""Benchmark: events ingest through the real API against the real PostgreSQL.

Run with `make bench`. It creates its own database (`<DATABASE_URL's name>_bench`),
migrates it, posts through Django's full request stack (middleware, authentication,
rate limit, DRF, services) with the test client, prints the figures and drops the
database. Figures only: nothing here asserts a time.

    python bench/ingest.py [--batches 20] [--batch-size 1000] [--singles 2000]
"""

import argparse
import itertools
import json
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankside.settings.test")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

CUSTOMERS = 100
_ids = itertools.count(1)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def make_event(accounts: list[tuple[str, str]], n: int) -> dict:
    from notifications.api.schemas import EXAMPLE_EVENTS

    customer_id, account_id = accounts[n % len(accounts)]
    template = list(EXAMPLE_EVENTS.values())[n % len(EXAMPLE_EVENTS)]
    return {
        **template,
        "id": f"bench-{next(_ids)}",
        "customer_id": customer_id,
        "account_id": account_id,
    }


def setup_bank() -> tuple[str, list[tuple[str, str]]]:
    from bench.people import unlimited_api_key
    from linking.services import customer_upsert
    from portal.audit import Actor
    from portal.tests.factories import BankFactory

    actor = Actor.system("benchmark")
    bank = BankFactory(slug="bench")
    secret = unlimited_api_key(bank, name="Benchmark", actor="benchmark")
    accounts = []
    for n in range(CUSTOMERS):
        customer_upsert(
            actor=actor,
            bank=bank,
            external_id=f"cu-{n}",
            name=f"Customer {n}",
            locale="en",
            accounts=[
                {
                    "id": "visa-001",
                    "kind": "credit_card",
                    "name": "Visa",
                    "last4": "9012",
                    "currency": "EUR",
                    "balance": "0",
                },
                {
                    "id": "chk-001",
                    "kind": "checking",
                    "name": "Current",
                    "last4": "4821",
                    "currency": "EUR",
                    "balance": "0",
                },
            ],
        )
        accounts += [(f"cu-{n}", "visa-001"), (f"cu-{n}", "chk-001")]
    return secret, accounts


def post(client: Client, secret: str, body: dict) -> tuple[float, dict]:
    payload = json.dumps(body)
    started = time.perf_counter()
    response = client.post(
        "/api/v1/events",
        payload,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 202:
        raise SystemExit(f"unexpected {response.status_code}: {response.content[:500]!r}")
    return elapsed, response.json()


def run(batches: int, batch_size: int, singles: int) -> None:
    client = Client()
    secret, accounts = setup_bank()
    for _ in range(3):  # warm-up: imports, connections, caches
        post(client, secret, {"events": [make_event(accounts, n) for n in range(50)]})

    latencies = []
    for _ in range(batches):
        events = [make_event(accounts, n) for n in range(batch_size)]
        elapsed, body = post(client, secret, {"events": events})
        assert body["accepted"] == batch_size, body["rejected"]
        latencies.append(elapsed)
    total = sum(latencies)
    print(f"\nBatches: {batches} x {batch_size} events")
    print(f"  throughput      {batches * batch_size / total:10.0f} events/s")
    print(f"  latency p50     {percentile(latencies, 0.5) * 1000:10.1f} ms per batch")
    print(f"  latency p95     {percentile(latencies, 0.95) * 1000:10.1f} ms per batch")

    events = [make_event(accounts, n) for n in range(batch_size)]
    with CaptureQueriesContext(connection) as queries:
        post(client, secret, {"events": events})
    print(f"  queries         {len(queries):10d} per batch (whole request)")
    elapsed, body = post(client, secret, {"events": events})
    assert body["duplicates"] == batch_size
    print(f"  all duplicates  {elapsed * 1000:10.1f} ms for a batch re-posted")

    tracemalloc.start()
    post(client, secret, {"events": [make_event(accounts, n) for n in range(batch_size)]})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  peak memory     {peak / 2**20:10.1f} MiB traced for one batch (tracemalloc)")

    latencies = []
    for n in range(singles):
        elapsed, body = post(client, secret, make_event(accounts, n))
        assert body["accepted"] == 1
        latencies.append(elapsed)
    print(f"\nSingle events: {singles} posts, one at a time")
    print(f"  throughput      {singles / sum(latencies):10.0f} events/s")
    print(f"  latency p50     {percentile(latencies, 0.5) * 1000:10.2f} ms")
    print(f"  latency p95     {percentile(latencies, 0.95) * 1000:10.2f} ms")
    print(f"  latency mean    {statistics.fmean(latencies) * 1000:10.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--singles", type=int, default=2000)
    args = parser.parse_args()

    database = settings.DATABASES["default"]
    if database["ENGINE"] != settings.POSTGRESQL_ENGINE:
        raise SystemExit("The benchmark runs against PostgreSQL: set DATABASE_URL=postgres://…")
    # As in production (DATABASE_CONN_MAX_AGE): requests reuse their connection; the test
    # settings close it after every request, which would measure connecting instead.
    database["CONN_MAX_AGE"] = 60
    database["TEST"] = {**database.get("TEST", {}), "NAME": f"{database['NAME']}_bench"}
    setup_test_environment()
    settings.DEBUG = False
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    print(f"bankside ingest benchmark on PostgreSQL database {name}")
    try:
        run(args.batches, args.batch_size, args.singles)
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
