"""The 24-hour window counts what Meta counts, posted as Meta posts it: signed webhooks to
the bank's real endpoint. A message, a postback, a referral, a reaction and an opt-in open
the window and release what was held for it; deliveries and reads do not. Events the
product does not model are logged by type and Page, never by person, and counted."""

import hashlib
import hmac
import json
import logging
import time
import uuid

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from notifications import services
from notifications.models import Notification
from notifications.tests.conftest import DELIVERY_REDIS
from notifications.tests.factories import contact_for, event_payload

pytestmark = pytest.mark.django_db

State, Reason = Notification.State, Notification.Reason
TOKEN = "metrics-token-0123456789abcdefghijklmnopqrstuvwxyz"


def webhook(client, linked, *content: dict):
    """Post Meta's signed envelope for `content` (each one person's event) to the bank."""
    page_id = linked.integration.page_id
    body = {
        "object": "page",
        "entry": [
            {
                "id": page_id,
                "time": int(time.time() * 1000),
                "messaging": [
                    {
                        "sender": {"id": linked.consent.psid},
                        "recipient": {"id": page_id},
                        "timestamp": int(time.time() * 1000),
                        **item,
                    }
                    for item in content
                ],
            }
        ],
    }
    raw = json.dumps(body).encode()
    signature = hmac.new(linked.integration.app_secret.encode(), raw, hashlib.sha256).hexdigest()
    response = client.post(
        f"/webhooks/messenger/{linked.bank.slug}/",
        data=raw,
        content_type="application/json",
        headers={"X-Hub-Signature-256": f"sha256={signature}"},
    )
    assert response.status_code == 200
    return response


@pytest.fixture
def held(linked, linked_api, graph):
    """A fraud alert held because the window closed 30 hours ago and no template exists."""
    contact_for(linked.consent, hours_ago=30)
    response = linked_api.post(
        "/api/v1/events",
        {"events": [event_payload("fraud.alert", account=linked.card)]},
        format="json",
    )
    assert response.status_code == 202
    services.deliveries_run(seconds=0)
    (notification,) = Notification.objects.all()
    assert (notification.state, notification.reason) == (State.HELD, Reason.NO_ALLOWED_FORM)
    assert graph.sent == []
    return notification


def alert_sent(graph) -> list[dict]:
    return [b for b in graph.sent if "ELECTRO-WORLD ONLINE" in b["message"].get("text", "")]


WINDOW_OPENERS = {
    "reaction": {"reaction": {"mid": "m_alert", "action": "react", "reaction": "like"}},
    "referral": {"referral": {"ref": "campaign-1", "source": "SHORTLINK", "type": "OPEN_THREAD"}},
    "postback": {"postback": {"title": "Get Started", "payload": "GET_STARTED", "mid": "m_pb"}},
    "opt-in": {"optin": {"type": "notification_messages", "payload": "alerts"}},
    "message": {"message": {"mid": "m_hello", "text": "hello"}},
}


@pytest.mark.parametrize("kind", list(WINDOW_OPENERS))
def test_each_event_meta_counts_releases_a_held_notification(kind, client, linked, held, graph):
    webhook(client, linked, WINDOW_OPENERS[kind])
    services.deliveries_run(seconds=0)

    held.refresh_from_db()
    assert held.state == State.SENT
    (sent,) = alert_sent(graph)
    assert sent["messaging_type"] == "UPDATE"
    assert sent["recipient"] == {"id": linked.consent.psid}


@pytest.mark.parametrize(
    "content",
    [
        {"delivery": {"mids": ["m_older"], "watermark": 1}},
        {"read": {"watermark": 1}},
        {"message": {"mid": "m_echo", "is_echo": True, "app_id": 1000000000000001, "text": "x"}},
    ],
    ids=["delivery", "read", "echo"],
)
def test_deliveries_reads_and_echoes_release_nothing(content, client, linked, held, graph):
    webhook(client, linked, content)
    services.deliveries_run(seconds=0)

    held.refresh_from_db()
    assert (held.state, held.reason) == (State.HELD, Reason.NO_ALLOWED_FORM)
    assert alert_sent(graph) == []


@pytest.fixture
def own_metrics(settings):
    settings.NOTIFICATIONS_METRICS_KEY = f"test:metrics:{uuid.uuid4().hex}"
    settings.METRICS_TOKEN = TOKEN
    yield
    redis.Redis.from_url(DELIVERY_REDIS).delete(settings.NOTIFICATIONS_METRICS_KEY)


def scraped(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_an_unmodelled_event_is_counted_by_type_and_logged_without_the_person(
    client, linked, own_metrics, caplog
):
    edit = {"message_edit": {"mid": "m_hello", "text": "my card is 4111", "num_edit": 1}}
    enforcement = {"policy_enforcement": {"action": "warning", "reason": "spam"}}

    with caplog.at_level(logging.INFO, logger="linking.webhooks"):
        webhook(client, linked, edit, edit, enforcement)

    found = scraped(client)
    unmodelled = "bankside_webhook_events_unmodelled_total"
    assert found[(unmodelled, (("type", "message_edit"),))] == 2
    assert found[(unmodelled, (("type", "policy_enforcement"),))] == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "linking.webhooks"]
    assert len(lines) == 3
    assert all(linked.integration.page_id in line for line in lines)
    assert any("message_edit" in line for line in lines)
    assert any("policy_enforcement" in line for line in lines)
    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert linked.consent.psid not in logged
    assert "4111" not in logged


def test_an_unreadable_event_is_counted_too(client, linked, own_metrics):
    webhook(client, linked, {"delivery": {"mids": ["m1"]}})  # no watermark

    found = scraped(client)
    assert found[("bankside_webhook_events_unreadable_total", (("type", "delivery"),))] == 1


def test_modelled_events_are_not_counted_as_unmodelled(client, linked, own_metrics):
    webhook(client, linked, WINDOW_OPENERS["reaction"], {"read": {"watermark": 1}})

    found = scraped(client)
    assert not [key for key in found if key[0] == "bankside_webhook_events_unmodelled_total"]
