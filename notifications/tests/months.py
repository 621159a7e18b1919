"""Rows in a month of one's choosing, and that month's partitions, for the tests of the
tables partitioned by month (PostgreSQL)."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.db import partitions
from core.db.partitions import Month
from notifications.models import DeliveryAttempt, Event, Notification, Outcome
from notifications.services import partitions as partitioned
from notifications.tests.factories import EventFactory

EVENTS = Event._meta.db_table
ALL = (EVENTS, Notification._meta.db_table, Outcome._meta.db_table, DeliveryAttempt._meta.db_table)


def months_made(month: Month) -> None:
    """Every partitioned table's partition for `month`, as beat makes them."""
    for table in partitioned.TABLES:
        table.partitions_create([month])


@pytest.fixture
def old_partitions():
    """Partitions a test makes for past months, dropped afterwards if still there
    (a transactional test's DDL outlives it)."""
    made: list[Month] = []
    yield made
    with connection.cursor() as cursor:
        for month in made:
            for table in ALL:
                cursor.execute(f"DROP TABLE IF EXISTS {partitions.partition_name(table, month)}")


def event_in(month: Month, linked, *, event_id=None, **fields):
    """A stored event received in `month` (its id taken as at that moment), with its key."""
    at = month.start + timedelta(days=2, hours=12)
    return EventFactory(
        id=partitions.month_id(EVENTS, at),
        bank=linked.bank,
        account=linked.card,
        event_id=event_id or f"evt-{uuid.uuid4().hex[:12]}",
        type="transaction.posted",
        occurred_at=at,
        received_at=at,
        data={"amount": "12.00", "currency": "EUR", "merchant": "Shop"},
        status="processed",
        **fields,
    )


def notifications_written(linked, event):
    """Run the delivery rules on a stored `event`, as the ingest does, and write them."""
    from core.db.rows import statements_run
    from notifications.services.outbox import AcceptedEvent, outbox_plan

    plan = outbox_plan(
        bank=linked.bank,
        events=[
            AcceptedEvent(
                pk=event.pk,
                type=event.type,
                customer_id=event.customer_id,
                account_id=event.account_id,
                occurred_at=event.occurred_at,
                data=event.data,
            )
        ],
        now=timezone.now(),
    )
    statements_run(plan.statements)
    return list(Notification.objects.filter(event=event))
