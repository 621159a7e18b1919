"""Sending: each outbound message claimed under a lease, within its Page's rate limit, audited."""

import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

import messenger
from conversation.models import Conversation, ConversationMessage
from conversation.services.inbound import _now
from notifications.page_limits import (
    Grant,
    LocalPageBuckets,
    RedisPageBuckets,
    call_counted,
    page_buckets,
)
from notifications.services.delivery import retry_delay
from portal.audit import Actor
from portal.models import MessengerIntegration
from portal.services import audit_record

log = logging.getLogger(__name__)

Direction = ConversationMessage.Direction
State = ConversationMessage.State
SYSTEM = Actor.system("conversation")
SEND_LEASE = timedelta(seconds=60)
MAX_SEND_ATTEMPTS = 8
MAX_TOKEN_WAIT = 1.0


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
    taken = _take_token(buckets, integration.page_id)
    if taken is None:
        return _retry(message, "Waiting for the Page's rate limit.", seconds=1.0, count=False)
    try:
        # Written with every outbound row; only the purge of old rows empties it.
        payload = cast(Mapping[str, Any], message.payload)
        with call_counted(buckets, integration.page_id, taken):
            result = messenger.get_client().send(creds, payload)
    except messenger.ThrottledError as exc:
        buckets.throttle(integration.page_id, exc.retry_after_seconds)
        return _retry(message, str(exc)[:300], seconds=exc.retry_after_seconds or 0.0)
    except messenger.TransientError as exc:
        # A call that may have gone out waits for its echo before it is sent again: the
        # echo, if it comes, makes the message sent (`reply_echo_record`).
        wait = settings.NOTIFICATIONS_ECHO_WAIT_SECONDS if exc.maybe_processed else 0.0
        return _retry(message, str(exc)[:300], seconds=wait)
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


def _take_token(
    buckets: RedisPageBuckets | LocalPageBuckets, page_id: str
) -> tuple[Grant, float] | None:
    """A token of the Page's, and when the take that granted it began (for
    `call_counted`); None if none came within `MAX_TOKEN_WAIT`."""
    deadline = time.monotonic() + MAX_TOKEN_WAIT
    while True:
        asked = time.monotonic()
        grant = buckets.take(page_id, 1)
        if grant.granted:
            return grant, asked
        if time.monotonic() + grant.wait > deadline:
            return None
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


def sender_action(*, conversation: Conversation, action: messenger.builders.SenderAction) -> bool:
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
    buckets = page_buckets()
    taken = _take_token(buckets, integration.page_id)
    if taken is None:
        return False
    try:
        with call_counted(buckets, integration.page_id, taken):
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
    """Claims whose worker died mid-send go back to the queue, after the wait for their
    echo: the echo, if it comes, makes the message sent, and it is not sent again."""
    now = _now(now)
    wait = timedelta(seconds=settings.NOTIFICATIONS_ECHO_WAIT_SECONDS)
    return ConversationMessage.objects.filter(state=State.SENDING, lease_expires_at__lt=now).update(
        state=State.PENDING,
        lease_expires_at=None,
        next_attempt_at=now + wait,
        detail="Its worker stopped mid-send; sent again unless its echo shows it went out.",
    )


def messages_due(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    now = _now(now)
    return list(
        ConversationMessage.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
