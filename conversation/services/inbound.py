"""Inbound: the webhook request stores what a person wrote, a worker answers it."""

import datetime as dt
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

import messenger
from conversation import matcher, texts
from conversation.models import Conversation, ConversationMessage
from conversation.services.answers import (
    Reply,
    _balances,
    _flag,
    _not_linked,
    _queue,
    _text,
    _transactions,
    disclosure,
    disclosure_due,
)
from conversation.services.fraud import _fraud_answer
from core.cards import card_numbers_masked, holds_card_number
from linking.models import Consent
from linking.services import consent_revoke, customer_actor
from linking.services.link_messages import Preface
from portal.languages import speaking_locale
from portal.models import Bank
from portal.rendering import TEXT_LIMIT, clean_text

Direction = ConversationMessage.Direction
Author = ConversationMessage.Author
State = ConversationMessage.State
RESPONSE_WINDOW = timedelta(hours=24)
UNANSWERED_AFTER = timedelta(seconds=30)


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def inbound_record(
    *, bank_id: int, page_id: str, event: messenger.Event
) -> ConversationMessage | None:
    """Store what a person wrote (a message or a postback) and nudge a worker to answer.

    Quick and idempotent: Messenger retries webhooks, so a `mid` already stored is
    ignored. Returns the new row, or None for a duplicate or an empty event.
    """
    if isinstance(event, messenger.MessageEvent):
        text = event.text or ""
        if not text and event.attachments:
            text = "(" + ", ".join(sorted({a.type for a in event.attachments})) + ")"
        payload, mid = event.quick_reply_payload or "", event.mid or ""
    elif isinstance(event, messenger.PostbackEvent):
        text, payload, mid = event.title or "", event.payload or "", event.mid or ""
    else:
        return None
    if not event.sender_id or not (text or payload):
        return None
    held_card_number = holds_card_number(text) or holds_card_number(payload)
    text, payload = card_numbers_masked(text), card_numbers_masked(payload)
    at = datetime.fromtimestamp(event.timestamp / 1000, tz=dt.UTC) if event.timestamp else None
    with transaction.atomic():
        conversation = _conversation_for(bank_id=bank_id, page_id=page_id, psid=event.sender_id)
        if (
            mid
            and ConversationMessage.objects.filter(
                bank_id=bank_id, direction=Direction.INBOUND, mid=mid
            ).exists()
        ):
            return None
        try:
            with transaction.atomic():
                message = ConversationMessage.objects.create(
                    bank_id=bank_id,
                    conversation=conversation,
                    direction=Direction.INBOUND,
                    author=Author.CUSTOMER,
                    mid=mid[:128],
                    text=clean_text(text)[:TEXT_LIMIT],
                    quick_reply_payload=payload[:1000],
                    state=State.RECEIVED,
                    created_at=at or timezone.now(),
                )
        except IntegrityError:  # the same mid, stored by a concurrent retry
            return None
        # Webhooks arrive out of order: the newest message wins.
        moment = Value(message.created_at)
        Conversation.objects.filter(pk=conversation.pk).update(
            last_inbound_at=Greatest(Coalesce("last_inbound_at", moment), moment),
            updated_at=timezone.now(),
        )
        from conversation import tasks

        transaction.on_commit(lambda: tasks.answer_inbound.delay(message.pk))
        if held_card_number:
            _card_number_warn(conversation, message)
    return message


def _card_number_warn(conversation: Conversation, inbound: ConversationMessage) -> None:
    """Tell the customer, once per conversation, never to send card numbers in the chat.

    The number they sent is stored masked. The warning goes with the answer to the message
    that held it, first (after the disclosure where the bank makes one), so the customer
    reads it before anything else; marking the conversation here, with the message it is
    for, means two messages with card numbers arriving at once still give one warning.
    """
    Conversation.objects.filter(pk=conversation.pk, card_number_warned_at__isnull=True).update(
        card_number_warned_at=timezone.now(), card_number_warned_for=inbound.pk
    )


def _speaking_locale(bank: Bank, consent: Consent | None) -> str:
    """The customer's locale when bankside speaks its language, else the bank's default:
    the answer's words and its amounts and dates both follow it."""
    customer_locale = consent.customer.locale if consent is not None else ""
    return speaking_locale(customer_locale, bank.default_locale)


def _conversation_for(*, bank_id: int, page_id: str, psid: str) -> Conversation:
    mine = Conversation.objects.filter(bank_id=bank_id, page_id=page_id, psid=psid)
    conversation = mine.first()
    if conversation is not None:
        return conversation
    Conversation.objects.bulk_create(
        [Conversation(bank_id=bank_id, page_id=page_id, psid=psid)], ignore_conflicts=True
    )
    return mine.get()


def inbound_answer(*, message_id: int) -> list[int]:
    """Answer one inbound message; returns the ids of the replies queued.

    Safe to run twice: the inbound row is locked and its `intent` set once; a second run
    finds it answered and does nothing.
    """
    with transaction.atomic():
        inbound = (
            ConversationMessage.objects.select_for_update(of=("self",))
            .select_related("conversation", "bank")
            .filter(pk=message_id, direction=Direction.INBOUND)
            .first()
        )
        if inbound is None or inbound.intent:
            return []
        conversation = Conversation.objects.select_for_update().get(pk=inbound.conversation_id)
        bank = inbound.bank
        consent = (
            Consent.objects.select_related("customer")
            .filter(
                bank_id=conversation.bank_id,
                page_id=conversation.page_id,
                psid=conversation.psid,
                status=Consent.Status.AUTHORISED,
            )
            .first()
        )
        if consent is not None and consent.expires_at and consent.expires_at <= timezone.now():
            consent = None
        if consent is not None:
            conversation.consent, conversation.customer = consent, consent.customer
        locale = _speaking_locale(bank, consent)
        if consent is None:
            inbound.intent = "not_linked"
            replies = [_not_linked(bank, conversation.psid, locale)]
        else:
            found = matcher.match(
                inbound.text, locale=locale, quick_reply_payload=inbound.quick_reply_payload
            )
            inbound.intent = found.intent
            replies = _answer(bank, conversation, consent, found, locale)
        if conversation.card_number_warned_for == inbound.pk:
            text = texts.say("card_number_warning", locale, bank=bank.name)
            replies = [_text(conversation.psid, text), *replies]
        inbound.save(update_fields=["intent"])
        conversation.updated_at = timezone.now()
        if replies and disclosure_due(bank, conversation, inbound):
            replies = [disclosure(bank, conversation.psid, locale), *replies]
            conversation.disclosed_at = conversation.updated_at
        conversation.save()
        ids = [
            _queue(conversation, reply, author=Author.ASSISTANT, form="RESPONSE").pk
            for reply in replies
        ]
    return ids


def _answer(
    bank: Bank, conversation: Conversation, consent: Consent, found: matcher.Match, locale: str
) -> list[Reply]:
    psid = conversation.psid
    quick = texts.common_quick_replies(locale)
    intent = found.intent
    if intent in (matcher.YES, matcher.NO):
        handled = _fraud_answer(bank, conversation, consent, found, locale)
        if handled is not None:
            return handled
        intent = matcher.UNKNOWN
    if intent == matcher.BALANCE:
        return [_balances(bank, consent, psid, locale, quick)]
    if intent == matcher.TRANSACTIONS:
        return [_transactions(bank, consent, psid, locale, quick)]
    if intent == matcher.HELP:
        return [_text(psid, texts.say("help", locale), quick)]
    if intent == matcher.GREETING:
        name = consent.customer.name.strip().split(" ", 1)[0]
        return [_text(psid, texts.say("greeting", locale, name=name), quick)]
    if intent == matcher.THANKS:
        return [_text(psid, texts.say("thanks", locale), quick)]
    if intent == matcher.STOP:
        text = texts.say("stop_confirm", locale, bank=bank.name)
        return [_text(psid, text, texts.stop_quick_replies(locale))]
    if intent == matcher.STOP_CONFIRMED:
        # The farewell the unlink sends (`linking.messages.link_ended`) confirms it.
        consent_revoke(
            consent=consent,
            actor=customer_actor(consent.customer),
            reason="Stopped from Messenger: the customer confirmed “stop”",
        )
        return []
    if intent == matcher.STOP_CANCELLED:
        return [_text(psid, texts.say("stop_kept", locale), quick)]
    if intent == matcher.UNLINK:
        text = texts.say("unlink", locale, bank=bank.name)
        payload = messenger.builders.button_template(
            psid, text, [messenger.builders.logout_button()]
        )
        return [Reply(text, payload, [])]
    if intent == matcher.LOST_CARD and found.denies:
        denied = _fraud_answer(bank, conversation, consent, matcher.Match(matcher.NO), locale)
        if denied is not None:
            return denied
    if intent == matcher.LOST_CARD:
        _flag(conversation, Conversation.Reason.LOST_CARD)
        return [_text(psid, lost_card_text(bank, locale))]
    if intent == matcher.AGENT:
        _flag(conversation, Conversation.Reason.ASKED_FOR_PERSON)
        return [_text(psid, texts.say("agent", locale, bank=bank.name))]
    _flag(conversation, Conversation.Reason.NOT_UNDERSTOOD)
    return [_text(psid, texts.say("not_understood", locale, bank=bank.name), quick)]


def lost_card_text(bank: Bank, locale: str) -> str:
    """What a customer who lost their card hears: a person will help, and the bank's phone
    (its support phone) to block the card now, when the bank gave one."""
    phone = bank.support_phone.strip()
    if phone:
        return texts.say("lost_card", locale, bank=bank.name, phone=phone)
    return texts.say("lost_card_no_phone", locale, bank=bank.name)


def inbound_unanswered(*, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Messages of the last 24 hours that no worker answered (the broker lost the nudge)."""
    now = _now(now)
    return list(
        ConversationMessage.objects.filter(
            direction=Direction.INBOUND,
            intent="",
            created_at__lt=now - UNANSWERED_AFTER,
            created_at__gte=now - RESPONSE_WINDOW,
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def link_message_preface(consent: Consent, now: datetime) -> Preface | None:
    """The disclosure before a link message (a confirmation, a reminder, a new-link notice)
    when the bank tells its customers the chat is automated and that message opens the
    conversation, follows a long silence, or follows a person: the same rules as before an
    answer, recorded once the message went out."""
    bank = consent.bank
    if not bank.disclose_automation or not consent.psid:
        return None
    page_id, psid = consent.page_id, consent.psid
    conversation = Conversation.objects.filter(bank_id=bank.pk, page_id=page_id, psid=psid).first()
    # No conversation yet: this message opens it, and it is written once the message went.
    if conversation is not None and not disclosure_due(bank, conversation, at=now):
        return None
    text = disclosure(bank, consent.psid, _speaking_locale(bank, consent)).text

    def said() -> None:
        opened = conversation or _conversation_for(bank_id=bank.pk, page_id=page_id, psid=psid)
        Conversation.objects.filter(pk=opened.pk).update(disclosed_at=now)

    return Preface(text=text, said=said)
