"""Fraud alerts: a customer's yes or no, recorded once, and what the customer is told
after a no: what the bank did only once the bank's fraud callback answered that it did it,
otherwise that the fraud team has the answer, with the bank's phone number."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversation import matcher, texts
from conversation.callback_responses import BankAnswer
from conversation.models import (
    BankCallback,
    Conversation,
    ConversationMessage,
    ConversationText,
    FraudAlertAnswer,
)
from conversation.services.answers import Reply, _flag, _queue, _text
from linking.models import Consent
from linking.services import customer_actor
from notifications.models import Notification
from portal.audit import Actor
from portal.events import DataScope, EventType
from portal.languages import formatting_locale
from portal.models import Bank
from portal.rendering import render
from portal.services import audit_record

FRAUD_ANSWER_WINDOW = timedelta(days=7)
Told = FraudAlertAnswer.Told


def _fraud_answer(
    bank: Bank, conversation: Conversation, consent: Consent, found: matcher.Match, locale: str
) -> list[Reply] | None:
    """Record a yes or no to a fraud alert; None when there is no alert it can answer.

    A quick reply names its alert; a typed yes or no answers the person's newest
    unanswered alert of the last 7 days. The first answer stands: a later tap hears that
    it was already recorded.
    """
    alerts = Notification.objects.filter(
        bank=bank,
        page_id=conversation.page_id,
        psid=conversation.psid,
        event_type=EventType.FRAUD_ALERT,
        state__in=Notification.SENT_STATES,
    )
    if found.notification_id is not None:
        alert = alerts.filter(pk=found.notification_id).first()
        if alert is None:
            return [_text(conversation.psid, texts.say("fraud_none", locale))]
    else:
        since = timezone.now() - FRAUD_ANSWER_WINDOW
        alert = (
            alerts.filter(sent_at__gte=since, fraud_answer__isnull=True)
            .order_by("-sent_at", "-id")
            .first()
        )
        if alert is None:
            return None
    answer = (
        FraudAlertAnswer.Answer.CONFIRMED
        if found.intent == matcher.YES
        else FraudAlertAnswer.Answer.DENIED
    )
    recorded, created = fraud_answer_record(notification=alert, answer=answer)
    if not created:
        label = texts.say(
            "qr_fraud_yes"
            if recorded.answer == FraudAlertAnswer.Answer.CONFIRMED
            else "qr_fraud_no",
            locale,
        )
        return [_text(conversation.psid, texts.say("fraud_already", locale, answer=label))]
    if answer == FraudAlertAnswer.Answer.CONFIRMED:
        return [
            _text(
                conversation.psid,
                texts.say("fraud_confirmed", locale),
                categories=[DataScope.FRAUD_ALERTS],
            )
        ]
    _flag(conversation, Conversation.Reason.FRAUD_DENIED)
    if _awaits_the_bank(recorded):
        return []  # the bank's answer to the callback decides (`fraud_denied_follow_up`)
    FraudAlertAnswer.objects.filter(pk=recorded.pk).update(customer_told=Told.NEUTRAL)
    return [
        _text(
            conversation.psid,
            fraud_denied_neutral_text(bank, locale),
            categories=[DataScope.FRAUD_ALERTS],
        )
    ]


def _awaits_the_bank(answer: FraudAlertAnswer) -> bool:
    return BankCallback.objects.filter(
        fraud_answer=answer, state__in=(BankCallback.State.PENDING, BankCallback.State.DELIVERING)
    ).exists()


def fraud_denied_neutral_text(bank: Bank, locale: str) -> str:
    """What the customer hears after a "No" while the bank has confirmed nothing: their
    answer is with the fraud team, and the bank's phone number (its support phone)."""
    phone = bank.support_phone.strip() or texts.say("phone_unknown", locale)
    return texts.say("fraud_denied_neutral", locale, bank=bank.name, phone=phone)


@transaction.atomic
def fraud_denied_follow_up(*, answer_id: int, bank_answer: BankAnswer | None) -> int | None:
    """Tell the customer what is true once the bank's fraud callback was answered or failed.

    A confirmation (`action_taken`) sends the bank's text (the one its answer carried, or
    its own "After No" text) once; anything else (no confirmation, a failed attempt) sends
    the neutral text, unless the customer was already told something. The answer row is
    locked, so two workers never both tell. Returns the id of the message queued, if any.
    """
    answer = (
        FraudAlertAnswer.objects.select_for_update()
        .filter(pk=answer_id, answer=FraudAlertAnswer.Answer.DENIED)
        .first()
    )
    if answer is None:
        return None
    alert = Notification.objects.select_related("bank", "event__customer", "account").get(
        pk=answer.notification_id
    )
    bank, locale = alert.bank, alert.event.customer.locale or alert.bank.default_locale
    if bank_answer is not None and bank_answer.action_taken:
        if answer.customer_told == Told.BANK_ACTION:
            return None
        text = bank_answer.customer_message or fraud_denied_text(bank, alert, locale)
        answer.customer_told, answer.bank_action_confirmed_at = Told.BANK_ACTION, timezone.now()
        audit_record(
            actor=Actor.system("bank callbacks"),
            action="fraud_alert.bank_confirmed",
            bank=bank,
            target_type="linking.consent",
            target_id=str(answer.consent_id),
            details={
                "event": alert.event.event_id,
                "notification": alert.pk,
                "text_from_callback": bool(bank_answer.customer_message),
            },
            data_categories=[DataScope.FRAUD_ALERTS],
        )
    elif answer.customer_told:
        return None
    else:
        text, answer.customer_told = fraud_denied_neutral_text(bank, locale), Told.NEUTRAL
    answer.save(update_fields=["customer_told", "bank_action_confirmed_at"])
    conversation, _ = Conversation.objects.get_or_create(
        bank_id=alert.bank_id, page_id=alert.page_id, psid=alert.psid
    )
    message = _queue(
        conversation,
        _text(alert.psid, text, categories=[DataScope.FRAUD_ALERTS]),
        author=ConversationMessage.Author.ASSISTANT,
        form="RESPONSE",
    )
    transaction.on_commit(lambda: _send_soon(message.pk))
    return message.pk


def _send_soon(message_id: int) -> None:
    from conversation import tasks

    tasks.send_conversation_message.delay(message_id)


def fraud_denied_text(bank: Bank, alert: Notification, locale: str) -> str:
    """The bank's next steps after a "No", in the customer's language, filled for the alert:
    sent only once the bank's fraud callback confirmed that it acted."""
    from conversation.selectors import conversation_text_pick
    from notifications.services.outbox import first_name, message_data

    written_in, body = conversation_text_pick(
        bank=bank, kind=ConversationText.Kind.FRAUD_DENIED, locale=locale
    )
    event = alert.event
    account = alert.account
    values = message_data(
        EventType.FRAUD_ALERT,
        event.data if isinstance(event.data, dict) else {},
        first_name=first_name(event.customer.name),
        last4=account.last4,
        currency=account.currency,
        account_name=account.name,
        scopes=alert.consent.scopes,
    )
    # A text in the bank's default language carries that language's formats.
    return render(body, EventType.FRAUD_ALERT, values, locale=formatting_locale(locale, written_in))


@transaction.atomic
def fraud_answer_record(
    *, notification: Notification, answer: str
) -> tuple[FraudAlertAnswer, bool]:
    """Record the answer once; returns (the answer that stands, whether it is new).

    A new answer is audited and queues the signed callback to the bank, in the same
    transaction.
    """
    from conversation import callbacks

    existing = FraudAlertAnswer.objects.filter(notification=notification).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            recorded = FraudAlertAnswer.objects.create(
                bank_id=notification.bank_id,
                notification=notification,
                event_id=notification.event_id,
                consent_id=notification.consent_id,
                answer=answer,
            )
    except IntegrityError:
        return FraudAlertAnswer.objects.get(notification=notification), False
    audit_record(
        actor=customer_actor(notification.event.customer),
        action="fraud_alert.answered",
        bank=notification.bank,
        target_type="linking.consent",
        target_id=str(notification.consent_id),
        details={
            "answer": answer,
            "event": notification.event.event_id,
            "notification": notification.pk,
        },
        data_categories=[DataScope.FRAUD_ALERTS],
    )
    callbacks.callback_queue_for_answer(recorded)
    return recorded, True
