"""Delivery and read receipts reach the bank's outcome feed: one entry per notification
that changed state, none for a receipt repeated."""

import time

import pytest
from django.utils import timezone

from notifications import services
from notifications.models import Notification, Outcome
from notifications.services.delivery import Result, results_record
from notifications.services.delivery.claim import _claim, _jobs
from notifications.tests.factories import event_payload
from notifications.tests.test_status import webhook

pytestmark = pytest.mark.django_db

State, Type = Notification.State, Outcome.Type
DELIVERED, READ = Type.NOTIFICATION_DELIVERED, Type.NOTIFICATION_READ


@pytest.fixture
def sent(linked, linked_api, graph):
    """Two messages sent to Ana, one after the other."""
    for kind in ("fraud.alert", "transaction.posted"):
        linked_api.post("/api/v1/events", event_payload(kind, account=linked.card), format="json")
        services.deliveries_run(seconds=0)
    notifications = list(Notification.objects.order_by("sequence"))
    assert [n.state for n in notifications] == [State.SENT] * 2
    return notifications


def status_outcomes() -> list[tuple[str, int]]:
    return list(
        Outcome.objects.filter(type__in=(DELIVERED, READ))
        .order_by("id")
        .values_list("type", "notification_id")
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def test_a_delivery_receipt_writes_one_delivered_outcome(client, linked, sent):
    webhook(client, linked, {"delivery": {"mids": [sent[1].message_id], "watermark": 1}})

    assert status_outcomes() == [(DELIVERED, sent[1].pk)]
    outcome = Outcome.objects.get(type=DELIVERED)
    assert outcome.bank_id == linked.bank.pk
    assert (outcome.event_id, outcome.event_ref) == (sent[1].event_id, sent[1].event.event_id)
    assert outcome.event_type == "transaction.posted"


def test_a_repeated_delivery_receipt_writes_nothing_more(client, linked, sent):
    receipt = {"delivery": {"mids": [sent[0].message_id], "watermark": now_ms()}}

    webhook(client, linked, receipt)
    webhook(client, linked, receipt)

    assert status_outcomes() == [(DELIVERED, sent[0].pk), (DELIVERED, sent[1].pk)]


def test_a_read_receipt_writes_one_read_outcome_per_message(client, linked, sent):
    webhook(client, linked, {"delivery": {"mids": [sent[0].message_id], "watermark": 1}})

    webhook(client, linked, {"read": {"watermark": now_ms()}})
    webhook(client, linked, {"read": {"watermark": now_ms()}})

    assert status_outcomes() == [
        (DELIVERED, sent[0].pk),
        (READ, sent[0].pk),
        (READ, sent[1].pk),
    ]


def test_a_read_message_is_not_reported_delivered_afterwards(client, linked, sent):
    webhook(client, linked, {"read": {"watermark": now_ms()}})

    webhook(client, linked, {"delivery": {"mids": [sent[0].message_id], "watermark": now_ms()}})

    assert status_outcomes() == [(READ, sent[0].pk), (READ, sent[1].pk)]


def test_the_outcome_feed_serves_delivered_and_read(client, linked, linked_api, sent):
    webhook(client, linked, {"delivery": {"mids": [sent[0].message_id], "watermark": 1}})
    webhook(client, linked, {"read": {"watermark": now_ms()}})

    feed = linked_api.get("/api/v1/outcomes", {"limit": 100}).json()["outcomes"]

    types = [row["type"] for row in feed]
    assert types.index("notification.sent") < types.index("notification.delivered")
    delivered = next(row for row in feed if row["type"] == "notification.delivered")
    assert delivered["notification_id"] == str(sent[0].pk)
    assert delivered["event_id"] == sent[0].event.event_id
    assert delivered["notification_reason"] is None
    assert types.count("notification.read") == 2


def test_a_receipt_that_beat_the_workers_commit_is_reported_after_sent(client, linked, linked_api):
    linked_api.post(
        "/api/v1/events", event_payload("fraud.alert", account=linked.card), format="json"
    )
    (pk,) = _claim(owner="w", limit=5, now=timezone.now(), lease_seconds=60)
    webhook(client, linked, {"delivery": {"mids": ["m_early"], "watermark": 1}})
    assert status_outcomes() == []
    (job,) = _jobs([pk])

    results_record(
        owner="w",
        results=[
            Result(
                job, State.SENT, "", outcome="sent", started_at=timezone.now(), message_id="m_early"
            )
        ],
        banks={},
    )

    feed = list(
        Outcome.objects.filter(notification_id=pk).order_by("id").values_list("type", flat=True)
    )
    assert feed == [Type.NOTIFICATION_SENT, DELIVERED]


def test_receipts_for_another_person_write_no_outcome(client, linked, sent):
    original = linked.consent.psid
    linked.consent.psid = "9990001112223"

    webhook(client, linked, {"delivery": {"mids": [sent[0].message_id], "watermark": now_ms()}})
    webhook(client, linked, {"read": {"watermark": now_ms()}})

    linked.consent.psid = original
    assert status_outcomes() == []
