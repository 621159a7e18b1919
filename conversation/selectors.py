"""Reads for the conversation and the agent inbox, always through the bank."""

from django.db.models import Prefetch, QuerySet

from conversation import texts
from conversation.models import (
    BankCallback,
    Conversation,
    ConversationMessage,
    ConversationText,
    FraudAlertAnswer,
)
from linking.models import Consent
from portal.models import Bank
from portal.rendering import normalise_locale


def conversation_text_for(*, bank: Bank, kind: str, locale: str) -> str:
    """The bank's text for `kind`: the exact locale, its language, the bank's default, then
    the built-in default in the customer's language."""
    return conversation_text_pick(bank=bank, kind=kind, locale=locale)[1]


def conversation_text_pick(*, bank: Bank, kind: str, locale: str) -> tuple[str, str]:
    """`conversation_text_for`, with the locale the text is written in first."""
    locale = normalise_locale(locale)
    language = locale.split("_", 1)[0]
    candidates = [c for c in dict.fromkeys([locale, language, bank.default_locale]) if c]
    found = {
        t.locale: t.body
        for t in ConversationText.objects.filter(bank=bank, kind=kind, locale__in=candidates)
    }
    for candidate in candidates:
        if candidate in found:
            return candidate, found[candidate]
    return locale, texts.fraud_denied_default(locale)


def inbox_list(*, bank: Bank, show: str = "open") -> QuerySet[Conversation]:
    """Conversations that need a person (or, with show="resolved", those that were resolved),
    newest first."""
    conversations = Conversation.objects.for_bank(bank).select_related("customer", "assigned_to")
    if show == "resolved":
        return conversations.filter(needs_person=False, resolved_at__isnull=False).order_by(
            "-resolved_at", "-id"
        )
    return conversations.filter(needs_person=True).order_by("-updated_at", "-id")


def conversation_get(*, bank: Bank, pk: int) -> Conversation:
    return (
        Conversation.objects.for_bank(bank)
        .select_related("customer", "consent", "assigned_to")
        .get(pk=pk)
    )


def thread(conversation: Conversation, *, after: int = 0) -> list[ConversationMessage]:
    return list(
        conversation.messages.filter(pk__gt=after)
        .select_related("sent_by")
        .order_by("created_at", "id")
    )


def last_message_of(conversation: Conversation) -> ConversationMessage | None:
    return conversation.messages.filter(direction="in").order_by("-created_at", "-id").first()


def consent_summary(conversation: Conversation) -> dict | None:
    """What the customer shares, for the agent: scopes and masked accounts, no figures."""
    consent = conversation.consent
    if consent is None:
        consent = (
            Consent.objects.filter(
                bank_id=conversation.bank_id,
                page_id=conversation.page_id,
                psid=conversation.psid,
                status=Consent.Status.AUTHORISED,
            )
            .select_related("customer")
            .first()
        )
    if consent is None:
        return None
    labels = dict(Consent.Scope.choices)
    return {
        "consent": consent,
        "customer": consent.customer,
        "status": consent.get_status_display(),
        "linked": consent.is_linked,
        "scopes": [label for value, label in labels.items() if value in consent.scopes],
        "accounts": [
            f"{account.get_kind_display()} •••• {account.last4}"
            for account in consent.accounts.all().order_by("kind", "name")
        ],
        "expires_at": consent.expires_at,
    }


def fraud_answers_list(*, bank: Bank) -> QuerySet[FraudAlertAnswer]:
    return (
        FraudAlertAnswer.objects.for_bank(bank)
        .select_related("event", "event__customer", "event__account")
        .prefetch_related(
            Prefetch(
                "callbacks",
                queryset=BankCallback.objects.prefetch_related("tries").order_by("-id"),
            )
        )
        .order_by("-answered_at", "-id")
    )


def callbacks_list(*, bank: Bank) -> QuerySet[BankCallback]:
    return (
        BankCallback.objects.for_bank(bank).prefetch_related("tries").order_by("-created_at", "-id")
    )


def unanswered_count(bank: Bank) -> int:
    return Conversation.objects.for_bank(bank).filter(needs_person=True).count()
