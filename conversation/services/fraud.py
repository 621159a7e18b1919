"""Fraud alerts: a customer's yes or no, recorded once, and the bank's next steps after a no."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversation import matcher, texts
from conversation.models import Conversation, ConversationText, FraudAlertAnswer
from conversation.services.answers import Reply, _flag, _text
from linking.models import Consent
from linking.services import customer_actor
from notifications.models import Notification
from portal.events import DataScope, EventType
from portal.languages import formatting_locale
from portal.models import Bank
from portal.rendering import render
from portal.services import audit_record

FRAUD_ANSWER_WINDOW = timedelta(days=7)


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
    return [
        _text(
            conversation.psid,
            fraud_denied_text(bank, alert, locale),
            categories=[DataScope.FRAUD_ALERTS],
        )
    ]


def fraud_denied_text(bank: Bank, alert: Notification, locale: str) -> str:
    """The bank's next steps after a "No", in the customer's language, filled for the alert."""
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
