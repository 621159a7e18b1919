"""The migration that partitions events and notifications by month (PostgreSQL): stored
rows become the legacy partitions and keep every rule they had: an event id still a
duplicate, one notification per event and link, one message in flight per person."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.tests.migrations import migrate_to, schema_at
from notifications.tests.migration_rows import linked_customer

BEFORE = [
    ("notifications", "0016_outcomes_and_attempts_partitioned_by_month"),
    ("conversation", "0008_inbox_triage"),
]
AFTER = [
    ("notifications", "0017_events_and_notifications_partitioned_by_month"),
    ("conversation", "0009_events_and_notifications_partitioned_by_month"),
]

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions are PostgreSQL's"
)


@pytest.fixture
def before_partitions(transactional_db):
    """The schema before events and notifications were partitioned; put back to the
    latest whatever happens."""
    with schema_at(BEFORE) as apps:
        yield apps


def partition_of(table, pk):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def stored_before(apps):
    """A bank's event with two notifications, one of them in flight, as the old code
    stored them."""
    now = timezone.now()
    linked = linked_customer(apps)
    bank, customer, account, consent = linked.bank, linked.customer, linked.account, linked.consent
    event_model = apps.get_model("notifications", "Event")
    notification_model = apps.get_model("notifications", "Notification")
    events = [
        event_model.objects.create(
            bank=bank,
            event_id=f"evt-{n}",
            type="fraud.alert",
            customer=customer,
            account=account,
            occurred_at=now,
            data={},
            status="processed",
        )
        for n in (1, 2)
    ]
    notifications = [
        notification_model.objects.create(
            bank=bank,
            event=event,
            consent=consent,
            account=account,
            event_type="fraud.alert",
            page_id="1122334455",
            psid="71",
            sequence=n,
            state=state,
            locale="en",
        )
        for n, (event, state) in enumerate(zip(events, ("in_flight", "pending"), strict=True), 1)
    ]
    return bank, consent, events, notifications


def test_stored_rows_become_the_legacy_partitions_and_keep_their_rules(before_partitions):
    bank, consent, events, notifications = stored_before(before_partitions)

    migrate_to(AFTER)

    from notifications.models import Event, EventKey, InFlight, Notification

    assert partition_of("notifications_event", events[0].pk) == "notifications_event_legacy"
    assert (
        partition_of("notifications_notification", notifications[0].pk)
        == "notifications_notification_legacy"
    )
    assert {(k.reference, k.event_id) for k in EventKey.objects.filter(bank_id=bank.pk)} == {
        ("evt-1", events[0].pk),
        ("evt-2", events[1].pk),
    }
    assert [(f.page_id, f.psid, f.notification_id) for f in InFlight.objects.all()] == [
        ("1122334455", "71", notifications[0].pk)
    ]
    # One message in flight per person, across the legacy partition and a new month.
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.filter(pk=notifications[1].pk).update(state="in_flight")
    # One notification per event and link, in the legacy partition; and a notification
    # lives in its event's month.
    second = {
        "bank_id": bank.pk,
        "event_id": events[0].pk,
        "consent_id": consent.pk,
        "account_id": events[0].account_id,
        "event_type": "fraud.alert",
        "page_id": "1122334455",
        "psid": "71",
        "sequence": 9,
        "locale": "en",
    }
    with (
        pytest.raises(IntegrityError, match="notification_in_its_events_month"),
        transaction.atomic(),
    ):
        Notification.objects.create(**second)  # this month's id, a legacy event
    with pytest.raises(IntegrityError, match="one_notification_per_link"), transaction.atomic():
        Notification.objects.create(id=10**9, **second)  # in the legacy partition
    # A new event takes this month's partition, and an old id is still a duplicate.
    from notifications.services import event_ingest
    from notifications.tests.factories import event_payload
    from portal.audit import Actor
    from portal.models import Bank

    report = event_ingest(
        actor=Actor.system("test"),
        bank=Bank.objects.get(pk=bank.pk),
        events=[
            event_payload(account=events[0].account, id="evt-1"),
            event_payload(account=events[0].account, id="evt-3"),
        ],
    )
    assert [r.status for r in report.results] == ["duplicate", "accepted"]
    new = Event.objects.get(event_id="evt-3")
    assert partition_of("notifications_event", new.pk).startswith("notifications_event_20")


def test_it_is_undone_with_every_row_and_constraint_back(before_partitions):
    _, _, events, notifications = stored_before(before_partitions)
    migrate_to(AFTER)

    migrate_to(BEFORE)

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM notifications_event")
        assert cursor.fetchone()[0] == 2
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = 'notifications_event'::regclass")
        assert cursor.fetchone()[0] == "r"  # a plain table again
        with pytest.raises(IntegrityError), transaction.atomic():
            cursor.execute(
                "INSERT INTO notifications_event (bank_id, event_id, type, customer_id,"
                " account_id, occurred_at, data, received_at, status)"
                " SELECT bank_id, event_id, type, customer_id, account_id, occurred_at, data,"
                " received_at, status FROM notifications_event WHERE id = %s",
                [events[0].pk],
            )
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'notifications_notification'"
            " AND indexname LIKE 'one_%%'"
        )
        assert sorted(n for (n,) in cursor.fetchall()) == [
            "one_in_flight_per_person",
            "one_notification_per_link",
        ]
        cursor.execute("SELECT id, state FROM notifications_notification ORDER BY id")
        assert cursor.fetchall() == [
            (notifications[0].pk, "in_flight"),
            (notifications[1].pk, "pending"),
        ]
        with pytest.raises(IntegrityError), transaction.atomic():
            cursor.execute(
                "UPDATE notifications_notification SET state = 'in_flight' WHERE id = %s",
                [notifications[1].pk],
            )
