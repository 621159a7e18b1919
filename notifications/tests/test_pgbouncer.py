"""Through a real PgBouncer in transaction mode (Debian's `pgbouncer`, started here):
events ingested by several clients at once, delivered (claims, results, audit entries),
the audit chain intact, with fewer server sessions than clients, under the settings
`DATABASE_POOLER=pgbouncer` gives. And why those settings: the hot paths' prepared
statements, left on, break as soon as two clients share a server session.
"""

import threading
import time
from types import SimpleNamespace

import pytest
from django.db import DatabaseError, connection, connections
from rest_framework.test import APIClient

from bankside.settings.base import database_pooled
from core.tests.pgbouncer import pgbouncer_running, pgbouncer_show
from notifications import services
from notifications.models import Notification
from notifications.tests.factories import event_payload
from notifications.tests.test_delivery import EVENTS
from portal.models import AuditEvent
from portal.selectors import audit_chains_verify
from portal.tests.factories import api_key_for

SERVER_SESSIONS = 1  # every client's transactions take turns on one server session


@pytest.fixture
def through_pgbouncer(transactional_db, settings):
    """Django's connections, this thread's and every other's, go through PgBouncer."""
    direct = dict(connection.settings_dict)
    with pgbouncer_running(direct, pool_size=SERVER_SESSIONS) as port:
        connections.close_all()
        connection.settings_dict.update(
            database_pooled({**direct, "HOST": "127.0.0.1", "PORT": port}, "pgbouncer")
        )
        settings.DATABASE_PREPARED_STATEMENTS = False  # what DATABASE_POOLER=pgbouncer sets
        try:
            yield SimpleNamespace(port=port, user=direct["USER"] or "postgres")
        finally:
            connections.close_all()
            connection.settings_dict.clear()
            connection.settings_dict.update(direct)


def in_thread(work):
    """Run `work` on a connection of its own (another PgBouncer client); re-raise."""
    failures = []

    def run():
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            failures.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, failures


def test_ingest_delivery_and_the_audit_chain_through_pgbouncer(linked, graph, through_pgbouncer):
    people = [linked.person()[0] for _ in range(6)]
    secret = api_key_for(linked.bank).secret

    def core_posts(accounts):
        def work():
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
            for account in accounts:
                events = [
                    event_payload("transaction.posted", account=account),
                    event_payload("fraud.alert", account=account),
                ]
                response = api.post(EVENTS, {"events": events}, format="json")
                assert response.status_code == 202, response.content
                assert response.json()["accepted"] == 2

        return work

    posting = [in_thread(core_posts(people[n::3])) for n in range(3)]
    sent, deadline = 0, time.monotonic() + 120  # a bound, not a measure: never hang
    while any(thread.is_alive() for thread, _ in posting) or sent < 2 * len(people):
        sent += services.deliveries_run(seconds=0.2).claimed
        if time.monotonic() > deadline:
            break
    for thread, failures in posting:
        thread.join()
        assert failures == []

    states = set(Notification.objects.values_list("state", flat=True))
    assert states == {"sent"}
    assert len(graph.sent) == 2 * len(people)
    assert all(report.intact for report in audit_chains_verify(bank=linked.bank))
    # An export's rows, read outside a transaction as the exports read them.
    entries = AuditEvent.objects.filter(bank=linked.bank).order_by("pk")
    assert len(list(entries.iterator(chunk_size=5))) == entries.count() > 12

    assert connection.connection.info.port == through_pgbouncer.port
    name = connection.settings_dict["NAME"]
    servers = pgbouncer_show(through_pgbouncer.port, through_pgbouncer.user, "SERVERS")
    assert len([s for s in servers if s["database"] == name]) <= SERVER_SESSIONS
    (stats,) = [
        s
        for s in pgbouncer_show(through_pgbouncer.port, through_pgbouncer.user, "STATS")
        if s["database"] == name
    ]
    assert stats["total_xact_count"] > 2 * len(people)


def test_prepared_statements_break_once_two_clients_share_a_server_session(
    linked, through_pgbouncer, settings
):
    settings.DATABASE_PREPARED_STATEMENTS = True  # as if DATABASE_POOLER were not set
    other = linked.person()[0]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for(linked.bank).secret}")
    first = api.post(
        EVENTS, event_payload("transaction.posted", account=linked.card), format="json"
    )
    assert first.status_code == 202  # this client's statements are now prepared in the session

    def another_client():
        api.post(EVENTS, event_payload("transaction.posted", account=other), format="json")

    thread, failures = in_thread(another_client)
    thread.join()

    (failure,) = failures
    assert isinstance(failure, DatabaseError)
    assert "already exists" in str(failure)
