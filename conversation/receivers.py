"""The conversation's share of Messenger's webhook: store what people write, quickly."""

import logging
from datetime import datetime
from typing import Any

from django.dispatch import receiver
from django.utils import timezone

import messenger
from conversation import callbacks, services
from linking import signals
from notifications.models import MessageEcho
from notifications.signals import message_echoed, notifications_undeliverable

log = logging.getLogger(__name__)


@receiver(signals.messenger_event)
def record_inbound_message(sender, bank_id: int, page_id: str, event, **kwargs) -> None:
    """Messages and postbacks are stored and answered by a worker.

    Runs inside Messenger's webhook request, in the event's own transaction: a failure
    undoes the whole event, and the webhook logs it and still answers 200.
    """
    if not isinstance(event, (messenger.MessageEvent, messenger.PostbackEvent)) or event.standby:
        return
    services.inbound_record(bank_id=bank_id, page_id=page_id, event=event)


@receiver(signals.link_changed)
def queue_link_callback(
    sender: object,
    bank_id: int,
    type: str,
    data: dict[str, Any],
    occurred_at: datetime | None,
    **kwargs: Any,
) -> None:
    """`link.created` and `link.ended`: written in the link's own transaction, delivered
    signed and retried like every callback to the bank; nothing is kept for a bank with
    no callback URL (every link would leave a row no one can send)."""
    callbacks.callback_queue(
        bank_id=bank_id,
        type=type,
        data=data,
        at=occurred_at or timezone.now(),
        keep_unconfigured=False,
    )


@receiver(notifications_undeliverable)
def queue_undeliverable_callbacks(
    sender: object, bank_id: int, items: list[dict[str, Any]], at: datetime, **kwargs: Any
) -> list[str]:
    """`notification.undeliverable`: one signed callback per update handed back, written in
    the hand-back's transaction; answers their `webhook-id`s (none without a callback URL,
    which undoes the hand-back)."""
    return callbacks.callbacks_queue_many(
        bank_id=bank_id, type=callbacks.UNDELIVERABLE, items=items, at=at
    )


@receiver(message_echoed)
def record_echo(
    sender: object,
    bank_id: int,
    page_id: str,
    echo: MessageEcho,
    event: messenger.EchoEvent,
    reference: messenger.Reference | None,
    **kwargs: object,
) -> str | None:
    """A reply's echo settles the reply; a message from Meta's Page inbox joins the thread.

    Answers the echo's outcome, or None for an echo naming no reply of ours.
    """
    if echo.source == MessageEcho.Source.PAGE_INBOX:
        services.page_inbox_message_record(bank_id=bank_id, page_id=page_id, event=event)
        return MessageEcho.Outcome.PAGE_INBOX
    if reference is not None and reference.kind == "r":
        return services.reply_echo_record(
            bank_id=bank_id,
            page_id=page_id,
            psid=event.recipient_id,
            reply_id=reference.id,
            mid=echo.mid,
            sent_at=echo.sent_at,
        )
    return None
