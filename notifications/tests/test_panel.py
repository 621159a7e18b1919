"""The deliveries panel on the bank's staff dashboard."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification
from notifications.selectors import deliveries_panel
from notifications.tests.factories import event_payload
from portal.dashboard import panels_for
from portal.tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db

State = Notification.State


def test_no_notifications_show_the_empty_state(linked):
    (panel,) = [
        p for p in panels_for(linked.bank, role="admin") if p.key == "notifications.deliveries"
    ]

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

    (panel,) = [
        p for p in panels_for(linked.bank, role="admin") if p.key == "notifications.deliveries"
    ]

    assert not panel.failed and panel.content is not None and len(panel.charts) == 2


def _failed(notification, *, state, hours_ago, attempts):
    from notifications.models import DeliveryAttempt

    now = timezone.now()
    for number, (outcome, code) in enumerate(attempts, start=1):
        DeliveryAttempt.objects.create(
            notification=notification,
            number=number,
            started_at=now - dt.timedelta(hours=hours_ago, minutes=10 - number),
            outcome=outcome,
            error_code=code,
        )
    Notification.objects.filter(pk=notification.pk).update(
        state=state,
        reason=Notification.Reason.BUDGET_EXHAUSTED
        if state == State.DEAD
        else Notification.Reason.REFUSED,
        detail="(#100) Invalid parameter",
        attempts=len(attempts),
        finished_at=now - dt.timedelta(hours=hours_ago),
    )


def test_recent_failures_list_each_failure_with_its_classified_reason(linked, linked_api, sign_in):
    people = [linked.person() for _ in range(3)]
    linked_api.post(
        "/api/v1/events",
        {"events": [event_payload("fraud.alert", account=a) for a, _ in people]},
        format="json",
    )
    dead, refused, old = Notification.objects.order_by("id")
    _failed(dead, state=State.DEAD, hours_ago=1, attempts=[("transient", 2), ("throttled", 4)])
    _failed(refused, state=State.FAILED, hours_ago=2, attempts=[("bad_request", 100)])
    _failed(old, state=State.DEAD, hours_ago=24 * 40, attempts=[("transient", 2)])

    (panel,) = [
        p for p in panels_for(linked.bank, role="operator") if p.key.endswith("recent_failures")
    ]

    table = panel.content.table
    assert [row[2] for row in table.rows] == [dead.event.event_id, refused.event.event_id]
    assert table.rows[0][3] == "Dead-lettered"
    assert table.rows[0][4] == "Throttled (error 4): The retry budget ran out"
    assert table.rows[1][4] == "Bad request (error 100): Messenger refused the message"
    operator = StaffMembershipFactory(bank=linked.bank, role="operator").user
    page = sign_in(operator).get(reverse("portal:dashboard", kwargs={"bank": linked.bank.slug}))
    html = page.content.decode()
    assert "Recent delivery failures" in html and "Throttled (error 4)" in html
    assert old.event.event_id not in html


def test_no_recent_failure_shows_the_empty_state(linked):
    (panel,) = [
        p for p in panels_for(linked.bank, role="operator") if p.key.endswith("recent_failures")
    ]

    assert panel.content is None and "No notification failed" in panel.empty


def test_the_panel_counts_uncertain_sends_settled_by_their_echo_and_resent(linked, linked_api):
    from notifications.models import MessageEcho

    for _ in range(3):
        linked_api.post(
            "/api/v1/events",
            event_payload("fraud.alert", account=linked.card),
            format="json",
        )
    first, second, third = Notification.objects.order_by("id")
    MessageEcho.objects.create(
        bank=linked.bank,
        page_id=first.page_id,
        recipient_ref="psid:x",
        mid="m_settled",
        source=MessageEcho.Source.BANKSIDE,
        outcome=MessageEcho.Outcome.SETTLED,
        notification=first,
        sent_at=timezone.now(),
    )
    Notification.objects.filter(pk=second.pk).update(resent=True)
    Notification.objects.filter(pk=third.pk).update(reason=Notification.Reason.AWAITING_ECHO)

    panel = deliveries_panel(linked.bank)

    assert (
        "uncertain sends in 30 days: 1 found sent by their echo, 1 resent once for want of "
        "one, 1 waiting for their echo" in panel.caption
    )
