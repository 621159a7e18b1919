"""Every write of the conversation: inbound messages, answers, agent replies and fraud answers.

The webhook request only stores what the customer wrote and nudges a worker; the worker
answers (`inbound_answer`), and every outbound message is a `ConversationMessage` row
sent by `message_send`, which records what left the bank with an audit entry.

Where each part lives: `inbound` (storing and answering what a person wrote), `answers`
(the assistant's replies, and how any reply is queued), `fraud` (answers to fraud
alerts), `inbox` (staff replies, assignment, the bank's texts), `sending` (outbound
messages to the Send API, the sweeper's look-ups), `erasure` (retention and erasure).
"""

from conversation.models import ConversationMessage
from conversation.services.answers import Reply, dashboard_url
from conversation.services.echoes import page_inbox_message_record, reply_echo_record
from conversation.services.erasure import (
    customer_conversations_erase,
    message_bodies_purge,
)
from conversation.services.fraud import (
    FRAUD_ANSWER_WINDOW,
    fraud_answer_record,
    fraud_denied_follow_up,
    fraud_denied_neutral_text,
    fraud_denied_text,
)
from conversation.services.inbound import (
    RESPONSE_WINDOW,
    UNANSWERED_AFTER,
    inbound_answer,
    inbound_record,
    inbound_unanswered,
    lost_card_text,
)
from conversation.services.inbox import (
    AGENT_TEXT,
    CONSENT_ENDED_REFUSED,
    HUMAN_AGENT_WINDOW,
    ReplyRefusedError,
    agent_reply,
    conversation_assign,
    conversation_resolve,
    conversation_view_record,
    last_inbound_at,
)
from conversation.services.sending import (
    MAX_SEND_ATTEMPTS,
    SEND_LEASE,
    message_send,
    messages_due,
    messages_take_over,
    sender_action,
)
from conversation.services.texts import (
    AUTOMATED_TEXT_LIMIT,
    TEXT_SUBJECT,
    VERSIONED_TEXTS,
    conversation_text_approve,
    conversation_text_draft,
    conversation_text_errors,
    conversation_text_key,
    conversation_text_key_split,
    conversation_text_live_body,
    conversation_text_publish,
    conversation_text_reject,
    conversation_text_rollback,
)
from conversation.services.triage import (
    CANNED_SUBJECT,
    NOTE_LIMIT,
    VERSIONED_CANNED_REPLIES,
    TriageRefusedError,
    canned_reply_approve,
    canned_reply_delete,
    canned_reply_key_split,
    canned_reply_live_body,
    canned_reply_reject,
    canned_reply_rollback,
    canned_reply_save,
    conversation_note_add,
    inbox_settings_save,
)
from portal.rendering import TEXT_LIMIT

__all__ = [
    "AGENT_TEXT",
    "AUTOMATED_TEXT_LIMIT",
    "CANNED_SUBJECT",
    "CONSENT_ENDED_REFUSED",
    "FRAUD_ANSWER_WINDOW",
    "HUMAN_AGENT_WINDOW",
    "MAX_SEND_ATTEMPTS",
    "NOTE_LIMIT",
    "RESPONSE_WINDOW",
    "SEND_LEASE",
    "TEXT_LIMIT",
    "TEXT_SUBJECT",
    "UNANSWERED_AFTER",
    "VERSIONED_CANNED_REPLIES",
    "VERSIONED_TEXTS",
    "ConversationMessage",
    "Reply",
    "ReplyRefusedError",
    "TriageRefusedError",
    "agent_reply",
    "canned_reply_approve",
    "canned_reply_delete",
    "canned_reply_key_split",
    "canned_reply_live_body",
    "canned_reply_reject",
    "canned_reply_rollback",
    "canned_reply_save",
    "conversation_assign",
    "conversation_note_add",
    "conversation_resolve",
    "conversation_text_approve",
    "conversation_text_draft",
    "conversation_text_errors",
    "conversation_text_key",
    "conversation_text_key_split",
    "conversation_text_live_body",
    "conversation_text_publish",
    "conversation_text_reject",
    "conversation_text_rollback",
    "conversation_view_record",
    "customer_conversations_erase",
    "dashboard_url",
    "fraud_answer_record",
    "fraud_denied_follow_up",
    "fraud_denied_neutral_text",
    "fraud_denied_text",
    "inbound_answer",
    "inbound_record",
    "inbound_unanswered",
    "inbox_settings_save",
    "last_inbound_at",
    "lost_card_text",
    "message_bodies_purge",
    "message_send",
    "messages_due",
    "messages_take_over",
    "page_inbox_message_record",
    "reply_echo_record",
    "sender_action",
]
