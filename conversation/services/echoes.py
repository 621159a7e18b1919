"""The conversation's echoes: a reply's echo proves it went out, and what a person wrote in
Meta's Page inbox joins the thread the agent inbox shows.

`notifications.services.echoes` stores every echo once (by `mid`) and hands the ones that
are not notifications to `conversation.receivers` through `message_echoed`.
"""

import datetime as dt

from django.db import transaction
from django.utils import timezone

import messenger
from conversation.models import Conversation, ConversationMessage
from conversation.services.inbound import _conversation_for
from conversation.services.sending import SYSTEM
from notifications.models import MessageEcho
from portal.audit import Actor
from portal.models import Bank
from portal.rendering import TEXT_LIMIT, clean_text
from portal.services import audit_record

Direction = ConversationMessage.Direction
Author = ConversationMessage.Author
State = ConversationMessage.State
EchoOutcome = MessageEcho.Outcome
PAGE_INBOX = Actor.system("Page inbox")


def reply_echo_record(
    *, bank_id: int, page_id: str, psid: str, reply_id: int, mid: str, sent_at: dt.datetime
) -> str | None:
    """A reply's echo: the reply went out, whatever its sender recorded. Returns the echo's
    outcome, or None when no reply of this bank to this person has that id.

    A reply not yet recorded sent (its worker is still waiting for the answer, or lost
    it, or gave up) becomes sent with the echo's `mid`, once: the update is conditional,
    so the worker's own record and this one never both apply, and only the one that does
    writes the `conversation.message_sent` audit entry.
    """
    reply = (
        ConversationMessage.objects.select_related("conversation", "bank")
        .filter(
            pk=reply_id,
            bank_id=bank_id,
            direction=Direction.OUTBOUND,
            conversation__page_id=page_id,
            conversation__psid=psid,
        )
        .first()
    )
    if reply is None:
        return None
    now = timezone.now()
    settled = ConversationMessage.objects.filter(
        pk=reply.pk, state__in=(State.PENDING, State.SENDING, State.FAILED)
    ).update(
        state=State.SENT,
        mid=mid[:128],
        detail="",
        sent_at=min(sent_at, now),
        lease_expires_at=None,
        next_attempt_at=None,
    )
    if not settled:
        return EchoOutcome.REPLY
    conversation = reply.conversation
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=now)
    target = (
        {"target_type": "linking.consent", "target_id": str(conversation.consent_id)}
        if conversation.consent_id
        else {"target": conversation}
    )
    audit_record(
        actor=Actor.staff(reply.sent_by) if reply.sent_by_id else SYSTEM,
        action="conversation.message_sent",
        bank=reply.bank,
        details={
            "conversation": conversation.pk,
            "message": reply.pk,
            "author": reply.author,
            "form": reply.form,
            "attempt": reply.attempts,
            "message_id": mid,
            "settled_by": "echo",
        },
        data_categories=reply.data_categories,
        **target,
    )
    return EchoOutcome.SETTLED


def page_inbox_message_record(
    *, bank_id: int, page_id: str, event: messenger.EchoEvent
) -> ConversationMessage:
    """A message someone sent from the Page outside bankside (Meta's Page inbox, another
    app): it joins the person's thread as an outbound message by "Page inbox", so agents
    see what the customer was told. Called once per echo (`MessageEcho` is unique by mid).
    """
    text = event.text or ""
    if not text and event.attachments:
        text = "(" + ", ".join(sorted({a.type for a in event.attachments})) + ")"
    at = dt.datetime.fromtimestamp(event.timestamp / 1000, tz=dt.UTC)
    with transaction.atomic():
        conversation = _conversation_for(bank_id=bank_id, page_id=page_id, psid=event.recipient_id)
        message = ConversationMessage.objects.create(
            bank_id=bank_id,
            conversation=conversation,
            direction=Direction.OUTBOUND,
            author=Author.PAGE_INBOX,
            mid=event.mid[:128],
            text=clean_text(text)[:TEXT_LIMIT],
            state=State.SENT,
            created_at=at,
            sent_at=at,
        )
        Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
        audit_record(
            actor=PAGE_INBOX,
            action="conversation.page_inbox_message",
            bank=Bank.objects.get(pk=bank_id),
            target=conversation,
            details={"message": message.pk, "app_id": event.app_id or "", "length": len(text)},
        )
    return message
