"""A database the old code migrated, with conversations in it, migrates across the move of
the conversation's models out of `notifications` and keeps every row as it was."""

from datetime import UTC, datetime

import pytest

from core.tests.migrations import migrate_to_latest, schema_at

BEFORE_THE_MOVE = [("notifications", "0008_people_are_per_bank")]

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def old_apps():
    """The schema of the code before the move; put back to the latest whatever happens."""
    with schema_at([*BEFORE_THE_MOVE, ("conversation", None)]) as apps:
        yield apps


def test_conversations_and_bank_callbacks_are_read_back_unchanged_after_the_move(old_apps):
    assert not old_apps.is_installed("conversation")
    bank = old_apps.get_model("portal", "Bank").objects.create(name="Harbour", slug="harbour")
    written = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    conversation = old_apps.get_model("notifications", "Conversation").objects.create(
        bank=bank,
        page_id="1122334455",
        psid="7000000000000001",
        needs_person=True,
        reason="asked_for_person",
        last_inbound_at=written,
        updated_at=written,
        created_at=written,
    )
    message = old_apps.get_model("notifications", "ConversationMessage").objects.create(
        bank=bank,
        conversation=conversation,
        direction="in",
        author="customer",
        mid="m_1",
        text="Can I talk to someone?",
        intent="agent",
        state="received",
        created_at=written,
    )
    callback = old_apps.get_model("notifications", "BankCallback").objects.create(
        bank=bank,
        type="fraud_alert.answered",
        webhook_id="msg_2b7c",
        body='{"answer": "denied"}',
        url="https://bank.example/hooks",
        state="delivered",
        attempts=1,
        created_at=written,
        delivered_at=written,
    )
    old_apps.get_model("notifications", "BankCallbackAttempt").objects.create(
        callback=callback, number=1, started_at=written, latency_ms=42, status_code=204
    )
    text = old_apps.get_model("notifications", "ConversationText").objects.create(
        bank=bank, kind="fraud_denied", locale="en", body="Call us on 0800 000 000."
    )

    migrate_to_latest()

    from conversation.models import (
        BankCallback,
        BankCallbackAttempt,
        Conversation,
        ConversationMessage,
        ConversationText,
    )

    moved = Conversation.objects.get()
    assert (moved.pk, moved.bank_id, moved.page_id, moved.psid) == (
        conversation.pk,
        bank.pk,
        "1122334455",
        "7000000000000001",
    )
    assert (moved.needs_person, moved.reason, moved.last_inbound_at, moved.updated_at) == (
        True,
        Conversation.Reason.ASKED_FOR_PERSON,
        written,
        written,
    )
    (read,) = moved.messages.all()
    assert (read.pk, read.bank_id, read.direction, read.author, read.mid) == (
        message.pk,
        bank.pk,
        ConversationMessage.Direction.INBOUND,
        ConversationMessage.Author.CUSTOMER,
        "m_1",
    )
    assert (read.text, read.intent, read.state, read.created_at) == (
        "Can I talk to someone?",
        "agent",
        ConversationMessage.State.RECEIVED,
        written,
    )
    sent = BankCallback.objects.get()
    assert (sent.pk, sent.bank_id, sent.type, sent.webhook_id, sent.body, sent.url) == (
        callback.pk,
        bank.pk,
        "fraud_alert.answered",
        "msg_2b7c",
        '{"answer": "denied"}',
        "https://bank.example/hooks",
    )
    assert (sent.state, sent.attempts, sent.delivered_at) == (
        BankCallback.State.DELIVERED,
        1,
        written,
    )
    (attempt,) = sent.tries.all()
    assert isinstance(attempt, BankCallbackAttempt)
    assert (attempt.number, attempt.latency_ms, attempt.status_code) == (1, 42, 204)
    assert ConversationText.objects.get().pk == text.pk
    assert ConversationText.objects.get().body == "Call us on 0800 000 000."
    assert Conversation._meta.db_table == "notifications_conversation"
