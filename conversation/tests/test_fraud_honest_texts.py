"""After "No, it wasn't me" the customer is told what the bank will do only when the bank's
fraud callback answered that it did it; otherwise that the fraud team has the answer, with
the bank's phone number. The customer taps "No" as Messenger sends it: a signed webhook to
the bank's real endpoint, answered by the worker's job."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conversation import callbacks, services, tasks
from conversation.models import (
    BankCallback,
    ConversationMessage,
    ConversationText,
    FraudAlertAnswer,
)
from conversation.tests.test_conversation import sent
from conversation.tests.test_fraud_callback import CALLBACK_URL, Receiver
from notifications import services as delivery_services
from notifications.fraud_replies import fraud_payload
from notifications.models import Notification
from notifications.tests.factories import event_payload
from portal.models import AuditEvent
from portal.services.integration import signing_secret_new

pytestmark = pytest.mark.django_db

PHONE = "+44 20 7946 0000"
NEUTRAL = (
    "Thank you. We have passed your answer to the {bank} fraud team. If you need help now, "
    "for example to block your card, call {bank} on {phone}."
)
BLOCKED = "We blocked card •••• {last4}. Our team calls you today about {merchant}."


def tap_no(client, linked, alert) -> None:
    """Ana taps "No, it wasn't me" on the alert: Meta's signed webhook, then the worker."""
    page_id = linked.integration.page_id
    now = int(time.time() * 1000)
    body = {
        "object": "page",
        "entry": [
            {
                "id": page_id,
                "time": now,
                "messaging": [
                    {
                        "sender": {"id": linked.consent.psid},
                        "recipient": {"id": page_id},
                        "timestamp": now,
                        "message": {
                            "mid": f"m_no_{alert.pk}",
                            "text": "No, it wasn't me",
                            "quick_reply": {"payload": fraud_payload("FRAUD_NO", alert.pk)},
                        },
                    }
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
    inbound = ConversationMessage.objects.get(direction="in", text="No, it wasn't me")
    tasks.answer_inbound(inbound.pk)


def send_due() -> None:
    """The worker sends what the conversation queued."""
    for message_id in services.messages_due(now=timezone.now() + timedelta(seconds=1)):
        services.message_send(message_id=message_id)


def texts(graph) -> list[str]:
    return [body["message"]["text"] for body in sent(graph)]


@pytest.fixture
def bank_with_phone(linked):
    linked.bank.support_phone = PHONE
    linked.bank.save()
    ConversationText.objects.create(
        bank=linked.bank, kind="fraud_denied", locale="en", body=BLOCKED
    )
    return linked


def posted_alert(linked, linked_api, graph, *, callback: bool) -> Notification:
    if callback:
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
    alert = Notification.objects.get()
    assert alert.state == Notification.State.SENT
    graph.sent.clear()
    return alert


def neutral(linked, phone=PHONE) -> str:
    return NEUTRAL.format(bank=linked.bank.name, phone=phone)


def deliver_callback(receiver: Receiver, *, now=None) -> str:
    callback = BankCallback.objects.get()
    state = callbacks.callback_deliver(
        callback_id=callback.pk, now=now, transport=receiver.transport
    )
    send_due()
    return state


# Without a callback URL: nothing can confirm, so the neutral text at once.


def test_without_a_callback_the_customer_hears_the_neutral_text_with_the_banks_phone(
    client, bank_with_phone, linked_api, graph
):
    alert = posted_alert(bank_with_phone, linked_api, graph, callback=False)

    tap_no(client, bank_with_phone, alert)

    assert texts(graph) == [neutral(bank_with_phone)]
    assert "blocked" not in texts(graph)[0].lower()
    assert FraudAlertAnswer.objects.get().customer_told == "neutral"


def test_without_a_phone_number_the_neutral_text_points_at_the_card(
    client, linked, linked_api, graph
):
    alert = posted_alert(linked, linked_api, graph, callback=False)

    tap_no(client, linked, alert)

    assert texts(graph) == [neutral(linked, phone="the number on the back of your card")]


# With a callback: the bank's answer decides.


def test_a_confirming_callback_sends_the_banks_next_steps(
    client, bank_with_phone, linked_api, graph
):
    alert = posted_alert(bank_with_phone, linked_api, graph, callback=True)
    tap_no(client, bank_with_phone, alert)
    assert texts(graph) == []  # nothing is promised before the bank answers

    state = deliver_callback(Receiver([{"action_taken": True}]))

    assert state == "delivered"
    assert texts(graph) == [
        "We blocked card •••• 9012. Our team calls you today about ELECTRO-WORLD ONLINE."
    ]
    answer = FraudAlertAnswer.objects.get()
    assert answer.customer_told == "bank_action" and answer.bank_action_confirmed_at
    assert AuditEvent.objects.filter(action="fraud_alert.bank_confirmed").count() == 1


def test_a_confirmation_without_any_text_of_the_bank_says_no_more_than_that_it_acted(
    client, linked, linked_api, graph
):
    alert = posted_alert(linked, linked_api, graph, callback=True)
    tap_no(client, linked, alert)

    deliver_callback(Receiver([{"action_taken": True}]))

    (said,) = texts(graph)
    assert said.startswith("Thank you. Our fraud team has acted on your answer")
    assert "block" not in said.lower()


def test_the_text_the_bank_sends_back_is_what_the_customer_reads(
    client, bank_with_phone, linked_api, graph
):
    alert = posted_alert(bank_with_phone, linked_api, graph, callback=True)
    tap_no(client, bank_with_phone, alert)
    said = "Card •••• 9012 is blocked and a new one is on its way. Case 88-1432."

    deliver_callback(Receiver([{"action_taken": True, "customer_message": said}]))

    assert texts(graph) == [said]


@pytest.mark.parametrize(
    "answer",
    [
        204,
        {"action_taken": False},
        {"action_taken": "yes"},
        {"received": True},
        200,
        {"action_taken": True, "padding": "x" * 9000},
    ],
    ids=["empty-204", "false", "not-a-boolean", "other-fields", "empty-200", "over-8-kib"],
)
def test_an_answer_that_confirms_nothing_gets_the_neutral_text(
    client, bank_with_phone, linked_api, graph, answer
):
    alert = posted_alert(bank_with_phone, linked_api, graph, callback=True)
    tap_no(client, bank_with_phone, alert)

    state = deliver_callback(Receiver([answer]))

    assert state == "delivered"
    assert texts(graph) == [neutral(bank_with_phone)]


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ("Card 4111 1111 1111 1111 is blocked.", "card number"),
        ("x" * 641, "over 640"),
        ("Blocked.\x07", "control characters"),
        ("   ", "empty"),
        (42, "not a string"),
    ],
)
def test_a_customer_message_out_of_bounds_is_not_sent_but_the_confirmation_stands(
    client, bank_with_phone, linked_api, graph, message, why
):
    alert = posted_alert(bank_with_phone, linked_api, graph, callback=True)
    tap_no(client, bank_with_phone, alert)

    deliver_callback(Receiver([{"action_taken": True, "customer_message": message}]))

    assert texts(graph) == [
        "We blocked card •••• 9012. Our team calls you today about ELECTRO-WORLD ONLINE."
    ]
    note = BankCallback.objects.get().tries.get().response_note
    assert "customer_message refused" in note and why in note


def test_a_failing_callback_sends_the_neutral_text_at_once_and_a_later_confirmation_follows(
    client, bank_with_phone, linked_api, graph
):
    alert = posted_alert(bank_with_phone, linked_api, graph, callback=True)
    tap_no(client, bank_with_phone, alert)
    receiver = Receiver([503, {"action_taken": True}, {"action_taken": True}])

    first = deliver_callback(receiver)
    later = BankCallback.objects.get().next_attempt_at
    second = deliver_callback(receiver, now=later)

    assert (first, second) == ("pending", "delivered")
    assert texts(graph) == [
        neutral(bank_with_phone),
        "We blocked card •••• 9012. Our team calls you today about ELECTRO-WORLD ONLINE.",
    ]


def test_a_callback_given_up_leaves_the_customer_with_the_neutral_text_only(
    client, bank_with_phone, linked_api, graph, settings
):
    settings.NOTIFICATIONS_CALLBACK_MAX_ATTEMPTS = 2
    alert = posted_alert(bank_with_phone, linked_api, graph, callback=True)
    tap_no(client, bank_with_phone, alert)
    receiver = Receiver([500, 500])

    deliver_callback(receiver)
    final = deliver_callback(receiver, now=timezone.now() + timedelta(days=1))

    assert final == "dead"
    assert texts(graph) == [neutral(bank_with_phone)]


def test_a_yes_is_never_followed_by_next_steps(client, bank_with_phone, linked_api, graph):
    alert = posted_alert(bank_with_phone, linked_api, graph, callback=True)
    from conversation.tests.test_conversation import write

    write(bank_with_phone, "Yes, it was me", payload=fraud_payload("FRAUD_YES", alert.pk))
    graph.sent.clear()

    deliver_callback(Receiver([{"action_taken": True}]))

    assert texts(graph) == []


# The staff dashboard


@pytest.fixture
def operator_client(linked, sign_in):
    from portal.models import StaffMembership
    from portal.tests.factories import StaffMembershipFactory

    member = StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.OPERATOR)
    return sign_in(member.user)


def dashboard(client, linked) -> str:
    return client.get(reverse("portal:dashboard", args=[linked.bank.slug])).content.decode()


def test_the_dashboard_warns_while_fraud_answers_have_nowhere_to_go(
    client, linked, linked_api, graph, operator_client
):
    alert = posted_alert(linked, linked_api, graph, callback=False)
    tap_no(client, linked, alert)

    page = dashboard(operator_client, linked)

    panel = page[page.index('id="panel-conversation-fraud-answers"') :]
    panel = panel[: panel.index("</section>")]
    assert 'role="alert"' in panel and "nowhere to go" in panel
    answers = operator_client.get(reverse("conversation:fraud_answers", args=[linked.bank.slug]))
    assert 'id="no-callback-warning"' in answers.content.decode()


def test_with_a_callback_url_the_dashboard_counts_answers_without_a_warning(
    client, linked, linked_api, graph, operator_client
):
    alert = posted_alert(linked, linked_api, graph, callback=True)
    tap_no(client, linked, alert)

    page = dashboard(operator_client, linked)

    panel = page[page.index('id="panel-conversation-fraud-answers"') :]
    panel = panel[: panel.index("</section>")]
    assert 'role="alert"' not in panel and "nowhere to go" not in panel
    assert "passed to your callback" in panel


# In the customer's language, with the formats of the text's own language.


def test_the_banks_next_steps_in_its_default_language_keep_that_languages_formats(
    client, linked, linked_api, graph
):
    ConversationText.objects.create(
        bank=linked.bank, kind="fraud_denied", locale="en", body="We blocked {amount}."
    )
    linked.customer.locale = "fr"  # the bank wrote its next steps in English only
    linked.customer.save()
    alert = posted_alert(linked, linked_api, graph, callback=True)
    tap_no(client, linked, alert)

    deliver_callback(Receiver([{"action_taken": True}]))

    assert texts(graph) == ["We blocked -€899.00."]  # not "-899,00 €"


def test_without_the_banks_own_text_a_confirmation_is_told_in_french(
    client, linked, linked_api, graph
):
    linked.customer.locale = "fr"
    linked.customer.save()
    alert = posted_alert(linked, linked_api, graph, callback=True)
    tap_no(client, linked, alert)

    deliver_callback(Receiver([{"action_taken": True}]))

    (said,) = texts(graph)
    assert said.startswith("Merci. Notre équipe fraude a donné suite à votre réponse")


def test_the_neutral_text_is_told_in_french(client, bank_with_phone, linked_api, graph):
    bank_with_phone.customer.locale = "fr"
    bank_with_phone.customer.save()
    alert = posted_alert(bank_with_phone, linked_api, graph, callback=False)

    tap_no(client, bank_with_phone, alert)

    bank = bank_with_phone.bank.name
    assert texts(graph) == [
        f"Merci. Nous avons transmis votre réponse à l'équipe fraude de {bank}. Si vous avez "
        "besoin d'aide maintenant, par exemple pour bloquer votre carte, appelez "
        f"{bank} au {PHONE}."
    ]
