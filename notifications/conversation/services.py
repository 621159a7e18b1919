"""Every write of the conversation: inbound messages, answers, agent replies and fraud answers.

The webhook request only stores what the customer wrote and nudges a worker; the worker
answers (`inbound_answer`), and every outbound message is a `ConversationMessage` row
sent by `message_send`, which records what left the bank with an audit entry.
"""

import datetime as dt
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.urls import reverse
from django.utils import timezone

import messenger
from core.cards import card_numbers_masked, holds_card_number
from linking.models import Account, Consent, Contact
from notifications.conversation import matcher, texts
from notifications.models import (
    Conversation,
    ConversationMessage,
    ConversationText,
    Event,
    FraudAlertAnswer,
    Notification,
)
from notifications.page_limits import page_buckets
from notifications.services.delivery import retry_delay
from portal.audit import Actor
from portal.events import DataScope, EventType
from portal.models import Bank, MessengerIntegration, StaffMembership
from portal.rendering import (
    CARD_NUMBER_REFUSED,
    TEXT_LIMIT,
    clean_text,
    format_money,
    mask_numbers,
    render,
)
from portal.rendering import template_errors as rendering_template_errors
from portal.services import audit_record

log = logging.getLogger(__name__)

Direction = ConversationMessage.Direction
Author = ConversationMessage.Author
State = ConversationMessage.State

SYSTEM = Actor.system("conversation")
HUMAN_AGENT_WINDOW = timedelta(days=7)
RESPONSE_WINDOW = timedelta(hours=24)
FRAUD_ANSWER_WINDOW = timedelta(days=7)
RECENT_TRANSACTIONS = 5
SEND_LEASE = timedelta(seconds=60)
MAX_SEND_ATTEMPTS = 8
MAX_TOKEN_WAIT = 1.0
UNANSWERED_AFTER = timedelta(seconds=30)
# What an agent's free text is, in the audit's data categories.
AGENT_TEXT = "conversation"


class ReplyRefusedError(Exception):
    """An agent's reply that cannot go out; the message says why, for the agent."""


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


# Inbound: the webhook request stores, a worker answers.


def inbound_record(*, bank_id: int, page_id: str, event) -> ConversationMessage | None:
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
        from notifications.conversation import tasks

        transaction.on_commit(lambda: tasks.answer_inbound.delay(message.pk))
        if held_card_number:
            _card_number_warn(conversation)
    return message


def _card_number_warn(conversation: Conversation) -> None:
    """Tell the customer, once per conversation, never to send card numbers in the chat.

    The number they sent is stored masked; the warning is an ordinary reply, queued and
    sent like any other, in the customer's language. Marking the conversation and queuing
    the reply happen together, so two messages with card numbers arriving at once still
    give one warning.
    """
    now = timezone.now()
    if not Conversation.objects.filter(
        pk=conversation.pk, card_number_warned_at__isnull=True
    ).update(card_number_warned_at=now):
        return
    bank = Bank.objects.get(pk=conversation.bank_id)
    consent = (
        Consent.objects.select_related("customer")
        .filter(
            bank=bank,
            page_id=conversation.page_id,
            psid=conversation.psid,
            status=Consent.Status.AUTHORISED,
        )
        .first()
    )
    locale = consent.customer.locale if consent is not None else bank.default_locale
    text = texts.say("card_number_warning", locale, bank=bank.name)
    message = _queue(
        conversation, _text(conversation.psid, text), author=Author.ASSISTANT, form="RESPONSE"
    )
    from notifications.conversation import tasks

    transaction.on_commit(lambda: tasks.send_conversation_message.delay(message.pk))


def _conversation_for(*, bank_id: int, page_id: str, psid: str) -> Conversation:
    mine = Conversation.objects.filter(bank_id=bank_id, page_id=page_id, psid=psid)
    conversation = mine.first()
    if conversation is not None:
        return conversation
    Conversation.objects.bulk_create(
        [Conversation(bank_id=bank_id, page_id=page_id, psid=psid)], ignore_conflicts=True
    )
    return mine.get()


@dataclass
class Reply:
    text: str
    payload: dict
    data_categories: list[str]


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
        locale = consent.customer.locale if consent is not None else bank.default_locale
        if consent is None:
            inbound.intent = "not_linked"
            replies = [_not_linked(bank, conversation.psid, locale)]
        else:
            found = matcher.match(
                inbound.text, locale=locale, quick_reply_payload=inbound.quick_reply_payload
            )
            inbound.intent = found.intent
            replies = _answer(bank, conversation, consent, found, locale)
        inbound.save(update_fields=["intent"])
        conversation.updated_at = timezone.now()
        conversation.save()
        ids = [
            _queue(conversation, reply, author=Author.ASSISTANT, form="RESPONSE").pk
            for reply in replies
        ]
    return ids


def _answer(bank, conversation, consent, found: matcher.Match, locale: str) -> list[Reply]:
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
    if intent == matcher.UNLINK:
        text = texts.say("unlink", locale, bank=bank.name)
        payload = messenger.builders.button_template(
            psid, text, [messenger.builders.logout_button()]
        )
        return [Reply(text, payload, [])]
    if intent == matcher.AGENT:
        _flag(conversation, Conversation.Reason.ASKED_FOR_PERSON)
        return [_text(psid, texts.say("agent", locale, bank=bank.name))]
    _flag(conversation, Conversation.Reason.NOT_UNDERSTOOD)
    return [_text(psid, texts.say("not_understood", locale, bank=bank.name), quick)]


def _flag(conversation: Conversation, reason: str) -> None:
    conversation.needs_person = True
    conversation.reason = reason
    conversation.resolved_at = None


def _text(psid: str, text: str, quick_replies=None, categories=()) -> Reply:
    text = text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"
    payload = messenger.builders.text_message(psid, text, quick_replies=quick_replies or None)
    return Reply(text, payload, sorted(categories))


def _not_linked(bank: Bank, psid: str, locale: str) -> Reply:
    """A Log In button and one line: nothing about any account."""
    text = texts.say("not_linked", locale, bank=bank.name)
    url = settings.PUBLIC_BASE_URL + reverse("linking:start", args=[bank.slug])
    payload = messenger.builders.button_template(psid, text, [messenger.builders.login_button(url)])
    return Reply(text, payload, [])


def dashboard_url(bank: Bank) -> str:
    return settings.PUBLIC_BASE_URL + reverse("linking:dashboard", args=[bank.slug])


def _not_shared(bank: Bank, psid: str, locale: str, what: str, quick) -> Reply:
    text = texts.say(
        "not_shared", locale, what=texts.say(f"what_{what}", locale), dashboard=dashboard_url(bank)
    )
    return _text(psid, text, quick)


def _shared_accounts(consent: Consent) -> list[Account]:
    return list(consent.accounts.filter(active=True).order_by("kind", "name", "pk"))


def _balances(bank, consent, psid, locale, quick) -> Reply:
    if DataScope.BALANCES not in consent.scopes:
        return _not_shared(bank, psid, locale, "balances", quick)
    accounts = _shared_accounts(consent)
    if not accounts:
        return _text(psid, texts.say("no_accounts", locale), quick)
    lines = [texts.say("balance_head", locale)]
    for account in accounts:
        balance, currency = _latest_balance(account)
        amount = format_money(balance, currency, locale=locale)
        lines.append(f"{mask_numbers(account.name)} •••• {account.last4[-4:]}: {amount}")
    return _text(psid, "\n".join(lines), quick, [DataScope.BALANCES])


def _latest_balance(account: Account) -> tuple[object, str]:
    """The newest balance the core told: a `balance.updated` event since the account's
    last update through the customers API, else the account's own balance."""
    latest = (
        Event.objects.filter(
            account=account,
            type=EventType.BALANCE_UPDATED,
            occurred_at__gte=account.updated_at,
        )
        .order_by("-occurred_at", "-id")
        .first()
    )
    data = latest.data if latest is not None and isinstance(latest.data, dict) else {}
    told = data.get("ledger") or data.get("available")
    if told is None:
        return account.balance, account.currency
    return told, data.get("currency") or account.currency


def _transactions(bank, consent, psid, locale, quick) -> Reply:
    if DataScope.TRANSACTIONS not in consent.scopes:
        return _not_shared(bank, psid, locale, "transactions", quick)
    accounts = {account.pk: account for account in _shared_accounts(consent)}
    if not accounts:
        return _text(psid, texts.say("no_accounts", locale), quick)
    events = list(
        Event.objects.filter(
            bank=bank, account_id__in=accounts, type=EventType.TRANSACTION_POSTED
        ).order_by("-occurred_at", "-id")[:RECENT_TRANSACTIONS]
    )
    if not events:
        return _text(psid, texts.say("no_transactions", locale), quick, [DataScope.TRANSACTIONS])
    lines = [texts.say("transactions_head", locale)]
    for event in events:
        account = accounts[event.account_id]
        data = event.data if isinstance(event.data, dict) else {}
        amount = format_money(
            data.get("amount"), data.get("currency") or account.currency, locale=locale
        )
        label = mask_numbers(clean_text(str(data.get("merchant") or data.get("description") or "")))
        day = (
            event.occurred_at.strftime("%d.%m.")
            if locale.startswith("de")
            else event.occurred_at.strftime("%d/%m")
        )
        lines.append(f"{day} · {label[:60] or '—'} · {amount} · •••• {account.last4[-4:]}")
    return _text(psid, "\n".join(lines), quick, [DataScope.TRANSACTIONS])


def _queue(conversation: Conversation, reply: Reply, *, author: str, form: str, sent_by=None):
    return ConversationMessage.objects.create(
        bank_id=conversation.bank_id,
        conversation=conversation,
        direction=Direction.OUTBOUND,
        author=author,
        sent_by=sent_by,
        text=reply.text,
        payload=reply.payload,
        form=form,
        data_categories=reply.data_categories,
        state=State.PENDING,
        next_attempt_at=timezone.now(),
    )


# Fraud alerts


def _fraud_answer(bank, conversation, consent, found: matcher.Match, locale) -> list[Reply] | None:
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
    from notifications.conversation.selectors import conversation_text_for
    from notifications.services.outbox import first_name, message_data

    body = conversation_text_for(bank=bank, kind=ConversationText.Kind.FRAUD_DENIED, locale=locale)
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
    return render(body, EventType.FRAUD_ALERT, values, locale=locale)


@transaction.atomic
def fraud_answer_record(
    *, notification: Notification, answer: str
) -> tuple[FraudAlertAnswer, bool]:
    """Record the answer once; returns (the answer that stands, whether it is new).

    A new answer is audited and queues the signed callback to the bank, in the same
    transaction.
    """
    from notifications.conversation import callbacks

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
        actor=Actor("customer", str(notification.event.customer_id), "Customer in Messenger"),
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


# Staff: agent replies, assignment, resolving, the bank's texts


def agent_reply(*, actor_user, conversation: Conversation, text: str) -> ConversationMessage:
    """An operator's reply, sent with the `HUMAN_AGENT` tag within 7 days of the customer's
    last message; refused with the reason otherwise (nothing is written then)."""
    text = clean_text(text or "").strip()
    if not text:
        raise ReplyRefusedError("Write a reply first.")
    if len(text) > TEXT_LIMIT:
        raise ReplyRefusedError(
            f"A reply is at most {TEXT_LIMIT} characters; this one is {len(text)}."
        )
    if holds_card_number(text):
        raise ReplyRefusedError(CARD_NUMBER_REFUSED)
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
            sent_by=actor_user,
        )
        conversation.updated_at = timezone.now()
        conversation.save(update_fields=["updated_at"])
        audit_record(
            actor=Actor.staff(actor_user),
            action="conversation.agent_replied",
            bank=conversation.bank,
            target=conversation,
            details={"message": message.pk, "length": len(text)},
            data_categories=[AGENT_TEXT],
        )
        from notifications.conversation import tasks

        transaction.on_commit(lambda: tasks.send_conversation_message.delay(message.pk))
    return message


def conversation_view_record(*, actor_user, conversation: Conversation) -> None:
    """Staff opened a linked customer's conversation: reading customer data is audited."""
    if conversation.customer_id is None:
        return
    audit_record(
        actor=Actor.staff(actor_user),
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
def conversation_assign(*, actor_user, conversation: Conversation, assignee) -> Conversation:
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
        actor=Actor.staff(actor_user),
        action="conversation.assigned",
        bank=conversation.bank,
        target=conversation,
        details={"assignee": assignee.get_username() if assignee else None},
    )
    return conversation


@transaction.atomic
def conversation_resolve(*, actor_user, conversation: Conversation) -> Conversation:
    """Take the conversation out of the inbox; the customer's next unanswered ask reopens it."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if not conversation.needs_person:
        return conversation  # already resolved: nothing changes, nothing to record
    conversation.needs_person = False
    conversation.resolved_at = timezone.now()
    conversation.updated_at = conversation.resolved_at
    conversation.save(update_fields=["needs_person", "resolved_at", "updated_at"])
    audit_record(
        actor=Actor.staff(actor_user),
        action="conversation.resolved",
        bank=conversation.bank,
        target=conversation,
        details={"reason": conversation.reason},
    )
    return conversation


_LOCALE = re.compile(r"^[a-z]{2,3}(?:_[A-Z]{2})?$")


def conversation_text_errors(body: str) -> list[str]:
    """What is wrong with a next-steps text: it may use the fraud alert's placeholders."""
    return rendering_template_errors(body or "", EventType.FRAUD_ALERT)


@transaction.atomic
def conversation_text_save(
    *, actor_user, bank: Bank, kind: str, locale: str, body: str
) -> ConversationText:
    if kind not in ConversationText.Kind.values:
        raise ValueError(f"Unknown kind of text “{kind}”.")
    if not _LOCALE.match(locale or ""):
        raise ValueError("Use a language code such as en, fr or de_CH.")
    errors = conversation_text_errors(body)
    if errors:
        raise ValueError(" ".join(errors))
    text, created = ConversationText.objects.update_or_create(
        bank=bank, kind=kind, locale=locale, defaults={"body": body.strip()}
    )
    audit_record(
        actor=Actor.staff(actor_user),
        action="conversation_text.saved",
        bank=bank,
        target=text,
        details={"kind": kind, "locale": locale, "created": created},
    )
    return text


# Sending


def message_send(*, message_id: int, now: datetime | None = None) -> str:
    """Send one outbound message if it is due; returns its state afterwards.

    The row is claimed with a conditional update (pending and due → sending, under a
    lease), so two workers never send it both. A token comes from the Page's rate-limit
    bucket first. Transient and throttled errors retry with backoff from
    `next_attempt_at`; anything else ends the message as not sent, with the reason.
    """
    now = _now(now)
    claimed = ConversationMessage.objects.filter(
        pk=message_id, direction=Direction.OUTBOUND, state=State.PENDING, next_attempt_at__lte=now
    ).update(state=State.SENDING, lease_expires_at=now + SEND_LEASE, attempts=F("attempts") + 1)
    if not claimed:
        return (
            ConversationMessage.objects.filter(pk=message_id)
            .values_list("state", flat=True)
            .first()
            or ""
        )
    message = ConversationMessage.objects.select_related("conversation", "bank").get(pk=message_id)
    integration = MessengerIntegration.objects.filter(bank_id=message.bank_id).first()
    if integration is None or integration.status != MessengerIntegration.Status.LIVE:
        return _finish(message, State.FAILED, "The Messenger integration is not live.")
    if integration.page_id != message.conversation.page_id:
        return _finish(message, State.FAILED, "The bank's Facebook Page changed.")
    try:
        creds = messenger.PageCredentials(
            page_id=integration.page_id,
            access_token=integration.page_access_token,
            app_secret=integration.app_secret,
        )
    except ValueError:
        return _finish(message, State.FAILED, "The Page credentials are incomplete.")
    buckets = page_buckets()
    if not _take_token(buckets, integration.page_id):
        return _retry(message, "Waiting for the Page's rate limit.", seconds=1.0, count=False)
    try:
        result = messenger.get_client().send(creds, message.payload)
    except messenger.ThrottledError as exc:
        buckets.throttle(integration.page_id, exc.retry_after_seconds)
        return _retry(message, str(exc)[:300], seconds=exc.retry_after_seconds or 0.0)
    except messenger.TransientError as exc:
        return _retry(message, str(exc)[:300])
    except messenger.OutsideWindowError:
        window = "7 days" if message.form == "HUMAN_AGENT" else "24 hours"
        return _finish(
            message,
            State.FAILED,
            f"Messenger refused it: the customer last wrote over {window} ago.",
        )
    except messenger.MessengerError as exc:
        return _finish(message, State.FAILED, f"Messenger refused it: {exc}"[:300])
    return _finish(message, State.SENT, "", message_id=result.message_id)


def _take_token(buckets, page_id: str) -> bool:
    deadline = time.monotonic() + MAX_TOKEN_WAIT
    while True:
        grant = buckets.take(page_id, 1)
        if grant.granted:
            return True
        if time.monotonic() + grant.wait > deadline:
            return False
        time.sleep(grant.wait)


def _retry(
    message: ConversationMessage, detail: str, *, seconds: float = 0.0, count: bool = True
) -> str:
    attempts = message.attempts if count else message.attempts - 1
    if count and attempts >= MAX_SEND_ATTEMPTS:
        return _finish(message, State.FAILED, f"Gave up after {attempts} attempts: {detail}"[:300])
    ConversationMessage.objects.filter(pk=message.pk, state=State.SENDING).update(
        state=State.PENDING,
        attempts=attempts,
        detail=detail[:300],
        lease_expires_at=None,
        next_attempt_at=timezone.now() + timedelta(seconds=retry_delay(attempts, at_least=seconds)),
    )
    return State.PENDING


@transaction.atomic
def _finish(message: ConversationMessage, state: str, detail: str, *, message_id: str = "") -> str:
    """Record the outcome and what left the bank (or did not) in the audit log."""
    moment = timezone.now()
    updated = ConversationMessage.objects.filter(pk=message.pk, state=State.SENDING).update(
        state=state,
        detail=detail[:300],
        mid=message_id[:128],
        sent_at=moment if state == State.SENT else None,
        lease_expires_at=None,
        next_attempt_at=None,
    )
    if not updated:
        return ConversationMessage.objects.get(pk=message.pk).state
    conversation = message.conversation
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=moment)
    target = (
        {"target_type": "linking.consent", "target_id": str(conversation.consent_id)}
        if conversation.consent_id
        else {"target": conversation}
    )
    audit_record(
        actor=Actor.staff(message.sent_by) if message.sent_by_id else SYSTEM,
        action="conversation.message_sent"
        if state == State.SENT
        else "conversation.message_failed",
        bank=message.bank,
        details={
            "conversation": conversation.pk,
            "message": message.pk,
            "author": message.author,
            "form": message.form,
            "attempt": message.attempts,
            "message_id": message_id,
            "detail": detail,
        },
        data_categories=message.data_categories if state == State.SENT else [],
        **target,
    )
    return state


def sender_action(*, conversation: Conversation, action: str) -> bool:
    """Show the customer `mark_seen` or typing; best effort, never retried (it is a hint)."""
    integration = MessengerIntegration.objects.filter(bank_id=conversation.bank_id).first()
    if integration is None or integration.status != MessengerIntegration.Status.LIVE:
        return False
    try:
        creds = messenger.PageCredentials(
            page_id=integration.page_id,
            access_token=integration.page_access_token,
            app_secret=integration.app_secret,
        )
    except ValueError:
        return False
    if not _take_token(page_buckets(), integration.page_id):
        return False
    try:
        messenger.get_client().sender_action(creds, conversation.psid, action)
    except messenger.MessengerError as exc:
        log.info(
            "sender action %s for conversation %s not shown: %s",
            action,
            conversation.pk,
            type(exc).__name__,
        )
        return False
    return True


def messages_take_over(*, now: datetime | None = None) -> int:
    """Claims whose worker died mid-send go back to the queue (they may be resent)."""
    now = _now(now)
    return ConversationMessage.objects.filter(state=State.SENDING, lease_expires_at__lt=now).update(
        state=State.PENDING,
        lease_expires_at=None,
        next_attempt_at=now,
        detail="Its worker stopped mid-send; sent again.",
    )


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


def messages_due(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    now = _now(now)
    return list(
        ConversationMessage.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


# Privacy: retention and erasure


def message_bodies_purge(bank: Bank, cutoff: datetime) -> int:
    """Blank the texts and bodies of the bank's messages older than `cutoff`."""
    return (
        ConversationMessage.objects.filter(bank=bank, created_at__lt=cutoff)
        .filter(~Q(text="") | Q(payload__isnull=False) | ~Q(quick_reply_payload=""))
        .update(text="", payload=None, quick_reply_payload="")
    )


def customer_conversations_erase(customer) -> int:
    """Remove a customer's PSIDs and message texts: the conversations become anonymous.

    The rows stay (pseudonymous, for the bank's records and the audit log's references);
    the PSID, every text and body, and the message ids Messenger gave go.
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
    for conversation_id in ids:
        changed += Conversation.objects.filter(pk=conversation_id).update(
            psid=f"erased-{conversation_id}", customer=None, consent=None
        )
    return changed
