"""Thin Celery tasks for the conversation: rows in PostgreSQL are the truth, tasks nudge.

Each is safe to run twice: an answered message is not answered again, and a message or
callback is claimed by a conditional update before anything leaves the bank.
"""

from celery import shared_task

from conversation import callbacks, services
from conversation.models import Conversation


@shared_task(name="notifications.answer_inbound", ignore_result=True)
def answer_inbound(message_id: int) -> int:
    """Mark the message seen, show typing, answer it, and send the answers."""
    found = (
        services.ConversationMessage.objects.filter(pk=message_id, direction="in")
        .values_list("conversation_id", "intent")
        .first()
    )
    if found is None or found[1]:  # gone, or already answered
        return 0
    conversation_id = found[0]
    conversation = Conversation.objects.get(pk=conversation_id)
    services.sender_action(conversation=conversation, action="mark_seen")
    replies = services.inbound_answer(message_id=message_id)
    if not replies:
        return 0
    services.sender_action(conversation=conversation, action="typing_on")
    for reply_id in replies:
        services.message_send(message_id=reply_id)
    return len(replies)


@shared_task(name="notifications.send_conversation_message", ignore_result=True)
def send_conversation_message(message_id: int) -> str:
    return services.message_send(message_id=message_id)


@shared_task(name="notifications.deliver_bank_callback", ignore_result=True)
def deliver_bank_callback(callback_id: int) -> str:
    return callbacks.callback_deliver(callback_id=callback_id)


@shared_task(name="notifications.sweep_conversations", ignore_result=True)
def sweep_conversations() -> int:
    """Beat, every few seconds: send what is due (retries, nudges the broker lost)."""
    services.messages_take_over()
    unanswered = services.inbound_unanswered()
    for message_id in unanswered:
        answer_inbound.delay(message_id)
    due = services.messages_due()
    for message_id in due:
        send_conversation_message.delay(message_id)
    callbacks_due = callbacks.callbacks_due()
    for callback_id in callbacks_due:
        deliver_bank_callback.delay(callback_id)
    return len(unanswered) + len(due) + len(callbacks_due)
