"""The agent inbox: staff replies, assignment, resolving, and the bank's own texts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

import messenger
from conversation.models import Conversation, ConversationMessage
from conversation.services.answers import Reply, _queue
from core.cards import holds_card_number
from linking.models import Contact
from portal.audit import Actor
from portal.models import StaffMembership
from portal.rendering import CARD_NUMBER_REFUSED, TEXT_LIMIT, clean_text
from portal.services import audit_record

if TYPE_CHECKING:
    from django.contrib.auth.models import User

Author = ConversationMessage.Author
HUMAN_AGENT_WINDOW = timedelta(days=7)
# What an agent's free text is, in the audit's data categories.
AGENT_TEXT = "conversation"


class ReplyRefusedError(Exception):
    """An agent's reply that cannot go out; the message says why, for the agent."""


CONSENT_ENDED_REFUSED = (
    "The customer stopped sharing with the bank on Messenger. Tick “I confirm this reply "
    "is needed although the customer stopped sharing” to send it; nothing was sent."
)


def agent_reply(
    *,
    actor: Actor,
    conversation: Conversation,
    text: str,
    consent_ended_confirmed: bool = False,
) -> ConversationMessage:
    """An operator's reply, sent with the `HUMAN_AGENT` tag within 7 days of the customer's
    last message; refused with the reason otherwise (nothing is written then).

    When the customer ended their consent (revoked it, or let it expire) the reply goes
    only with the agent's explicit confirmation (`consent_ended_confirmed`), recorded in
    the audit entry. The message is signed by the staff member `actor` names
    (`Actor.staff`), as they are the one who wrote it.
    """
    from conversation.selectors import consent_ended

    if actor.type != "staff":
        raise ValueError("An agent reply is written by a staff member.")
    text = clean_text(text or "").strip()
    if not text:
        raise ReplyRefusedError("Write a reply first.")
    if len(text) > TEXT_LIMIT:
        raise ReplyRefusedError(
            f"A reply is at most {TEXT_LIMIT} characters; this one is {len(text)}."
        )
    if holds_card_number(text):
        raise ReplyRefusedError(CARD_NUMBER_REFUSED)
    ended = consent_ended(conversation)
    if ended is not None and not consent_ended_confirmed:
        raise ReplyRefusedError(CONSENT_ENDED_REFUSED)
    last = last_inbound_at(conversation)
    if last is None or timezone.now() - last >= HUMAN_AGENT_WINDOW:
        when = f" (last message {last:%d %b %Y %H:%M} UTC)" if last else ""
        raise ReplyRefusedError(
            "This customer last wrote more than 7 days ago"
            f"{when}: Messenger allows a person's reply only within 7 days of the customer's "
            "last message. The customer has to write again first."
        )
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        payload = messenger.builders.human_agent_message(conversation.psid, text)
        message = _queue(
            conversation,
            Reply(text, payload, [AGENT_TEXT]),
            author=Author.AGENT,
            form="HUMAN_AGENT",
            sent_by_id=int(actor.id),
        )
        conversation.updated_at = timezone.now()
        conversation.save(update_fields=["updated_at"])
        audit_record(
            actor=actor,
            action="conversation.agent_replied",
            bank=conversation.bank,
            target=conversation,
            details={
                "message": message.pk,
                "length": len(text),
                **({"consent_ended_confirmed": ended.pk} if ended is not None else {}),
            },
            data_categories=[AGENT_TEXT],
        )
        from conversation import tasks

        transaction.on_commit(lambda: tasks.send_conversation_message.delay(message.pk))
    return message


def conversation_view_record(*, actor: Actor, conversation: Conversation) -> None:
    """Staff opened a linked customer's conversation: reading customer data is audited."""
    if conversation.customer_id is None:
        return
    audit_record(
        actor=actor,
        action="customer_data.viewed",
        bank=conversation.bank,
        target_type="linking.customer",
        target_id=str(conversation.customer_id),
        details={"conversation": conversation.pk, "page": "agent inbox"},
    )


def last_inbound_at(conversation: Conversation) -> datetime | None:
    """The customer's last action on the Page: the later of the contact's and the thread's."""
    contact = (
        Contact.objects.filter(
            bank_id=conversation.bank_id, page_id=conversation.page_id, psid=conversation.psid
        )
        .values_list("last_inbound_at", flat=True)
        .first()
    )
    moments = [m for m in (contact, conversation.last_inbound_at) if m is not None]
    return max(moments) if moments else None


@transaction.atomic
def conversation_assign(
    *, actor: Actor, conversation: Conversation, assignee: User | None
) -> Conversation:
    """Give the conversation to a bank admin or operator (or to nobody, with None)."""
    if assignee is not None and not (
        assignee.is_superuser
        or StaffMembership.objects.filter(
            user=assignee,
            bank_id=conversation.bank_id,
            role__in=[StaffMembership.Role.ADMIN, StaffMembership.Role.OPERATOR],
        ).exists()
    ):
        raise ValueError("Only the bank's admins and operators can take a conversation.")
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    conversation.assigned_to = assignee
    conversation.updated_at = timezone.now()
    conversation.save(update_fields=["assigned_to", "updated_at"])
    audit_record(
        actor=actor,
        action="conversation.assigned",
        bank=conversation.bank,
        target=conversation,
        details={"assignee": assignee.get_username() if assignee else None},
    )
    return conversation


@transaction.atomic
def conversation_resolve(*, actor: Actor, conversation: Conversation) -> Conversation:
    """Take the conversation out of the inbox; the customer's next unanswered ask reopens it."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if not conversation.needs_person:
        return conversation  # already resolved: nothing changes, nothing to record
    conversation.needs_person = False
    conversation.resolved_at = timezone.now()
    conversation.updated_at = conversation.resolved_at
    conversation.save(update_fields=["needs_person", "resolved_at", "updated_at"])
    audit_record(
        actor=actor,
        action="conversation.resolved",
        bank=conversation.bank,
        target=conversation,
        details={"reason": conversation.reason},
    )
    return conversation
