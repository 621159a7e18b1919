"""Answers to what linked (and unlinked) people write, at the Send API boundary."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

import messenger
from conversation import matcher, services, tasks
from conversation.models import Conversation, ConversationMessage
from linking.sections import sections_for
from linking.subject_data import contributors
from notifications.models import Event
from notifications.tests.factories import EventFactory
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db

_mids = itertools.count(1)


def write(linked, text, *, psid=None, payload=None):
    """The person writes `text` (or taps a quick reply), and a worker answers."""
    event = messenger.MessageEvent(
        page_id=linked.integration.page_id,
        timestamp=int(timezone.now().timestamp() * 1000),
        raw={},
        sender_id=psid or linked.consent.psid,
        recipient_id=linked.integration.page_id,
        mid=f"m_in_{next(_mids)}",
        text=text,
        quick_reply_payload=payload,
    )
    message = services.inbound_record(
        bank_id=linked.bank.pk, page_id=linked.integration.page_id, event=event
    )
    tasks.answer_inbound(message.pk)
    return message


def sent(graph) -> list[dict]:
    return [body for body in graph.sent if "message" in body]


def sent_text(graph) -> str:
    (body,) = sent(graph)
    return body["message"]["text"]


@pytest.mark.parametrize(
    ("text", "locale", "intent"),
    [
        ("balance", "en", matcher.BALANCE),
        ("How much do I have?", "en", matcher.BALANCE),
        ("Quel est mon solde ?", "fr", matcher.BALANCE),
        ("Kontostand bitte", "de", matcher.BALANCE),
        ("Meine letzten Umsätze", "de", matcher.TRANSACTIONS),
        ("show my recent transactions", "en", matcher.TRANSACTIONS),
        ("Can I talk to a person?", "en", matcher.AGENT),
        ("je voudrais parler à un conseiller", "fr", matcher.AGENT),
        ("help", "en", matcher.HELP),
        ("unlink my account", "en", matcher.UNLINK),
        ("Nein, das war ich nicht", "de", matcher.NO),
        ("oui", "fr", matcher.YES),
        ("what is the weather in Lisbon", "en", matcher.UNKNOWN),
    ],
)
def test_the_matcher_understands_plain_phrasings_in_the_customers_language(text, locale, intent):
    assert matcher.match(text, locale=locale).intent == intent


def test_a_quick_reply_payload_wins_over_the_words():
    found = matcher.match("whatever", quick_reply_payload="FRAUD_NO:42")

    assert (found.intent, found.notification_id) == (matcher.NO, 42)


def test_a_reply_to_an_alert_whose_id_looks_like_a_card_number_still_names_it():
    from core.cards import holds_card_number, luhn_valid
    from notifications.fraud_replies import FRAUD_NO, fraud_payload

    # A month-prefixed id of 14 digits that passes the Luhn check: in decimal, the
    # payload would be masked as a card number when stored.
    alert_id = next(n for n in range(91259465105409, 91259465105509) if luhn_valid(str(n)))
    payload = fraud_payload(FRAUD_NO, alert_id)

    assert holds_card_number(f"FRAUD_NO:{alert_id}")
    assert not holds_card_number(payload)
    found = matcher.match("No, it wasn't me", quick_reply_payload=payload)
    assert (found.intent, found.notification_id) == (matcher.NO, alert_id)


@pytest.mark.parametrize(
    "payload", ["FRAUD_NO:n", "FRAUD_NO:nZZ", "FRAUD_NO:n-1", "FRAUD_NO:x12", "FRAUD_NO:n٣"]
)
def test_a_malformed_alert_reply_names_no_alert(payload):
    assert matcher.match("whatever", quick_reply_payload=payload).notification_id is None


def test_a_linked_customer_gets_the_balances_of_consented_accounts_only(linked, graph):
    from linking.tests.factories import AccountFactory

    AccountFactory(customer=linked.customer, name="Secret savings", last4="7777", balance="99999")

    write(linked, "what's my balance?")

    text = sent_text(graph)
    assert "•••• 4821: €1,204.50" in text and "•••• 9012" in text
    assert "7777" not in text and "99,999" not in text and "Secret" not in text
    entry = AuditEvent.objects.filter(action="conversation.message_sent").get()
    assert entry.data_categories == ["balances"]
    assert entry.target_id == str(linked.consent.pk)


def test_the_balance_is_the_newest_the_core_told(linked, graph):
    earlier = timezone.now() - timedelta(days=1)
    EventFactory(
        account=linked.checking,
        occurred_at=earlier,
        data={"available": "5.00", "ledger": "5.00", "currency": "EUR"},
    )
    EventFactory(
        account=linked.checking,
        data={"available": "1100.00", "ledger": "1133.25", "currency": "EUR"},
    )
    EventFactory(
        account=linked.card,
        occurred_at=earlier,
        data={"available": "1.00", "currency": "EUR"},
    )

    write(linked, "balance")

    text = sent_text(graph)
    assert "•••• 4821: €1,133.25" in text
    assert "•••• 9012: " in text and "€1.00" not in text  # older than the account's own


def test_the_answer_is_marked_seen_and_typed_before_it_is_sent(linked, graph):
    write(linked, "balance")

    kinds = [body.get("sender_action") or "message" for body in graph.sent]
    assert kinds == ["mark_seen", "typing_on", "message"]
    assert sent(graph)[0]["messaging_type"] == "RESPONSE"


def test_without_the_balances_scope_the_customer_hears_what_is_not_shared(linked, graph):
    _, consent = linked.person(scopes=["transactions"])

    write(linked, "balance", psid=consent.psid)

    text = sent_text(graph)
    assert "not chosen to share balances" in text
    assert "/my/harbour/" in text
    assert "€" not in text and "5555" not in text


def test_recent_transactions_are_listed_masked_and_newest_first(linked, graph):
    for n, merchant in enumerate(["Bakery", "Card 4929123456784821 shop", "Cinema"]):
        EventFactory(
            account=linked.card,
            type=Event.Type.TRANSACTION_POSTED,
            occurred_at=timezone.now() - timedelta(hours=3 - n),
            data={"amount": "-12.50", "currency": "EUR", "merchant": merchant},
        )

    write(linked, "transactions")

    lines = sent_text(graph).splitlines()
    assert lines[0] == "Your latest transactions:"
    assert "Cinema" in lines[1] and "Bakery" in lines[3]
    assert "4929123456784821" not in lines[2] and "•••• 4821" in lines[2]
    assert "-€12.50" in lines[1] and "•••• 9012" in lines[1]


def test_a_french_customer_is_answered_in_french(linked, graph):
    linked.customer.locale = "fr"
    linked.customer.save()

    write(linked, "mon solde")

    text = sent_text(graph)
    assert text.startswith("Vos soldes :") and "1 204,50 €" in text.replace("\u202f", " ").replace(
        "\xa0", " "
    )


def test_an_unlinked_person_gets_the_log_in_button_and_one_line(linked, graph):
    write(linked, "what's my balance?", psid="9999000011112222")

    (body,) = sent(graph)
    payload = body["message"]["attachment"]["payload"]
    assert payload["template_type"] == "button"
    assert payload["buttons"] == [
        {"type": "account_link", "url": "http://localhost:8000/link/harbour/"}
    ]
    assert "\n" not in payload["text"] and "€" not in payload["text"]
    conversation = Conversation.objects.get(psid="9999000011112222")
    assert conversation.needs_person is False and conversation.customer is None


def test_asking_for_a_person_puts_the_conversation_in_the_inbox(linked, graph):
    write(linked, "I want to talk to a person")

    conversation = Conversation.objects.get()
    assert conversation.needs_person and conversation.reason == "asked_for_person"
    assert "A person from" in sent_text(graph)


def test_a_message_the_matcher_cannot_answer_goes_to_the_inbox_with_quick_replies(linked, graph):
    write(linked, "my card got stuck in the machine")

    conversation = Conversation.objects.get()
    assert conversation.needs_person and conversation.reason == "not_understood"
    (body,) = sent(graph)
    titles = [q["title"] for q in body["message"]["quick_replies"]]
    assert titles == ["Balance", "Transactions", "Talk to a person", "Help"]


def test_unlink_offers_the_log_out_button(linked, graph):
    write(linked, "unlink")

    (body,) = sent(graph)
    assert body["message"]["attachment"]["payload"]["buttons"] == [{"type": "account_unlink"}]


def test_a_webhook_retried_with_the_same_mid_is_answered_once(linked, graph):
    event = messenger.MessageEvent(
        page_id=linked.integration.page_id,
        timestamp=int(timezone.now().timestamp() * 1000),
        raw={},
        sender_id=linked.consent.psid,
        recipient_id=linked.integration.page_id,
        mid="m_same",
        text="balance",
    )
    first = services.inbound_record(bank_id=linked.bank.pk, page_id=event.page_id, event=event)
    again = services.inbound_record(bank_id=linked.bank.pk, page_id=event.page_id, event=event)
    tasks.answer_inbound(first.pk)
    tasks.answer_inbound(first.pk)

    assert again is None
    assert len(sent(graph)) == 1
    assert ConversationMessage.objects.filter(direction="in").count() == 1


def test_a_transient_error_leaves_the_reply_pending_with_a_later_attempt(linked, graph):
    from notifications.tests.conftest import graph_error

    graph.answers = [None, None, graph_error(2, status=500, message="try later")]

    write(linked, "balance")

    reply = ConversationMessage.objects.get(direction="out")
    assert reply.state == "pending" and reply.attempts == 1
    assert reply.next_attempt_at > timezone.now()
    assert services.message_send(message_id=reply.pk) == "pending"  # not due yet
    assert services.message_send(message_id=reply.pk, now=reply.next_attempt_at) == "sent"


def test_erasure_removes_the_psid_and_every_text_of_the_customer(linked, graph):
    write(linked, "balance")
    part = next(c for c in contributors() if c.key == "notifications.conversation")

    exported = part.export(linked.customer)
    changed = part.erase(linked.customer)

    assert exported["conversations"][0]["messages"][0]["text"] == "balance"
    assert changed >= 3
    conversation = Conversation.objects.get()
    assert conversation.psid != linked.consent.psid and conversation.customer is None
    assert set(ConversationMessage.objects.values_list("text", flat=True)) == {""}
    assert not ConversationMessage.objects.filter(payload__isnull=False).exists()


def test_retention_blanks_message_bodies_older_than_the_cutoff(linked, graph):
    from portal.retention import purgers

    write(linked, "balance")
    purge = next(p for p in purgers() if p.key == "notifications.conversation").purge

    assert purge(linked.bank, timezone.now() - timedelta(days=1)) == 0
    assert purge(linked.bank, timezone.now() + timedelta(seconds=1)) == 2
    assert set(ConversationMessage.objects.values_list("text", flat=True)) == {""}


def test_the_link_page_lists_the_messages_and_replies(linked, graph):
    write(linked, "balance")

    section = next(s for s in sections_for(linked.consent) if s.key == "notifications.conversation")

    assert "balance" in section.html and "Your balances" in section.html


def test_a_signed_webhook_stores_the_message_once_and_nudges_a_worker(
    linked, client, django_capture_on_commit_callbacks
):
    import hashlib
    import hmac
    import json

    from django.urls import reverse

    body = json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": linked.integration.page_id,
                    "time": 1767225600123,
                    "messaging": [
                        {
                            "sender": {"id": linked.consent.psid},
                            "recipient": {"id": linked.integration.page_id},
                            "timestamp": int(timezone.now().timestamp() * 1000),
                            "message": {"mid": "m_hook", "text": "Kontostand"},
                        }
                    ],
                }
            ],
        }
    ).encode()
    secret = linked.integration.app_secret.encode()
    headers = {
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    }
    address = reverse("messenger-webhook", args=[linked.bank.slug])

    with django_capture_on_commit_callbacks() as nudges:
        first = client.post(address, body, content_type="application/json", headers=headers)
        again = client.post(address, body, content_type="application/json", headers=headers)

    assert first.status_code == again.status_code == 200
    (stored,) = ConversationMessage.objects.all()
    assert (stored.text, stored.mid, stored.intent) == ("Kontostand", "m_hook", "")
    assert len(nudges) == 1


def test_an_older_message_arriving_late_does_not_move_the_last_message_back(linked, graph):
    write(linked, "balance")
    newest = Conversation.objects.get().last_inbound_at
    late = messenger.MessageEvent(
        page_id=linked.integration.page_id,
        timestamp=int((timezone.now() - timedelta(hours=2)).timestamp() * 1000),
        raw={},
        sender_id=linked.consent.psid,
        recipient_id=linked.integration.page_id,
        mid="m_late",
        text="hello",
    )

    services.inbound_record(bank_id=linked.bank.pk, page_id=late.page_id, event=late)

    assert Conversation.objects.get().last_inbound_at == newest


def test_a_postback_with_the_banks_payload_is_answered_like_its_quick_reply(linked, graph):
    event = messenger.PostbackEvent(
        page_id=linked.integration.page_id,
        timestamp=int(timezone.now().timestamp() * 1000),
        raw={},
        sender_id=linked.consent.psid,
        recipient_id=linked.integration.page_id,
        title="Show me",
        payload="BALANCE",
        mid="m_postback",
    )

    message = services.inbound_record(bank_id=linked.bank.pk, page_id=event.page_id, event=event)
    tasks.answer_inbound(message.pk)

    assert sent_text(graph).startswith("Your balances:")


def test_the_sweeper_answers_what_a_lost_nudge_left_and_resends_what_is_due(
    linked, graph, settings
):
    event = messenger.MessageEvent(
        page_id=linked.integration.page_id,
        timestamp=int((timezone.now() - timedelta(minutes=5)).timestamp() * 1000),
        raw={},
        sender_id=linked.consent.psid,
        recipient_id=linked.integration.page_id,
        mid="m_lost",
        text="balance",
    )
    lost = services.inbound_record(bank_id=linked.bank.pk, page_id=event.page_id, event=event)

    assert services.inbound_unanswered() == [lost.pk]
    tasks.answer_inbound(lost.pk)
    assert services.inbound_unanswered() == []
    reply = ConversationMessage.objects.get(direction="out")
    ConversationMessage.objects.filter(pk=reply.pk).update(
        state="sending", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.messages_take_over() == 1
    # Its worker stopped mid-send: it waits for its echo before it is sent again.
    assert services.messages_due() == []
    wait = timedelta(seconds=settings.NOTIFICATIONS_ECHO_WAIT_SECONDS + 1)
    assert services.messages_due(now=timezone.now() + wait) == [reply.pk]


def test_a_paused_integration_sends_nothing_and_says_why(linked, graph):
    from portal.models import MessengerIntegration

    MessengerIntegration.objects.filter(pk=linked.integration.pk).update(status="paused")

    write(linked, "balance")

    reply = ConversationMessage.objects.get(direction="out")
    assert reply.state == "failed" and "not live" in reply.detail
    assert graph.sent == []


def test_get_started_is_greeted_not_misunderstood(linked, graph):
    """The first tap of a new thread (an m.me invitation's too) is Messenger's *Get
    Started* postback: the bot says hello instead of "Sorry, I didn't understand"."""
    event = messenger.PostbackEvent(
        page_id=linked.integration.page_id,
        timestamp=int(timezone.now().timestamp() * 1000),
        raw={},
        sender_id=linked.consent.psid,
        recipient_id=linked.integration.page_id,
        title="Get Started",
        payload="GET_STARTED",
    )
    message = services.inbound_record(
        bank_id=linked.bank.pk, page_id=linked.integration.page_id, event=event
    )
    tasks.answer_inbound(message.pk)

    text = sent_text(graph)
    assert text.startswith("Hello") and "didn't understand" not in text
