"""Privacy: message bodies past retention, and a customer's conversations erased."""

from datetime import datetime

from django.db.models import Q

from conversation.models import Conversation, ConversationMessage, ConversationNote
from linking.models import Consent, Customer
from portal.models import Bank


def message_bodies_purge(bank: Bank, cutoff: datetime) -> int:
    """Blank the texts and bodies of the bank's messages, and its agents' notes, older than
    `cutoff`."""
    notes = (
        ConversationNote.objects.filter(bank=bank, created_at__lt=cutoff)
        .exclude(text="")
        .update(text="")
    )
    return notes + (
        ConversationMessage.objects.filter(bank=bank, created_at__lt=cutoff)
        .filter(~Q(text="") | Q(payload__isnull=False) | ~Q(quick_reply_payload=""))
        .update(text="", payload=None, quick_reply_payload="")
    )


def customer_conversations_erase(customer: Customer) -> int:
    """Remove a customer's PSIDs and message texts: the conversations become anonymous.

    The rows stay (pseudonymous, for the bank's records and the audit log's references);
    the PSID, every text and body, the agents' notes, and the message ids Messenger gave go.
    """
    psids = set(
        Consent.objects.filter(customer=customer).exclude(psid="").values_list("page_id", "psid")
    )
    conversations = Conversation.objects.filter(
        Q(customer=customer) | Q(consent__customer=customer)
    )
    for page_id, psid in psids:
        conversations = conversations | Conversation.objects.filter(
            bank_id=customer.bank_id, page_id=page_id, psid=psid
        )
    ids = list(conversations.values_list("pk", flat=True).distinct())
    changed = ConversationMessage.objects.filter(conversation_id__in=ids).update(
        text="", payload=None, quick_reply_payload="", mid="", detail=""
    )
    changed += ConversationNote.objects.filter(conversation_id__in=ids).update(text="")
    for conversation_id in ids:
        changed += Conversation.objects.filter(pk=conversation_id).update(
            psid=f"erased-{conversation_id}", customer=None, consent=None
        )
    return changed
