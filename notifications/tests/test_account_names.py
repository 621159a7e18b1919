"""The account's name reaches the customer's message, as the core sent it, on both paths
that write the text: at ingest, and at send time for a notification queued without one."""

import pytest

from notifications import services
from notifications.models import Notification
from notifications.tests.factories import event_payload
from portal.models import MessageTemplate

pytestmark = pytest.mark.django_db


def credit(linked):
    """Salary paid into the checking account: no card, no merchant."""
    payload = event_payload(
        "transaction.posted",
        account=linked.checking,
        data={"amount": "250.00", "description": "Salary", "category": "salary"},
    )
    for key in ("merchant", "card_last4"):
        payload["data"].pop(key)
    return payload


@pytest.fixture
def named(linked):
    linked.checking.name = "Everyday"
    linked.checking.save()
    return linked


def test_money_arriving_names_the_account(named, linked_api, graph):
    response = linked_api.post("/api/v1/events", {"events": [credit(named)]}, format="json")
    assert response.status_code == 202
    services.deliveries_run(seconds=0)

    (body,) = graph.sent
    assert body["message"]["text"] == "€250.00 arrived in your Everyday account •••• 4821: Salary."


def test_a_text_written_at_send_time_names_it_too(named, linked_api, graph):
    template = MessageTemplate.objects.get(bank=named.bank, event_type="transaction.posted")
    body_before = template.body
    MessageTemplate.objects.filter(pk=template.pk).delete()
    linked_api.post("/api/v1/events", {"events": [credit(named)]}, format="json")
    (queued,) = Notification.objects.all()
    assert queued.text == ""  # no template when it was queued
    MessageTemplate.objects.create(
        bank=named.bank, event_type="transaction.posted", locale=template.locale, body=body_before
    )
    Notification.objects.filter(pk=queued.pk).update(state="pending", reason="queued")

    services.deliveries_run(seconds=0)

    (body,) = graph.sent
    assert "your Everyday account •••• 4821" in body["message"]["text"]
