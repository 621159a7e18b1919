"""The floor of open notifications (PostgreSQL): claims, a person's queue and the sweeps
look only at the months that may hold open notifications, so a year of kept months costs
them nothing, and a notification opened in an older month (a replay, a late event) is
still sent."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.urls import reverse
from django.utils import timezone

from core.db import partitions
from core.db.partitions import Month
from notifications import services
from notifications.models import Notification, OpenFloor
from notifications.services.delivery.claim import _ClaimSql
from notifications.services.queue import open_floor, open_floor_raise
from notifications.tests.conftest import graph_error
from notifications.tests.months import event_in, months_made, notifications_written
from portal.tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions are PostgreSQL's"
)

State = Notification.State
NOTIFICATIONS = Notification._meta.db_table


def highest_floor() -> int:
    """Where the sweep may raise the floor today: this month's first id, or the month
    before during a month's first two days."""
    return Month.of(timezone.now() - timedelta(days=2)).first_id


def last_months_notification(linked, old_partitions, *, state):
    last_month = Month.of(timezone.now()) - 1
    if last_month not in old_partitions:
        months_made(last_month)
        old_partitions.append(last_month)
    (notification,) = notifications_written(linked, event_in(last_month, linked))
    Notification.objects.filter(pk=notification.pk).update(state=state)
    return last_month, notification


def deliver():
    return services.deliveries_run(seconds=0)


@pytest.mark.django_db(transaction=True)
def test_the_sweep_raises_the_floor_past_months_with_nothing_open(linked, old_partitions):
    _, sent = last_months_notification(linked, old_partitions, state=State.SENT)

    services.outbox_sweep()

    assert open_floor() == highest_floor()
    assert OpenFloor.objects.get().first_id == highest_floor()
    assert sent.pk < open_floor()


@pytest.mark.django_db(transaction=True)
def test_an_open_notification_keeps_its_month_above_the_floor(linked, old_partitions):
    last_month, pending = last_months_notification(linked, old_partitions, state=State.PENDING)

    services.outbox_sweep()

    assert open_floor() == last_month.first_id
    Notification.objects.filter(pk=pending.pk).update(state=State.SENT)
    services.outbox_sweep()
    assert open_floor() == highest_floor()


@pytest.mark.django_db(transaction=True)
def test_a_replayed_dead_letter_of_last_month_is_sent(
    linked, old_partitions, graph, client, sign_in
):
    last_month, dead = last_months_notification(linked, old_partitions, state=State.DEAD)
    services.outbox_sweep()
    assert dead.pk < open_floor()
    sign_in(StaffMembershipFactory(bank=linked.bank, role="operator").user)

    response = client.post(
        reverse(
            "deliveries:dead_letter_replay",
            kwargs={"bank": linked.bank.slug, "notification": dead.pk},
        )
    )
    deliver()

    assert response.status_code == 302
    assert open_floor() == last_month.first_id
    dead.refresh_from_db()
    assert dead.state == State.SENT
    assert len(graph.sent) == 1


@pytest.mark.django_db(transaction=True)
def test_an_event_of_last_month_written_late_is_sent(linked, old_partitions, graph):
    months_made(Month.of(timezone.now()) - 1)
    old_partitions.append(Month.of(timezone.now()) - 1)
    services.outbox_sweep()
    assert open_floor() == highest_floor()

    (late,) = notifications_written(linked, event_in(Month.of(timezone.now()) - 1, linked))
    deliver()

    late.refresh_from_db()
    assert late.state == State.SENT
    assert graph.sent


@pytest.mark.django_db(transaction=True)
def test_a_person_waits_behind_their_message_of_last_month(linked, old_partitions, graph):
    """The floor counts at once: a new message of the person stays behind last month's
    one reopened a moment ago, as it stays behind any earlier one."""
    _, older = last_months_notification(linked, old_partitions, state=State.SENT)
    services.outbox_sweep()
    (newer,) = notifications_written(linked, event_in(Month.of(timezone.now()), linked))
    Notification.objects.filter(pk=older.pk).update(state=State.PENDING)
    graph.answers = [graph_error(2, status=500, message="(#2) Service temporarily unavailable")]

    deliver()

    older.refresh_from_db()
    newer.refresh_from_db()
    assert older.state == State.PENDING and older.attempts == 1
    assert newer.state == State.PENDING and newer.attempts == 0
    assert len(graph.sent) == 1


@pytest.mark.django_db(transaction=True)
def test_the_sweep_waits_for_a_transaction_opening_an_older_notification(linked, old_partitions):
    """A replay of last month's dead letter still running while the sweep looks: the
    sweep sees its row once it commits, and leaves the floor below it."""
    last_month, dead = last_months_notification(linked, old_partitions, state=State.DEAD)
    services.outbox_sweep()
    opened, release = threading.Event(), threading.Event()
    raised: list[int] = []

    def replay():
        try:
            with transaction.atomic():
                Notification.objects.filter(pk=dead.pk).update(state=State.PENDING)
                opened.set()
                release.wait(10)
        finally:
            connections.close_all()

    def sweep():
        try:
            raised.append(open_floor_raise())
        finally:
            connections.close_all()

    # Left at this month, the sweep would have nothing to raise and would not look.
    OpenFloor.objects.filter(pk=1).update(first_id=last_month.first_id)
    replaying = threading.Thread(target=replay)
    replaying.start()
    assert opened.wait(10)
    sweeping = threading.Thread(target=sweep)
    sweeping.start()
    sweeping.join(0.5)
    release.set()
    replaying.join(10)
    sweeping.join(10)

    assert raised == [last_month.first_id]
    assert open_floor() == last_month.first_id


@pytest.mark.django_db
def test_a_claim_plans_only_the_months_that_may_hold_open_notifications(linked, old_partitions):
    """From the floor to this month (the next one too on a month's last day): neither
    the months kept behind nor the ones made ahead."""
    this = Month.of(timezone.now())
    months_made(this - 1)
    old_partitions.append(this - 1)
    services.partitions_create_ahead(ahead=2)
    OpenFloor.objects.filter(pk=1).update(first_id=this.first_id)
    now = timezone.now()

    statement, params = _ClaimSql.for_now(now).claim(owner="w", limit=10, now=now, lease_seconds=30)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {statement}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert partitions.partition_name(NOTIFICATIONS, this) in plan
    assert partitions.partition_name(NOTIFICATIONS, this + 2) not in plan
    assert partitions.partition_name(NOTIFICATIONS, this - 1) not in plan
    assert partitions.partition_name(NOTIFICATIONS, None) not in plan


@pytest.mark.django_db(transaction=True)
def test_without_its_row_the_floor_is_the_first_month_and_the_sweep_makes_it_again(linked):
    OpenFloor.objects.all().delete()

    assert open_floor() == 0
    services.outbox_sweep()
    assert OpenFloor.objects.get().first_id == open_floor() <= highest_floor()
