"""Delivery and read receipts from Messenger's signed webhooks update notifications."""

import hashlib
import hmac
import json
import time

import pytest
from django.utils import timezone

from notifications import services
from notifications.models import DeliveryReceipt, Notification, Recipient
from notifications.services.delivery import Result, results_record
from notifications.services.delivery.claim import _claim, _jobs
from notifications.tests.factories import event_payload

pytestmark = pytest.mark.django_db

State = Notification.State


def webhook(client, linked, *items):
    body = {
        "object": "page",
        "entry": [
            {
                "id": linked.integration.page_id,
                "time": 1,
                "messaging": [
                    {
                        "sender": {"id": linked.consent.psid},
                        "recipient": {"id": linked.integration.page_id},
                        "timestamp": int(time.time() * 1000),
                        **item,
                    }
                    for item in items
                ],
            }
        ],
    }
    raw = json.dumps(body).encode()
    signature = hmac.new(linked.integration.app_secret.encode(), raw, hashlib.sha256)
    response = client.post(
        "/webhooks/messenger/harbour/",
        data=raw,
        content_type="application/json",
        headers={"X-Hub-Signature-256": "sha256=" + signature.hexdigest()},
    )
    assert response.status_code == 200


@pytest.fixture
def sent(linked, linked_api, graph):
    """Three messages sent to Ana, one after another."""
    for kind in ("fraud.alert", "transaction.posted", "shipment.updated"):
        linked_api.post("/api/v1/events", event_payload(kind, account=linked.card), format="json")
        services.deliveries_run(seconds=0)
    notifications = list(Notification.objects.order_by("sequence"))
    assert [n.state for n in notifications] == [State.SENT] * 3
    return notifications


def test_a_delivery_receipt_marks_its_messages_delivered(client, linked, sent):
    webhook(client, linked, {"delivery": {"mids": [sent[1].message_id], "watermark": 1}})

    states = list(Notification.objects.order_by("sequence").values_list("state", flat=True))
    assert states == [State.SENT, State.DELIVERED, State.SENT]


def test_a_delivery_watermark_covers_everything_sent_before_it(client, linked, sent):
    Notification.objects.filter(pk=sent[2].pk).update(
        sent_at=timezone.now() + timezone.timedelta(minutes=5)
    )

    webhook(client, linked, {"delivery": {"watermark": int(time.time() * 1000)}})

    states = list(Notification.objects.order_by("sequence").values_list("state", flat=True))
    assert states == [State.DELIVERED, State.DELIVERED, State.SENT]


def test_a_read_watermark_marks_earlier_messages_read(client, linked, sent):
    Notification.objects.filter(pk=sent[2].pk).update(
        sent_at=timezone.now() + timezone.timedelta(minutes=5)
    )

    webhook(client, linked, {"read": {"watermark": int(time.time() * 1000)}})

    rows = Notification.objects.order_by("sequence")
    assert [n.state for n in rows] == [State.READ, State.READ, State.SENT]
    assert all(n.read_at and n.delivered_at for n in rows[:2])


def test_receipts_for_another_person_change_nothing(client, linked, sent):
    other_psid = "9990001112223"
    body = {"delivery": {"mids": [sent[0].message_id], "watermark": int(time.time() * 1000)}}
    linked.consent.psid, original = other_psid, linked.consent.psid

    webhook(client, linked, body, {"read": {"watermark": int(time.time() * 1000)}})

    linked.consent.psid = original
    assert set(Notification.objects.values_list("state", flat=True)) == {State.SENT}


def test_a_receipt_that_beats_the_workers_commit_is_applied_when_it_lands(
    client, linked, linked_api
):
    linked_api.post(
        "/api/v1/events", event_payload("fraud.alert", account=linked.card), format="json"
    )
    (pk,) = _claim(owner="w", limit=5, now=timezone.now(), lease_seconds=60)
    webhook(client, linked, {"delivery": {"mids": ["m_early"], "watermark": 1}})
    assert DeliveryReceipt.objects.filter(message_id="m_early").exists()
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

    assert Notification.objects.get().state == State.DELIVERED
    assert not DeliveryReceipt.objects.exists()


def test_a_message_from_the_person_makes_them_reachable_again(client, linked, sent):
    Recipient.objects.filter(psid=linked.consent.psid).update(
        unreachable_at=timezone.now(), unreachable_reason="blocked"
    )

    webhook(client, linked, {"message": {"mid": "m_in_1", "text": "hello"}})

    assert Recipient.objects.get(psid=linked.consent.psid).unreachable_at is None
