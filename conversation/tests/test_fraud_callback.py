"""Fraud alerts' quick replies, the answer recorded once, and the signed callback to the bank."""

import base64
import hashlib
import hmac
import json
import socket
from datetime import timedelta

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from conversation import callbacks, services
from conversation.models import BankCallback, Conversation, FraudAlertAnswer
from conversation.tests.test_conversation import sent, write
from core.tests.listener import connected
from notifications import services as delivery_services
from notifications.fraud_replies import fraud_payload
from notifications.models import Notification
from notifications.tests.factories import event_payload
from portal.models import AuditEvent, StaffMembership
from portal.services.integration import signing_secret_new
from portal.tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db

CALLBACK_URL = "https://core.harbour.example/messenger/callbacks"


def standard_webhooks_valid(secret: str, headers, body: bytes) -> bool:
    """The Standard Webhooks spec's verification, written here from the spec."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [
        s.split(",", 1)[1] for s in headers["webhook-signature"].split() if s.startswith("v1,")
    ]
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


@pytest.fixture
def alert(linked, linked_api, graph):
    """A fraud alert delivered to Ana, and the bank's callback configured."""
    linked.integration.callback_url = CALLBACK_URL
    linked.integration.callback_signing_secret = signing_secret_new()
    linked.integration.save()
    response = linked_api.post(
        "/api/v1/events",
        {"events": [event_payload("fraud.alert", account=linked.card)]},
        format="json",
    )
    assert response.status_code == 202
    delivery_services.deliveries_run(seconds=0)
    notification = Notification.objects.get()
    assert notification.state == Notification.State.SENT
    graph.sent.clear()
    return notification


class Receiver:
    """The bank's callback endpoint, at the HTTP client boundary: answers in turn."""

    def __init__(self, answers) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, dict):
            return httpx.Response(200, json=answer)
        return httpx.Response(answer)

    @property
    def transport(self):
        return httpx.MockTransport(self)


def test_a_fraud_alert_carries_yes_and_no_quick_replies_for_that_alert(linked, linked_api, graph):
    linked_api.post(
        "/api/v1/events",
        {"events": [event_payload("fraud.alert", account=linked.card)]},
        format="json",
    )
    delivery_services.deliveries_run(seconds=0)

    (body,) = graph.sent
    notification = Notification.objects.get()
    assert body["message"]["quick_replies"] == [
        {
            "content_type": "text",
            "title": "Yes, it was me",
            "payload": fraud_payload("FRAUD_YES", notification.pk),
        },
        {
            "content_type": "text",
            "title": "No, it wasn't me",
            "payload": fraud_payload("FRAUD_NO", notification.pk),
        },
    ]


def test_other_notifications_carry_no_quick_replies(linked, linked_api, graph):
    linked_api.post(
        "/api/v1/events",
        {"events": [event_payload("transaction.posted", account=linked.card)]},
        format="json",
    )
    delivery_services.deliveries_run(seconds=0)

    (body,) = graph.sent
    assert "quick_replies" not in body["message"]


def test_no_is_recorded_once_and_queued_for_the_bank_and_the_customer_waits_for_its_answer(
    linked, alert, graph
):
    write(linked, "No, it wasn't me", payload=fraud_payload("FRAUD_NO", alert.pk))
    write(linked, "Yes, it was me", payload=fraud_payload("FRAUD_YES", alert.pk))

    answer = FraudAlertAnswer.objects.get()
    assert answer.answer == "denied" and answer.notification == alert
    (only,) = (body["message"]["text"] for body in sent(graph))
    assert only == "Your answer to this alert was already recorded: “No, it wasn't me”."
    conversation = Conversation.objects.get()
    assert conversation.needs_person and conversation.reason == "fraud_denied"
    callback = BankCallback.objects.get()
    assert callback.state == "pending" and callback.url == CALLBACK_URL
    body = json.loads(callback.body)
    assert body["type"] == "fraud_alert.answered"
    assert body["data"]["answer"] == "denied" and body["data"]["event_id"] == alert.event.event_id
    assert body["data"]["customer_id"] == "cu-ana" and body["data"]["account_id"] == "visa-001"
    assert AuditEvent.objects.filter(action="fraud_alert.answered").count() == 1


def test_a_typed_yes_answers_the_newest_unanswered_alert(linked, alert, graph):
    write(linked, "yes that was me")

    assert FraudAlertAnswer.objects.get().answer == "confirmed"
    assert "the payment was yours" in sent(graph)[0]["message"]["text"]


def test_a_typed_yes_without_an_alert_waiting_is_not_understood(linked, graph):
    write(linked, "yes")

    assert not FraudAlertAnswer.objects.exists()
    assert Conversation.objects.get().reason == "not_understood"


def test_an_answer_naming_another_persons_alert_records_nothing(linked, alert, graph):
    _, other = linked.person()

    write(linked, "No", psid=other.psid, payload=fraud_payload("FRAUD_NO", alert.pk))

    assert not FraudAlertAnswer.objects.exists()
    assert "no security alert waiting" in sent(graph)[0]["message"]["text"]


def test_the_callback_is_signed_and_retried_with_backoff_until_the_bank_accepts_it(
    linked, alert, graph
):
    write(linked, "No", payload=fraud_payload("FRAUD_NO", alert.pk))
    callback = BankCallback.objects.get()
    receiver = Receiver([500, httpx.ConnectError("refused"), 204])
    secret = linked.integration.callback_signing_secret
    states, delays = [], []

    moment = timezone.now()
    for _ in range(3):
        before = timezone.now()
        states.append(
            callbacks.callback_deliver(
                callback_id=callback.pk, now=moment, transport=receiver.transport
            )
        )
        after = timezone.now()
        callback.refresh_from_db()
        if callback.next_attempt_at:
            # The backoff counts from when the attempt was recorded, during the call (or
            # from `moment`, when the caller's clock is ahead): within these bounds.
            due = callback.next_attempt_at
            delays.append(
                (
                    (due - max(moment, after)).total_seconds(),
                    (due - max(moment, before)).total_seconds(),
                )
            )
            moment = due

    assert states == ["pending", "pending", "delivered"]
    (low_1, high_1), (low_2, high_2) = delays  # base 10 s, doubling, jittered
    assert high_1 >= 5 and low_1 <= 10
    assert high_2 >= 10 and low_2 <= 20
    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {callback.webhook_id}
    for request in receiver.requests:
        assert standard_webhooks_valid(secret, request.headers, request.content)
        assert request.content == callback.body.encode()
    log = [(t.number, t.status_code, bool(t.error)) for t in callback.tries.all()]
    assert log == [(1, 500, True), (2, None, True), (3, 204, False)]
    assert AuditEvent.objects.filter(action="callback.delivered").count() == 1


def test_a_callback_verifies_with_the_standard_webhooks_reference_library(linked, alert, graph):
    write(linked, "No", payload=fraud_payload("FRAUD_NO", alert.pk))
    callback = BankCallback.objects.get()
    receiver = Receiver([204])

    callbacks.callback_deliver(callback_id=callback.pk, transport=receiver.transport)

    (request,) = receiver.requests
    secret = linked.integration.callback_signing_secret
    payload = Webhook(secret).verify(request.content, dict(request.headers))
    assert payload["type"] == "fraud_alert.answered"
    assert payload["data"]["answer"] == "denied"
    with pytest.raises(WebhookVerificationError):
        Webhook(signing_secret_new()).verify(request.content, dict(request.headers))


def test_a_callback_that_is_not_due_is_not_sent(linked, alert, graph):
    write(linked, "No", payload=fraud_payload("FRAUD_NO", alert.pk))
    callback = BankCallback.objects.get()
    receiver = Receiver([])

    state = callbacks.callback_deliver(
        callback_id=callback.pk,
        now=timezone.now() - timedelta(minutes=1),
        transport=receiver.transport,
    )

    assert state == "pending" and receiver.requests == []


def test_a_callback_is_given_up_after_the_retry_budget_and_can_be_sent_again(
    linked, alert, graph, settings
):
    settings.NOTIFICATIONS_CALLBACK_MAX_ATTEMPTS = 2
    write(linked, "No", payload=fraud_payload("FRAUD_NO", alert.pk))
    callback = BankCallback.objects.get()
    receiver = Receiver([503, 503])
    later = timezone.now() + timedelta(days=1)

    callbacks.callback_deliver(callback_id=callback.pk, transport=receiver.transport)
    final = callbacks.callback_deliver(
        callback_id=callback.pk, now=later, transport=receiver.transport
    )

    assert final == "dead"
    assert AuditEvent.objects.filter(action="callback.abandoned").count() == 1
    from portal.audit import Actor
    from portal.tests.factories import UserFactory

    callbacks.callback_retry_now(actor=Actor.staff(UserFactory()), callback=callback)
    callback.refresh_from_db()
    assert (callback.state, callback.attempts) == ("pending", 0)


def test_without_a_callback_url_the_answer_is_kept_and_marked_not_configured(
    linked, linked_api, graph
):
    linked_api.post(
        "/api/v1/events",
        {"events": [event_payload("fraud.alert", account=linked.card)]},
        format="json",
    )
    delivery_services.deliveries_run(seconds=0)
    alert = Notification.objects.get()

    write(linked, "No", payload=fraud_payload("FRAUD_NO", alert.pk))

    assert FraudAlertAnswer.objects.get().answer == "denied"
    assert BankCallback.objects.get().state == "not_configured"


def test_the_due_list_takes_over_a_claim_whose_worker_died(linked, alert, graph):
    write(linked, "No", payload=fraud_payload("FRAUD_NO", alert.pk))
    callback = BankCallback.objects.get()
    BankCallback.objects.filter(pk=callback.pk).update(
        state="delivering", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert callbacks.callbacks_due() == [callback.pk]


def test_fraud_answer_record_twice_keeps_the_first(linked, alert):
    first, created = services.fraud_answer_record(notification=alert, answer="confirmed")
    second, again = services.fraud_answer_record(notification=alert, answer="denied")

    assert created and not again and second.pk == first.pk and second.answer == "confirmed"


# The callback URL cannot be turned against the network bankside runs in.

UNREACHABLE = "The bank's server could not be reached."


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def answered_with(linked, alert, url: str) -> BankCallback:
    """The customer answers the alert and the callback is sent once to `url`."""
    linked.integration.callback_url = url  # stored before the address rules existed
    linked.integration.save()
    write(linked, "No", payload=fraud_payload("FRAUD_NO", alert.pk))
    callback = BankCallback.objects.get()
    callbacks.callback_deliver(callback_id=callback.pk)
    callback.refresh_from_db()
    return callback


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_a_stored_callback_url_on_loopback_is_never_connected_to(
    linked,
    alert,
    graph,
    listener,
    settings,
    host,
):
    settings.NOTIFICATIONS_CALLBACK_TIMEOUT_SECONDS = 1
    port = listener.getsockname()[1]

    callback = answered_with(linked, alert, f"https://{host}:{port}/callbacks")

    (attempt,) = callback.tries.all()
    assert (attempt.status_code, attempt.error) == (None, UNREACHABLE)
    assert callback.state == "pending"
    assert not connected(listener)


@pytest.mark.parametrize("allow_private", [False, True])
def test_the_fraud_answers_page_tells_an_open_port_from_a_closed_one_by_nothing(
    linked,
    alert,
    graph,
    listener,
    settings,
    client,
    sign_in,
    allow_private,
):
    settings.NOTIFICATIONS_CALLBACK_TIMEOUT_SECONDS = 0.5
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = allow_private
    open_port, shut_port = listener.getsockname()[1], closed_port()
    callback = answered_with(linked, alert, f"https://127.0.0.1:{open_port}/callbacks")
    BankCallback.objects.filter(pk=callback.pk).update(next_attempt_at=timezone.now())
    linked.integration.callback_url = f"https://127.0.0.1:{shut_port}/callbacks"
    linked.integration.save()
    callbacks.callback_deliver(callback_id=callback.pk)
    sign_in(StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.ADMIN).user)

    page = client.get(reverse("conversation:fraud_answers", kwargs={"bank": linked.bank.slug}))

    text = page.content.decode()
    assert [t.error for t in callback.tries.order_by("number")] == [UNREACHABLE, UNREACHABLE]
    assert text.count(escape(UNREACHABLE)) == 2
    for detail in ("ConnectError", "Timeout", "refused", "Errno", "timed out", "SSL", "EOF"):
        assert detail not in text
