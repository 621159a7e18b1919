"""What notifications does when linking tells it something: receivers stay quick."""

import logging

from django.dispatch import receiver

import messenger
from linking import signals
from notifications import metrics, services
from notifications.services.echoes import echo_record
from portal.models import MessengerIntegration

log = logging.getLogger(__name__)


@receiver(signals.link_ended)
def cancel_pending_notifications(sender, consent_id: int, **kwargs) -> None:
    services.notifications_cancel_for_link(consent_id=consent_id)


@receiver(signals.sharing_changed)
def cancel_notifications_no_longer_shared(
    sender: object, consent_id: int, scopes: list[str], account_ids: list[int], **kwargs: object
) -> None:
    services.notifications_cancel_out_of_scope(
        consent_id=consent_id, scopes=scopes, account_ids=account_ids
    )


@receiver(signals.messenger_event)
def record_messenger_event(sender, bank_id: int, page_id: str, event, **kwargs) -> None:
    """Delivery and read receipts update notifications; the person acting (whatever opens
    the 24-hour window: a message, postback, referral, reaction or opt-in) releases holds;
    an echo settles the message it is the copy of (`services.echoes`).

    Runs inside Messenger's webhook request, in the event's own transaction: a failure
    undoes the whole event, and the webhook logs it and still answers 200.
    """
    if isinstance(event, messenger.EchoEvent):
        app_id = (
            MessengerIntegration.objects.filter(bank_id=bank_id)
            .values_list("app_id", flat=True)
            .first()
        )
        echo_record(bank_id=bank_id, page_id=page_id, app_id=app_id or "", event=event)
    elif isinstance(event, messenger.DeliveryEvent):
        services.notifications_mark_delivered(
            bank_id=bank_id,
            page_id=page_id,
            psid=event.sender_id,
            mids=list(event.mids),
            watermark_ms=event.watermark,
        )
    elif isinstance(event, messenger.ReadEvent):
        services.notifications_mark_read(
            bank_id=bank_id, page_id=page_id, psid=event.sender_id, watermark_ms=event.watermark
        )
    elif messenger.opens_window(event) and event.sender_id:
        services.recipient_acted(bank_id=bank_id, page_id=page_id, psid=event.sender_id)


@receiver(signals.messenger_event_not_applied)
def count_event_not_applied(
    sender: object, bank_id: int, event_type: str, readable: bool, **kwargs: object
) -> None:
    metrics.webhook_event_not_applied_observe(event_type, readable=readable)
