"""Reads for the conversation and the agent inbox, always through the bank."""

from datetime import timedelta

from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from django.utils import timezone

from conversation import texts
from conversation.models import (
    BankCallback,
    Conversation,
    ConversationMessage,
    ConversationText,
    FraudAlertAnswer,
)
from linking.models import Consent
from portal.dashboard import PanelContent
from portal.models import Bank, MessengerIntegration
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
    if kind == ConversationText.Kind.AUTOMATED:
        return locale, texts.say("automated", locale, bank=bank.name)
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


FRAUD_PANEL_DAYS = 30


def callback_configured(bank: Bank) -> bool:
    """Whether fraud answers have somewhere to go: a callback URL and its signing secret."""
    integration = MessengerIntegration.objects.for_bank(bank).first()
    return integration is not None and bool(
        integration.callback_url and integration.callback_signing_secret
    )


def fraud_answers_panel(bank: Bank) -> PanelContent | None:
    """The dashboard's tile on fraud answers: a warning, while the bank's Page is connected
    but no callback URL is set, that customers' answers have nowhere to go (and how many
    went nowhere lately)."""
    if not MessengerIntegration.objects.for_bank(bank).exists():
        return None  # no Page yet: no fraud alert can be answered
    since = timezone.now() - timedelta(days=FRAUD_PANEL_DAYS)
    answers = FraudAlertAnswer.objects.for_bank(bank).filter(answered_at__gte=since)
    if not callback_configured(bank):
        kept = (
            BankCallback.objects.for_bank(bank)
            .filter(state=BankCallback.State.NOT_CONFIGURED, created_at__gte=since)
            .count()
        )
        return PanelContent(
            value=kept,
            caption=(
                f"answers in {FRAUD_PANEL_DAYS} days kept here only: no callback URL is "
                "set, so fraud answers have nowhere to go and customers who say “No” are only "
                "given your phone number. Set it under Page credentials."
            ),
            link_url=reverse("conversation:fraud_answers", args=[bank.slug]),
            link_text="Answers and the callback log",
            alarm=True,
        )
    count = answers.count()
    if not count:
        return None
    return PanelContent(
        value=count,
        caption=f"fraud answers in the last {FRAUD_PANEL_DAYS} days, passed to your callback",
        link_url=reverse("conversation:fraud_answers", args=[bank.slug]),
        link_text="Answers and the callback log",
    )
