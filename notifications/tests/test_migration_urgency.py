"""The migration that gives notifications a class: queued fraud alerts become urgent."""

from importlib import import_module

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from notifications.tests.migration_rows import linked_customer

BEFORE = [("notifications", "0010_conversation_moves_to_its_own_app")]
AFTER = [("notifications", "0011_notification_urgency")]


@pytest.fixture
def before_the_classes(transactional_db):
    """The schema as it was before; put back to the latest whatever happens."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    executor.loader.build_graph()
    yield executor.loader.project_state(BEFORE).apps
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_stored_fraud_alerts_become_urgent_and_everything_else_routine(
    before_the_classes, monkeypatch
):
    apps = before_the_classes
    migration = import_module("notifications.migrations.0011_notification_urgency")
    monkeypatch.setattr(migration, "BATCH", 2)  # several batches for a few rows
    now = timezone.now()
    linked = linked_customer(apps)
    bank, customer, account, consent = linked.bank, linked.customer, linked.account, linked.consent
    Event = apps.get_model("notifications", "Event")
    Notification = apps.get_model("notifications", "Notification")
    types = ["transaction.posted", "fraud.alert", "balance.updated", "fraud.alert"]
    types.append("receipt.issued")
    for n, event_type in enumerate(types, 1):
        event = Event.objects.create(
            bank=bank,
            event_id=f"e-{n}",
            type=event_type,
            customer=customer,
            account=account,
            occurred_at=now,
            data={},
        )
        Notification.objects.create(
            bank=bank,
            event=event,
            consent=consent,
            account=account,
            event_type=event_type,
            page_id="1122334455",
            psid="71",
            sequence=n,
            state="sent" if n == 2 else "pending",
            locale="en",
        )

    MigrationExecutor(connection).migrate(AFTER)

    from notifications.models import Notification as Migrated

    assert list(Migrated.objects.order_by("sequence").values_list("urgency", flat=True)) == [
        "routine",
        "urgent",
        "routine",
        "urgent",
        "routine",
    ]
