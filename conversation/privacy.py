"""The conversation's part in data-subject requests, retention and the staff link page."""

from django.template.loader import render_to_string

from conversation import callbacks, services
from conversation.models import Conversation, ConversationMessage, FraudAlertAnswer
from linking.models import Consent


def _conversations_of(customer):
    psids = list(
        Consent.objects.filter(customer=customer).exclude(psid="").values_list("page_id", "psid")
    )
    found = Conversation.objects.filter(customer=customer)
    for page_id, psid in psids:
        found = found | Conversation.objects.filter(
            bank_id=customer.bank_id, page_id=page_id, psid=psid
        )
    return found.distinct().order_by("pk")


def customer_export(customer) -> dict:
    """Every message the customer wrote to the bank and every reply, with what it shared,
    and the notes the bank's agents wrote on the conversation."""
    conversations = []
    for conversation in _conversations_of(customer):
        conversations.append(
            {
                "page_id": conversation.page_id,
                "psid": conversation.psid,
                "messages": [
                    {
                        "direction": m.direction,
                        "author": m.author,
                        "text": m.text,
                        "state": m.state,
                        "data_categories": m.data_categories,
                        "at": m.created_at.isoformat(),
                    }
                    for m in conversation.messages.order_by("created_at", "id")
                ],
                # What the bank's staff noted about the customer: theirs to see too.
                "staff_notes": [
                    {"text": n.text, "at": n.created_at.isoformat()}
                    for n in conversation.notes.order_by("created_at", "id")
                ],
            }
        )
    answers = [
        {"event_id": a.event.event_id, "answer": a.answer, "answered_at": a.answered_at.isoformat()}
        for a in FraudAlertAnswer.objects.filter(event__customer=customer).select_related("event")
    ]
    return {"conversations": conversations, "fraud_alert_answers": answers}


def customer_erase(customer) -> int:
    erased = services.customer_conversations_erase(customer)
    return erased + callbacks.link_callbacks_erase(customer)


def link_section(consent):
    """The messages the customer wrote under this link, and the bank's replies."""
    messages = list(
        ConversationMessage.objects.filter(
            conversation__bank_id=consent.bank_id,
            conversation__page_id=consent.page_id,
            conversation__psid=consent.psid,
        )
        .select_related("sent_by")
        .order_by("-created_at", "-id")[:100]
        if consent.psid
        else []
    )
    if not messages:
        return None
    conversation = Conversation.objects.filter(
        bank_id=consent.bank_id, page_id=consent.page_id, psid=consent.psid
    ).first()
    return render_to_string(
        "conversation/_link_section.html",
        {"messages": messages, "conversation": conversation, "bank": consent.bank},
    )


def purge(bank, cutoff) -> int:
    return services.message_bodies_purge(bank, cutoff)
