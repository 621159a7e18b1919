"""What customers write to the bank's Page, the answers, the agent inbox, and the fraud
answers relayed to the bank's callback URL.

The tables keep the names they had when these models lived in `notifications`
(migration 0001 adopts them as they are).
"""

import json
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from linking.models import Consent, Customer
from notifications.models import Event, Notification
from portal.models import Bank
from portal.tenancy import BankScopedQuerySet


class Conversation(models.Model):
    """One Messenger person's thread with a bank's Page, as the agent inbox sees it.

    One row per (Page, PSID). `needs_person` puts it in the inbox: the customer asked for a
    person, or the matcher could not answer. `last_inbound_at` is the customer's last
    message: `HUMAN_AGENT` replies are allowed for 7 days from it. `consent` is the link the
    person had when they last wrote (none for people who are not linked).
    """

    class Reason(models.TextChoices):
        ASKED_FOR_PERSON = "asked_for_person", "Asked for a person"
        NOT_UNDERSTOOD = "not_understood", "Not understood"
        FRAUD_DENIED = "fraud_denied", "Denied a card payment"
        LOST_CARD = "lost_card", "Lost or stolen card"

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="conversations")
    page_id = models.CharField(max_length=32)
    psid = models.CharField(max_length=32)
    consent = models.ForeignKey(
        Consent, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    needs_person = models.BooleanField(default=False)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    # Anything new in the thread (in or out): the inbox's order and its live updates.
    updated_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # When the customer was told not to send card numbers here: once per conversation.
    card_number_warned_at = models.DateTimeField(null=True, blank=True)
    # The inbound message whose answer carries that warning (first, after any disclosure).
    card_number_warned_for = models.PositiveBigIntegerField(null=True, blank=True)
    # When the assistant last said it is automated (`Bank.disclose_automation`).
    disclosed_at = models.DateTimeField(null=True, blank=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        db_table = "notifications_conversation"
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "page_id", "psid"], name="one_conversation_per_person"
            ),
        ]
        indexes = [
            models.Index(
                fields=["bank", "-updated_at"],
                condition=Q(needs_person=True),
                name="conversation_inbox",
            ),
        ]

    def __str__(self) -> str:
        who = self.customer.name if self.customer_id else "Unlinked person"
        return f"Conversation #{self.pk} with {who}"


class ConversationMessage(models.Model):
    """One message of a conversation: the customer's, or one the bank sent (bot or agent).

    Inbound rows are deduplicated on Messenger's `mid` (webhooks are retried). Outbound
    rows are the bank's record of what left it: the exact Send API body, the data
    categories it drew on, and its fate. They are sent by a worker, retried with backoff
    from `next_attempt_at`; a claim is `sending` until its lease runs out.
    """

    class Direction(models.TextChoices):
        INBOUND = "in", "From the customer"
        OUTBOUND = "out", "From the bank"

    class Author(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        ASSISTANT = "assistant", "Automatic answer"
        AGENT = "agent", "Bank staff"
        PAGE_INBOX = "page_inbox", "Page inbox"  # sent from Meta's Page inbox, not bankside

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Not sent"

    bank = models.ForeignKey(
        Bank, on_delete=models.CASCADE, related_name="conversation_messages", db_index=False
    )
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    author = models.CharField(max_length=10, choices=Author.choices)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    mid = models.CharField(max_length=128, blank=True)
    text = models.TextField(blank=True)
    quick_reply_payload = models.CharField(max_length=1000, blank=True)
    intent = models.CharField(max_length=24, blank=True)
    payload = models.JSONField(null=True, blank=True)
    form = models.CharField(max_length=16, blank=True)  # RESPONSE or HUMAN_AGENT
    data_categories = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=10, choices=State.choices)
    detail = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        db_table = "notifications_conversationmessage"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "mid"],
                condition=Q(direction="in") & ~Q(mid=""),
                name="one_inbound_message_per_mid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state__in=["pending", "sending"]),
                name="conversation_message_due",
            ),
            models.Index(fields=["bank", "created_at"], name="conversation_message_age"),
            models.Index(
                fields=["created_at"],
                condition=Q(direction="in", intent=""),
                name="conversation_unanswered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} message #{self.pk} ({self.get_state_display()})"


class FraudAlertAnswer(models.Model):
    """A customer's answer to a fraud alert: recorded once per alert, never changed.

    The unique notification makes a second tap (or a retried webhook) find the first
    answer instead of writing another.
    """

    class Answer(models.TextChoices):
        CONFIRMED = "confirmed", "Yes, it was me"
        DENIED = "denied", "No, it wasn't me"

    class Told(models.TextChoices):
        """What the customer was told after a "No": never more than the bank confirmed."""

        NOTHING = "", "Nothing yet"
        NEUTRAL = "neutral", "Passed to the fraud team, with the bank's phone number"
        BANK_ACTION = "bank_action", "What the bank did, as its fraud system confirmed"

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="fraud_answers")
    # No foreign keys in the database to the partitioned notifications and events.
    notification = models.OneToOneField(
        Notification, on_delete=models.CASCADE, related_name="fraud_answer", db_constraint=False
    )
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    consent = models.ForeignKey(Consent, on_delete=models.CASCADE, related_name="+")
    answer = models.CharField(max_length=10, choices=Answer.choices)
    answered_at = models.DateTimeField(default=timezone.now)
    customer_told = models.CharField(max_length=12, choices=Told.choices, blank=True, default="")
    bank_action_confirmed_at = models.DateTimeField(null=True, blank=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        db_table = "notifications_fraudalertanswer"
        ordering = ["-answered_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_answer_display()} to {self.event}"


class BankCallback(models.Model):
    """A request to the bank's callback URL, signed the Standard Webhooks way.

    `webhook_id` is the same on every attempt, so the bank can deduplicate; each attempt
    is signed afresh with its own timestamp. A worker claims a due row (`pending` whose
    `next_attempt_at` has come), and failures retry with exponential backoff and jitter
    until `NOTIFICATIONS_CALLBACK_MAX_ATTEMPTS`, then the row is `dead`.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting"
        DELIVERING = "delivering", "Delivering"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Gave up"
        NOT_CONFIGURED = "not_configured", "No callback URL"

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="callbacks")
    fraud_answer = models.ForeignKey(
        FraudAlertAnswer, null=True, blank=True, on_delete=models.CASCADE, related_name="callbacks"
    )
    type = models.CharField(max_length=64)
    webhook_id = models.CharField(max_length=64, unique=True)
    body = models.TextField()
    url = models.URLField(max_length=500, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        db_table = "notifications_bankcallback"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state__in=["pending", "delivering"]),
                name="callback_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} callback {self.webhook_id} ({self.get_state_display()})"

    @property
    def data(self) -> dict[str, Any]:
        """The body's `data`, for the staff's log (a body that does not parse gives {})."""
        try:
            data = json.loads(self.body).get("data")
        except (ValueError, AttributeError):
            return {}
        return data if isinstance(data, dict) else {}


class BankCallbackAttempt(models.Model):
    """One POST of a callback to the bank, with what its server answered."""

    callback = models.ForeignKey(BankCallback, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    # What bankside read in the bank's answer (`conversation.callback_responses`).
    response_note = models.CharField(max_length=300, blank=True)

    bank_path = "callback__bank"
    objects = BankScopedQuerySet.as_manager()

    class Meta:
        db_table = "notifications_bankcallbackattempt"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.callback_id}: {self.status_code or self.error}"


class ConversationText(models.Model):
    """A text the bank writes for the conversation, per language: its next steps after a
    customer says a flagged payment was not theirs (checked like message templates), or
    the sentence saying the chat is automated (plain text)."""

    class Kind(models.TextChoices):
        FRAUD_DENIED = "fraud_denied", "After “No, it wasn't me”, once your fraud system confirms"
        AUTOMATED = "automated", "Telling the customer the chat is automated"

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="conversation_texts")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    locale = models.CharField(max_length=10)
    body = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        db_table = "notifications_conversationtext"
        ordering = ["kind", "locale"]
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "kind", "locale"], name="one_conversation_text_per_locale"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.locale}) at {self.bank}"


# The reasons that go to the top of the inbox: money may be leaving the customer's account.
URGENT_REASONS = (Conversation.Reason.FRAUD_DENIED, Conversation.Reason.LOST_CARD)


class InboxSettings(models.Model):
    """How the bank runs its agent inbox: the reply target its agents are measured against.

    One row per bank, written by its admins (audited); a bank without one has the defaults.
    """

    DEFAULT_REPLY_TARGET_MINUTES = 15

    bank = models.OneToOneField(Bank, on_delete=models.CASCADE, related_name="inbox_settings")
    reply_target_minutes = models.PositiveIntegerField(default=DEFAULT_REPLY_TARGET_MINUTES)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BankScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Inbox settings of {self.bank}: reply within {self.reply_target_minutes} min"


class ConversationNote(models.Model):
    """An agent's internal note on a conversation: for the bank's staff, never sent."""

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="+", db_index=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    written_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Note #{self.pk} on conversation #{self.conversation_id}"


class CannedReply(models.Model):
    """A reply the bank wrote once for its agents to pick, per language; an agent still
    reads and sends it as their own reply."""

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="canned_replies")
    locale = models.CharField(max_length=10)
    title = models.CharField(max_length=80)
    body = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["locale", "title", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "locale", "title"], name="one_canned_reply_per_title"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.locale}) at {self.bank}"
