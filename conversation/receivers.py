"""The conversation's share of Messenger's webhook: store what people write, quickly."""

import logging

from django.dispatch import receiver

import messenger
from conversation import services
from linking import signals

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
