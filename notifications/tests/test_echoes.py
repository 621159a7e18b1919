"""Echoes settle uncertain sends: each test posts signed echo webhooks to the bank's real
endpoint, as Meta does, and reads what the bank then shows and sends.

The Send API is faked at the messenger client boundary; the database and Redis are real.
"""

import datetime as dt
import hashlib
import hmac
import itertools
import json
import logging
import time
import uuid

import httpx
import pytest
import redis
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from notifications import services
from notifications.models import (
    DeliveryAttempt,
    DeliveryReceipt,
    MessageEcho,
    Notification,
    Outcome,
)
from notifications.services.delivery import lease_owner_new
from notifications.services.delivery.claim import _claim
from notifications.tests.conftest import DELIVERY_REDIS
from notifications.tests.factories import event_payload
from notifications.tests.test_metrics import TOKEN, samples, scrape, value
from portal.models import AuditEvent
from portal.tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db

State, Reason = Notification.State, Notification.Reason
APP_ID = "1517776481860111"
INBOX_APP_ID = "263902037430900"
_mids = itertools.count(1)


@pytest.fixture(autouse=True)
def _own_counters(settings):
    settings.NOTIFICATIONS_METRICS_KEY = f"test:metrics:{uuid.uuid4().hex}"
    settings.METRICS_TOKEN = TOKEN
    yield
    redis.Redis.from_url(DELIVERY_REDIS).delete(settings.NOTIFICATIONS_METRICS_KEY)


@pytest.fixture
def bank_app(linked):
    linked.integration.app_id = APP_ID
    linked.integration.save(update_fields=["app_id"])
    return linked


@pytest.fixture
def alert(bank_app, linked_api):
    response = linked_api.post(
        "/api/v1/events",
        {"events": [event_payload("fraud.alert", account=bank_app.card)]},
        format="json",
    )
    assert response.status_code == 202
    return Notification.objects.get()


def deliver():
    return services.deliveries_run(seconds=0)


def post_signed(linked, body: dict, *, secret: str | None = None):
    raw = json.dumps(body).encode()
    key = (secret or linked.integration.app_secret).encode()
    signature = hmac.new(key, raw, hashlib.sha256).hexdigest()
    return Client().post(
        f"/webhooks/messenger/{linked.bank.slug}/",
        data=raw,
        content_type="application/json",
        headers={"X-Hub-Signature-256": f"sha256={signature}"},
    )


def echo(linked, *, metadata=None, mid=None, app_id=APP_ID, text="Security alert", psid=None):
    """Meta's echo of a message the Page sent (messenger-platform §2)."""
    message = {"is_echo": True, "app_id": int(app_id), "mid": mid or f"m_echo_{next(_mids)}"}
    if metadata is not None:
        message["metadata"] = metadata
    if text is not None:
        message["text"] = text
    page = linked.integration.page_id
    return {
        "object": "page",
        "entry": [
            {
                "id": page,
                "time": int(time.time() * 1000),
                "messaging": [
                    {
                        "sender": {"id": page},
                        "recipient": {"id": psid or linked.consent.psid},
                        "timestamp": int(time.time() * 1000),
                        "message": message,
                    }
                ],
            }
        ],
    }


def post_echo(linked, **kwargs):
    response = post_signed(linked, echo(linked, **kwargs))
    assert response.status_code == 200, response.content
    return response


def reference(notification) -> str:
    return f"bankside:n:{notification.pk}"


def lose_the_worker_mid_send(notification):
    """A worker claimed it, handed it to the Send API, and died before recording."""
    _claim(owner=lease_owner_new(), limit=10, now=timezone.now(), lease_seconds=60)
    Notification.objects.filter(pk=notification.pk).update(
        send_started_at=timezone.now() - dt.timedelta(seconds=61),
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1),
    )


def sent_entries():
    return AuditEvent.objects.filter(action="notification.sent")


def test_every_send_carries_its_notification_reference_in_metadata(alert, graph):
    deliver()

    (body,) = graph.sent
    assert body["message"]["metadata"] == reference(alert)


def test_a_call_answered_but_not_recorded_is_settled_by_its_echo(alert, graph, bank_app, client):
    lose_the_worker_mid_send(alert)
    services.outbox_sweep()
    deliver()
    waiting = Notification.objects.get()
    assert (waiting.state, waiting.reason) == (State.PENDING, Reason.AWAITING_ECHO)
    assert graph.sent == []  # not resent blindly

    post_echo(bank_app, metadata=reference(alert), mid="m_meta_77")
    deliver()

    notification = Notification.objects.get()
    assert (notification.state, notification.message_id) == (State.SENT, "m_meta_77")
    assert notification.uncertain and not notification.resent
    assert graph.sent == []  # sent once, by the worker that died
    (entry,) = sent_entries()
    assert entry.details["settled_by"] == "echo" and entry.details["message_id"] == "m_meta_77"
    assert Outcome.objects.filter(type="notification.sent", notification=alert).count() == 1
    assert MessageEcho.objects.get().outcome == MessageEcho.Outcome.SETTLED
    found = samples(scrape(client))
    assert value(found, "bankside_notification_settled_by_echo_total") == 1
    assert value(found, "bankside_message_echoes_total", outcome="settled") == 1


def test_an_echo_that_came_while_the_worker_held_the_claim_settles_it_once_taken_over(
    alert, graph, bank_app
):
    lose_the_worker_mid_send(alert)
    Notification.objects.update(lease_expires_at=timezone.now() + dt.timedelta(seconds=30))
    post_echo(bank_app, metadata=reference(alert), mid="m_meta_78")
    assert Notification.objects.get().state == State.IN_FLIGHT  # the claim is the worker's
    Notification.objects.update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))

    services.outbox_sweep()
    deliver()

    notification = Notification.objects.get()
    assert (notification.state, notification.message_id) == (State.SENT, "m_meta_78")
    assert graph.sent == []
    assert sent_entries().count() == 1


def test_one_take_over_settles_every_claim_whose_echo_came_each_once(bank_app, linked_api, graph):
    accounts = [bank_app.card, bank_app.person()[0], bank_app.person()[0]]
    response = linked_api.post(
        "/api/v1/events",
        {"events": [event_payload("fraud.alert", account=account) for account in accounts]},
        format="json",
    )
    assert response.status_code == 202
    first, second, third = Notification.objects.order_by("pk")
    now = timezone.now()
    # A worker handed all three to the Send API and died; Meta echoed each meanwhile, and
    # Messenger's receipt for the second came before anyone recorded its id.
    Notification.objects.update(
        state=State.IN_FLIGHT,
        lease_owner="dead-worker",
        lease_expires_at=now + dt.timedelta(seconds=30),
        send_started_at=now - dt.timedelta(seconds=61),
    )
    for notification, mid in ((first, "m_a"), (second, "m_b"), (third, "m_c")):
        post_echo(bank_app, metadata=reference(notification), mid=mid, psid=notification.psid)
    DeliveryReceipt.objects.create(bank=bank_app.bank, message_id="m_b", delivered_at=now)
    Notification.objects.update(lease_expires_at=now - dt.timedelta(seconds=1))

    with CaptureQueriesContext(connection) as queries:
        assert services.leases_take_over() == (3, 3)

    assert list(Notification.objects.order_by("pk").values_list("state", "message_id")) == [
        (State.SENT, "m_a"),
        (State.DELIVERED, "m_b"),
        (State.SENT, "m_c"),
    ]
    assert sorted(e.details["notification"] for e in sent_entries()) == [
        first.pk,
        second.pk,
        third.pk,
    ]
    outcomes = Outcome.objects.filter(notification__isnull=False).values_list(
        "notification_id", "type"
    )
    assert sorted(outcomes) == sorted(
        [
            (first.pk, "notification.sent"),
            (second.pk, "notification.sent"),
            (second.pk, "notification.delivered"),
            (third.pk, "notification.sent"),
        ]
    )
    assert not DeliveryReceipt.objects.exists()
    assert set(MessageEcho.objects.values_list("outcome", flat=True)) == {
        MessageEcho.Outcome.SETTLED
    }
    assert graph.sent == []
    # Settled together: one look-up of waiting receipts for the three.
    receipt_reads = [
        q for q in queries if q["sql"].startswith("SELECT") and "deliveryreceipt" in q["sql"]
    ]
    assert len(receipt_reads) == 1


def test_a_call_never_answered_and_no_echo_is_resent_once_after_the_wait(
    alert, graph, bank_app, settings, client
):
    settings.NOTIFICATIONS_ECHO_WAIT_SECONDS = 0.3
    graph.answers = [httpx.ReadTimeout("the connection dropped after the request went out")]

    deliver()
    deliver()
    assert len(graph.sent) == 1  # waiting for its echo
    time.sleep(0.4)
    deliver()

    assert len(graph.sent) == 2
    assert graph.sent[1]["message"]["metadata"] == reference(alert)
    notification = Notification.objects.get()
    assert (notification.state, notification.uncertain, notification.resent) == (
        State.SENT,
        True,
        True,
    )
    assert list(DeliveryAttempt.objects.order_by("number").values_list("outcome", flat=True)) == [
        "uncertain",
        "sent",
    ]
    found = samples(scrape(client))
    assert value(found, "bankside_notification_resent_after_no_echo_total") == 1

    # The first copy's echo comes late: it changes nothing and is recorded as a second copy.
    post_echo(bank_app, metadata=reference(alert), mid="m_late_first_copy")
    assert Notification.objects.get().message_id == notification.message_id
    assert MessageEcho.objects.get().outcome == MessageEcho.Outcome.EXTRA
    assert sent_entries().count() == 1


def test_a_resend_that_is_uncertain_too_is_dead_lettered_after_its_wait(
    alert, graph, bank_app, settings, sign_in
):
    settings.NOTIFICATIONS_ECHO_WAIT_SECONDS = 0.2
    graph.answers = [httpx.ReadTimeout("dropped"), httpx.ReadTimeout("dropped again")]

    deliver()
    time.sleep(0.3)
    deliver()
    time.sleep(0.3)
    deliver()

    assert len(graph.sent) == 2  # once, then resent once: never a third time
    notification = Notification.objects.get()
    assert (notification.state, notification.reason) == (State.DEAD, Reason.UNCERTAIN)
    staff = sign_in(StaffMembershipFactory(bank=bank_app.bank, role="operator").user)
    page = staff.get(reverse("deliveries:dead_letters", kwargs={"bank": bank_app.bank.slug}))
    assert "may have been sent" in page.content.decode()
    assert "resent once: no echo came" in page.content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("answer", ["dropped", "answered"])
def test_an_echo_arriving_before_the_worker_recorded_the_call(alert, graph, bank_app, answer):
    def meta(body):
        # Meta echoes the message to the bank's webhook before the answer reaches the worker
        # (this runs in the worker's sending thread, with a database connection of its own).
        post_echo(bank_app, metadata=body["message"]["metadata"], mid="m_meta_79")
        connection.close()
        if answer == "dropped":
            return httpx.ReadTimeout("the connection dropped after the request went out")
        return httpx.Response(
            200, json={"recipient_id": body["recipient"]["id"], "message_id": "m_meta_79"}
        )

    graph.answers = [meta]

    deliver()
    deliver()

    notification = Notification.objects.get()
    assert (notification.state, notification.message_id) == (State.SENT, "m_meta_79")
    assert len(graph.sent) == 1
    assert sent_entries().count() == 1
    assert Outcome.objects.filter(type="notification.sent").count() == 1


def test_an_echo_for_an_unknown_reference_is_ignored_and_counted(
    alert, graph, bank_app, caplog, client
):
    deliver()
    caplog.set_level(logging.WARNING)

    post_echo(bank_app, metadata="bankside:n:987654321", mid="m_stray")
    post_echo(bank_app, metadata="bankside:n:not-a-number", mid="m_stray_2")

    assert Notification.objects.get().message_id != "m_stray"
    assert set(MessageEcho.objects.values_list("outcome", flat=True)) == {"unknown"}
    assert bank_app.consent.psid not in caplog.text
    assert "names no message of ours" in caplog.text
    found = samples(scrape(client))
    assert value(found, "bankside_message_echoes_total", outcome="unknown") == 2


def test_an_echo_for_another_persons_notification_settles_nothing(alert, graph, bank_app):
    graph.answers = [httpx.ReadTimeout("dropped")]
    deliver()

    post_echo(bank_app, metadata=reference(alert), psid="9999999999")

    assert Notification.objects.get().reason == Reason.AWAITING_ECHO
    assert MessageEcho.objects.get().outcome == MessageEcho.Outcome.UNKNOWN


def test_a_duplicate_echo_is_stored_once(alert, graph, bank_app):
    graph.answers = [httpx.ReadTimeout("dropped")]
    deliver()

    post_echo(bank_app, metadata=reference(alert), mid="m_twice")
    post_echo(bank_app, metadata=reference(alert), mid="m_twice")

    assert MessageEcho.objects.count() == 1
    assert sent_entries().count() == 1
    assert Outcome.objects.filter(type="notification.sent").count() == 1


def test_a_forged_echo_is_refused_and_settles_nothing(alert, graph, bank_app):
    graph.answers = [httpx.ReadTimeout("dropped")]
    deliver()

    forged = post_signed(
        bank_app, echo(bank_app, metadata=reference(alert)), secret="not-the-app-secret"
    )

    assert forged.status_code == 403
    assert MessageEcho.objects.count() == 0
    assert Notification.objects.get().reason == Reason.AWAITING_ECHO


def test_the_echo_keeps_no_psid_and_no_text(alert, graph, bank_app):
    deliver()

    post_echo(bank_app, metadata=reference(alert), text="Security alert: -€899.00")

    stored = MessageEcho.objects.get()
    assert stored.recipient_ref.startswith("psid:")
    assert bank_app.consent.psid not in json.dumps(
        {f.attname: str(getattr(stored, f.attname)) for f in MessageEcho._meta.fields}
    )
    assert stored.app_id == APP_ID and stored.metadata == reference(alert)


def test_a_dead_lettered_uncertain_send_is_made_sent_by_its_echo(alert, graph, bank_app):
    Notification.objects.update(state=State.DEAD, reason=Reason.UNCERTAIN, uncertain=True)

    post_echo(bank_app, metadata=reference(alert), mid="m_meta_80")

    notification = Notification.objects.get()
    assert (notification.state, notification.message_id) == (State.SENT, "m_meta_80")
    assert notification.sent_at is not None and notification.finished_at is not None


def test_echoes_go_with_the_retention_purge_and_with_the_customers_erasure(alert, graph, bank_app):
    from notifications.services.privacy import notifications_erase
    from portal.audit import Actor
    from portal.services import retention_purge

    deliver()
    post_echo(bank_app, metadata=reference(alert), mid="m_old")
    post_echo(bank_app, metadata=reference(alert), mid="m_recent")
    MessageEcho.objects.filter(mid="m_old").update(
        received_at=timezone.now() - dt.timedelta(days=500)
    )

    retention_purge(bank=bank_app.bank, actor=Actor.system("test"))
    assert list(MessageEcho.objects.values_list("mid", flat=True)) == ["m_recent"]

    notifications_erase(bank_app.customer)
    assert MessageEcho.objects.count() == 0
