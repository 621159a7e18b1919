"""Reads for the conversation and the agent inbox, always through the bank."""

import datetime as dt
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import (
    Case,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from conversation import matcher, texts
from conversation.models import (
    URGENT_REASONS,
    BankCallback,
    CannedReply,
    Conversation,
    ConversationMessage,
    ConversationNote,
    ConversationText,
    FraudAlertAnswer,
    InboxSettings,
)
from core.cards import card_numbers_masked
from linking.models import Consent
from notifications.models import Notification
from portal.dashboard import PanelContent
from portal.models import Bank, MessengerIntegration
from portal.rendering import mask_numbers, normalise_locale


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


# Whose conversations the inbox lists: the asking staff member's, nobody's, or everyone's.
MINE, UNASSIGNED, EVERYONE = "mine", "unassigned", "all"
_LONG_AGO = datetime(2000, 1, 1, tzinfo=dt.UTC)


# What a customer wrote that put the conversation in the inbox: a request for a person, a
# lost card, what the assistant did not understand, a "No" to a fraud alert. Until a person
# answered, only these count as waiting: a "hi" the assistant answered a week ago does not.
WAITING_INTENTS = (matcher.AGENT, matcher.LOST_CARD, matcher.UNKNOWN, matcher.NO, "")


def with_waiting(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Each conversation with `waiting_since`: the customer's oldest message that no person
    at the bank answered yet (None when a person answered everything), and `urgency`, 0
    for a denied payment or a lost card, 1 for the rest.

    A person's answer is an agent's reply (queued or sent, not one that failed) or a
    message from the Page's own inbox; the assistant's answers do not count. Before any
    person answered, the waiting starts at the first message that asked for one
    (`WAITING_INTENTS`); after, at the first message the customer wrote since.
    """
    replied = (
        ConversationMessage.objects.filter(
            conversation=OuterRef("pk"),
            direction=ConversationMessage.Direction.OUTBOUND,
            author__in=(ConversationMessage.Author.AGENT, ConversationMessage.Author.PAGE_INBOX),
        )
        .exclude(state=ConversationMessage.State.FAILED)
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    since_reply = ConversationMessage.objects.filter(
        conversation=OuterRef("pk"),
        direction=ConversationMessage.Direction.INBOUND,
        created_at__gt=OuterRef("person_replied_at"),
    ).order_by("created_at")
    asked = since_reply.filter(intent__in=WAITING_INTENTS)
    return conversations.annotate(
        person_replied_at=Coalesce(Subquery(replied), Value(_LONG_AGO)),
    ).annotate(
        waiting_since=Case(
            When(
                person_replied_at__gt=Value(_LONG_AGO),
                then=Subquery(since_reply.values("created_at")[:1]),
            ),
            default=Subquery(asked.values("created_at")[:1]),
        ),
        urgency=Case(
            When(reason__in=URGENT_REASONS, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        ),
    )


def inbox_list(
    *,
    bank: Bank,
    show: str = "open",
    who: str = EVERYONE,
    reason: str = "",
    staff_user: Any = None,
) -> QuerySet[Conversation]:
    """Conversations that need a person, most urgent first: denied payments and lost cards,
    then the rest; within each, the one waiting longest first (those a person answered
    last). With show="resolved", those that were resolved, newest first.

    `who` keeps those assigned to `staff_user` (`MINE`), to nobody (`UNASSIGNED`) or all;
    `reason` keeps one reason (`Conversation.Reason`).
    """
    conversations = Conversation.objects.for_bank(bank).select_related(
        "customer", "assigned_to", "consent"
    )
    if who == MINE and staff_user is not None:
        conversations = conversations.filter(assigned_to=staff_user)
    elif who == UNASSIGNED:
        conversations = conversations.filter(assigned_to__isnull=True)
    if reason in Conversation.Reason.values:
        conversations = conversations.filter(reason=reason)
    if show == "resolved":
        return with_waiting(
            conversations.filter(needs_person=False, resolved_at__isnull=False)
        ).order_by("-resolved_at", "-id")
    return with_waiting(conversations.filter(needs_person=True)).order_by(
        F("urgency").asc(), F("waiting_since").asc(nulls_last=True), "-updated_at", "-id"
    )


def reply_target(bank: Bank) -> timedelta:
    """How soon the bank wants a person to answer a customer waiting in the inbox."""
    minutes = (
        InboxSettings.objects.for_bank(bank).values_list("reply_target_minutes", flat=True).first()
    )
    return timedelta(minutes=minutes or InboxSettings.DEFAULT_REPLY_TARGET_MINUTES)


def inbox_settings_get(bank: Bank) -> InboxSettings:
    """The bank's inbox settings, unsaved defaults where it has none."""
    found = InboxSettings.objects.for_bank(bank).first()
    return found if found is not None else InboxSettings(bank=bank)


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


def inbox_panel(bank: Bank) -> PanelContent | None:
    """The dashboard's tile: how many customers wait for a person, how many of them for a
    denied payment or a lost card, and how many past the bank's reply target."""
    waiting = [
        (conversation.reason, getattr(conversation, "waiting_since", None))
        for conversation in with_waiting(
            Conversation.objects.for_bank(bank).filter(needs_person=True)
        ).only("reason")
    ]
    if not waiting:
        return PanelContent(
            value=0,
            caption="customers waiting for a person",
            link_url=reverse("conversation:inbox", args=[bank.slug]),
            link_text="See who is waiting",
        )
    late_from = timezone.now() - reply_target(bank)
    urgent = sum(1 for reason, _ in waiting if reason in URGENT_REASONS)
    late = sum(1 for _, since in waiting if since is not None and since < late_from)
    target = int(reply_target(bank).total_seconds() // 60)
    return PanelContent(
        value=len(waiting),
        caption=(
            f"waiting for a person: {urgent} urgent (a denied payment or a lost card), "
            f"{late} past your {target}-minute reply target"
        ),
        link_url=reverse("conversation:inbox", args=[bank.slug]),
        link_text="See who is waiting",
        alarm=bool(urgent and late),
    )


@dataclass(frozen=True)
class AnsweredNotification:
    """The update a customer is answering, as the inbox shows it beside the thread."""

    kind: str
    text: str
    sent_at: datetime | None
    answer: str  # the fraud answer's label, or ""


def answered_notification(conversation: Conversation) -> AnsweredNotification | None:
    """The fraud alert the customer answered (a denied payment), else the last update sent
    to them before their newest message, within 7 days: its type, its text as the customer
    read it (numbers masked) and when it was sent."""
    sent = Notification.objects.filter(
        bank_id=conversation.bank_id,
        page_id=conversation.page_id,
        psid=conversation.psid,
        state__in=Notification.SENT_STATES,
    )
    answer = (
        FraudAlertAnswer.objects.filter(
            bank_id=conversation.bank_id, notification__in=sent.values("pk")
        )
        .select_related("notification")
        .order_by("-answered_at", "-id")
        .first()
    )
    if answer is not None and conversation.reason == Conversation.Reason.FRAUD_DENIED:
        notification = answer.notification
        label = answer.get_answer_display()
    else:
        last_in = (
            conversation.messages.filter(direction=ConversationMessage.Direction.INBOUND)
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if last_in is None:
            return None
        found = (
            sent.filter(sent_at__lte=last_in, sent_at__gte=last_in - timedelta(days=7))
            .order_by("-sent_at", "-id")
            .first()
        )
        if found is None:
            return None
        notification, label = found, ""
    return AnsweredNotification(
        kind=notification.get_event_type_display(),
        text=mask_numbers(card_numbers_masked(notification.text)),
        sent_at=notification.sent_at,
        answer=label,
    )


def consent_ended(conversation: Conversation) -> Consent | None:
    """The consent the customer ended (revoked, or let expire) when they have no live one
    now for this Messenger thread: an agent's reply then goes to someone who stopped
    sharing. None while they share, or when they never linked."""
    consent = conversation.consent
    if consent is None:
        return None
    now = timezone.now()
    if consent.status == Consent.Status.AUTHORISED and (
        consent.expires_at is None or consent.expires_at > now
    ):
        return None
    live = Consent.objects.filter(
        bank_id=conversation.bank_id,
        page_id=conversation.page_id,
        psid=conversation.psid,
        status=Consent.Status.AUTHORISED,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    if live.exists():
        return None
    if consent.status in (Consent.Status.REVOKED, Consent.Status.EXPIRED) or (
        consent.status == Consent.Status.AUTHORISED
        and consent.expires_at is not None
        and consent.expires_at <= now
    ):
        return consent
    return None


def notes_of(conversation: Conversation) -> list[ConversationNote]:
    return list(conversation.notes.select_related("written_by").order_by("created_at", "id"))


def canned_replies_list(*, bank: Bank, locale: str = "") -> QuerySet[CannedReply]:
    """The bank's canned replies; with `locale`, those in its language first."""
    replies = CannedReply.objects.for_bank(bank)
    if not locale:
        return replies.order_by("locale", "title", "id")
    language = normalise_locale(locale).split("_", 1)[0]
    return replies.annotate(
        other_language=Case(
            When(Q(locale=language) | Q(locale__startswith=language + "_"), then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
    ).order_by("other_language", "locale", "title", "id")


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
