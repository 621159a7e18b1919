"""The deliveries panel on the bank's staff dashboard."""

import datetime as dt

import pytest
from django.utils import timezone

from notifications.models import Notification
from notifications.selectors import deliveries_panel
from notifications.tests.factories import event_payload
from portal.dashboard import panels_for

pytestmark = pytest.mark.django_db

State = Notification.State


def test_no_notifications_show_the_empty_state(linked):
    (panel,) = [p for p in panels_for(linked.bank, role="admin") if p.key.startswith("notif")]

    assert panel.content is None and "No notifications yet" in panel.empty


def test_the_panel_counts_sent_and_failed_over_24_hours_and_30_days(linked, linked_api):
    people = [linked.person() for _ in range(5)]
    linked_api.post(
        "/api/v1/events",
        {"events": [event_payload("fraud.alert", account=a) for a, _ in people]},
        format="json",
    )
    now = timezone.now()
    rows = list(Notification.objects.order_by("id"))
    for row, (state, hours_ago) in zip(
        rows,
        [(State.READ, 1), (State.DELIVERED, 2), (State.SENT, 3), (State.SENT, 24 * 3)],
        strict=False,
    ):
        Notification.objects.filter(pk=row.pk).update(
            state=state, sent_at=now - dt.timedelta(hours=hours_ago)
        )
    Notification.objects.filter(pk=rows[4].pk).update(
        state=State.DEAD, finished_at=now - dt.timedelta(hours=1)
    )

    content = deliveries_panel(linked.bank)

    assert content.value == 3
    assert "1 failed" in content.caption
    day, month = content.charts
    totals = {s.name: sum(s.values) for s in day.series}
    assert totals == {
        "Read": 1,
        "Delivered": 1,
        "Sent, no receipt yet": 1,
        "Failed or dead-lettered": 1,
    }
    assert len(day.labels) == 24 and len(month.labels) == 30
    assert sum(sum(s.values) for s in month.series) == 5


def test_the_dashboard_shows_the_panel(linked, linked_api):
    linked_api.post(
        "/api/v1/events", event_payload("fraud.alert", account=linked.card), format="json"
    )

    (panel,) = [p for p in panels_for(linked.bank, role="admin") if p.key.startswith("notif")]

    assert not panel.failed and panel.content is not None and len(panel.charts) == 2
