"""The assistant's answers to what a customer asks, and how any reply is queued."""

import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

import messenger
from conversation import texts
from conversation.models import (
    URGENT_REASONS,
    Conversation,
    ConversationMessage,
    ConversationText,
)
from linking.models import Account, Consent
from notifications.models import Event
from portal.events import DataScope, EventType
from portal.languages import format_day_month
from portal.models import Bank
from portal.rendering import TEXT_LIMIT, clean_text, format_money, mask_numbers

Direction = ConversationMessage.Direction
State = ConversationMessage.State
Author = ConversationMessage.Author
RECENT_TRANSACTIONS = 5
# After this long without any message either way, the assistant says again it is automated.
DISCLOSURE_GAP = timedelta(days=7)


@dataclass
class Reply:
    text: str
    payload: dict[str, Any]
    data_categories: list[str]


def _flag(conversation: Conversation, reason: str) -> None:
    """Put the conversation in the inbox for `reason`. An urgent reason (a denied payment,
    a lost card) stands until the conversation is resolved: a "thanks" after it must not
    send it down the inbox."""
    keep = conversation.needs_person and conversation.reason in URGENT_REASONS
    conversation.needs_person = True
    if not keep or reason in URGENT_REASONS:
        conversation.reason = reason
    conversation.resolved_at = None


QuickReplies = Sequence[Mapping[str, Any]]


def _text(
    psid: str,
    text: str,
    quick_replies: QuickReplies | None = None,
    categories: Iterable[str] = (),
) -> Reply:
    text = text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"
    payload = messenger.builders.text_message(psid, text, quick_replies=quick_replies or None)
    return Reply(text, payload, sorted(categories))


def disclosure_due(
    bank: Bank,
    conversation: Conversation,
    inbound: ConversationMessage | None = None,
    *,
    at: datetime | None = None,
) -> bool:
    """Whether the assistant must say it is automated before its next message (the answer
    to `inbound`, or a message of its own at `at`: a warning, a link confirmation): the
    bank tells its customers so, and this is the conversation's start, or it follows
    `DISCLOSURE_GAP` without contact, or a person took part since the last disclosure (a
    staff reply, or the inbox handing the conversation back to the assistant)."""
    if not bank.disclose_automation:
        return False
    disclosed_at = conversation.disclosed_at
    if disclosed_at is None:
        return True
    if conversation.resolved_at is not None and conversation.resolved_at > disclosed_at:
        return True
    thread = ConversationMessage.objects.filter(conversation=conversation)
    if inbound is not None:
        thread = thread.exclude(pk=inbound.pk)
    if thread.filter(
        direction=Direction.OUTBOUND,
        author__in=(Author.AGENT, Author.PAGE_INBOX),
        created_at__gt=disclosed_at,
    ).exists():
        return True
    moment = inbound.created_at if inbound is not None else (at or timezone.now())
    if disclosed_at >= moment:
        return False  # said already for this message (before a warning it caused)
    before: datetime | None = (
        thread.filter(created_at__lte=moment)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    # The disclosure itself was contact, also when it went before a message kept outside
    # the thread (a link confirmation).
    last = disclosed_at if before is None else max(before, disclosed_at)
    return moment - last > DISCLOSURE_GAP


def disclosure(bank: Bank, psid: str, locale: str) -> Reply:
    """One sentence saying the chat is automated, sent before the assistant's answer: the
    bank's own text in the customer's language, else the built-in one."""
    from conversation.selectors import conversation_text_for

    text = conversation_text_for(bank=bank, kind=ConversationText.Kind.AUTOMATED, locale=locale)
    return _text(psid, text)


def _not_linked(bank: Bank, psid: str, locale: str) -> Reply:
    """A Log In button and one line: nothing about any account."""
    text = texts.say("not_linked", locale, bank=bank.name)
    url = settings.PUBLIC_BASE_URL + reverse("linking:start", args=[bank.slug])
    payload = messenger.builders.button_template(psid, text, [messenger.builders.login_button(url)])
    return Reply(text, payload, [])


def dashboard_url(bank: Bank) -> str:
    base: str = settings.PUBLIC_BASE_URL
    return base + reverse("linking:dashboard", args=[bank.slug])


def _not_shared(bank: Bank, psid: str, locale: str, what: str, quick: QuickReplies) -> Reply:
    text = texts.say(
        "not_shared", locale, what=texts.say(f"what_{what}", locale), dashboard=dashboard_url(bank)
    )
    return _text(psid, text, quick)


def _shared_accounts(consent: Consent) -> list[Account]:
    return list(consent.accounts.filter(active=True).order_by("kind", "name", "pk"))


def _balances(bank: Bank, consent: Consent, psid: str, locale: str, quick: QuickReplies) -> Reply:
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


def _transactions(
    bank: Bank, consent: Consent, psid: str, locale: str, quick: QuickReplies
) -> Reply:
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
    bank_zone = zoneinfo.ZoneInfo(bank.timezone)
    for event in events:
        account = accounts[event.account_id]
        data = event.data if isinstance(event.data, dict) else {}
        amount = format_money(
            data.get("amount"), data.get("currency") or account.currency, locale=locale
        )
        label = mask_numbers(clean_text(str(data.get("merchant") or data.get("description") or "")))
        day = format_day_month(timezone.localtime(event.occurred_at, bank_zone), locale)
        lines.append(f"{day} · {label[:60] or '—'} · {amount} · •••• {account.last4[-4:]}")
    return _text(psid, "\n".join(lines), quick, [DataScope.TRANSACTIONS])


def _queue(
    conversation: Conversation,
    reply: Reply,
    *,
    author: str,
    form: str,
    sent_by_id: int | None = None,
) -> ConversationMessage:
    """Write an outbound message to be sent, its Send API body carrying its own reference
    (`bankside:r:<id>`) in `message.metadata`, so its echo can be told apart."""
    message = ConversationMessage.objects.create(
        bank_id=conversation.bank_id,
        conversation=conversation,
        direction=Direction.OUTBOUND,
        author=author,
        sent_by_id=sent_by_id,
        text=reply.text,
        payload=reply.payload,
        form=form,
        data_categories=reply.data_categories,
        state=State.PENDING,
        next_attempt_at=timezone.now(),
    )
    message.payload = with_reference(reply.payload, messenger.reference("r", message.pk))
    ConversationMessage.objects.filter(pk=message.pk).update(payload=message.payload)
    return message


def with_reference(payload: dict[str, Any], metadata: str) -> dict[str, Any]:
    """A copy of a Send API body with `metadata` on its message."""
    return {**payload, "message": {**payload["message"], "metadata": metadata}}
