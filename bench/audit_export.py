"""Benchmark: streaming exports of the audit log (CSV and JSON Lines) against PostgreSQL.

Run with `make bench-audit`. It creates its own database (`<DATABASE_URL's name>_audit_bench`),
seeds one bank's chain with valid hash-chained entries, downloads the whole log through
Django's full request stack as an auditor would, prints time and peak traced memory
(tracemalloc) and drops the database. Figures only: nothing here asserts a time.

    python bench/audit_export.py [--entries 100000]
"""

import argparse
import os
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankside.settings.test")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

BATCH = 5000


def seed(entries: int):
    """A bank whose chain holds `entries` entries, written in bulk with correct hashes."""
    from portal.audit import GENESIS_HASH, entry_hash
    from portal.models import AuditChain, AuditEvent, StaffMembership
    from portal.tests.factories import BankFactory, StaffMembershipFactory

    bank = BankFactory(slug="bench")
    auditor = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.AUDITOR).user
    key = AuditChain.scope_for(bank)
    chain = AuditChain.objects.create(key=key, scope=key, lane=0, bank=bank)
    start = timezone.now() - timedelta(days=30)
    prev, batch = GENESIS_HASH, []
    for seq in range(1, entries + 1):
        fields = {
            "seq": seq,
            "bank_id": bank.pk,
            "occurred_at": start + timedelta(seconds=seq),
            "actor_type": "staff",
            "actor_id": str(seq % 50),
            "actor_label": f"staff{seq % 50}",
            "action": ("consent.granted", "config.changed", "message.sent")[seq % 3],
            "target_type": "linking.consent",
            "target_id": str(seq % 5000),
            "request_id": f"req-{seq:08d}",
            "source_ip": "192.0.2.10",
            "details": {"n": seq, "scopes": ["balances", "transactions"], "note": "x" * 40},
            "data_categories": ["balances"],
            "prev_hash": prev,
        }
        prev = entry_hash(chain_key=key, **fields)
        batch.append(AuditEvent(chain=chain, hash=prev, **fields))
        if len(batch) == BATCH:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)
    AuditChain.objects.filter(pk=chain.pk).update(head_seq=entries, head_hash=prev)
    return bank, auditor


def download(client: Client, url: str) -> tuple[int, int]:
    response = client.get(url)
    if response.status_code != 200 or not response.streaming:
        raise SystemExit(f"unexpected {response.status_code} for {url}")
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    return size, lines


def run(entries: int) -> None:
    started = time.perf_counter()
    with transaction.atomic():
        bank, auditor = seed(entries)
    print(f"seeded {entries} entries in {time.perf_counter() - started:.1f} s")
    client = Client()
    client.force_login(auditor)
    for fmt in ("csv", "jsonl"):
        url = reverse(f"portal:audit_export_{fmt}", kwargs={"bank": bank.slug})
        started = time.perf_counter()
        size, lines = download(client, url)
        elapsed = time.perf_counter() - started
        tracemalloc.start()
        download(client, url)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"\n{fmt.upper()} export of {entries} entries ({lines} lines, {size / 2**20:.1f} MiB)"
        )
        print(f"  time            {elapsed:10.2f} s ({entries / elapsed:,.0f} entries/s)")
        print(f"  peak memory     {peak / 2**20:10.1f} MiB traced (tracemalloc)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()

    database = settings.DATABASES["default"]
    if database["ENGINE"] != settings.POSTGRESQL_ENGINE:
        raise SystemExit("The benchmark runs against PostgreSQL: set DATABASE_URL=postgres://…")
    database["CONN_MAX_AGE"] = 60
    database["TEST"] = {**database.get("TEST", {}), "NAME": f"{database['NAME']}_audit_bench"}
    setup_test_environment()
    settings.DEBUG = False
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    print(f"bankside audit export benchmark on PostgreSQL database {name}")
    try:
        run(args.entries)
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
