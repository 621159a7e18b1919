"""Echoes: Meta's copy of every message the Page sends settles what a worker could not.

The Send API has no idempotency key, but every message the Page sends comes back as an
echo carrying the `metadata` the sender put on it (messenger-platform §2 and §3). Every send of
bankside carries its reference there (`messenger.references`), so an echo says which
notification (or reply, or link message) reached Messenger, whatever the worker that sent
it recorded or failed to record:

- each echo is stored once per (bank, `mid`) (`MessageEcho`): Meta retries webhooks, and a
  second copy of an echo changes nothing;
- a notification's echo makes it sent with the echo's `mid`, under its row lock, with one
  `notification.sent` audit entry and one outcome, unless it is sent already (then the
  echo confirms it) or its worker holds it (`in_flight`: the echo is kept, and the worker,
  or whoever takes its claim over, finds it — `delivery.record`, `delivery.claim`);
- an uncertain send (the worker died mid-call, the connection dropped after the request
  went out, an unreadable answer) waits for its echo up to `NOTIFICATIONS_ECHO_WAIT_SECONDS`
  (`awaiting_echo`); without one it is sent again, once, flagged `resent`;
- replies and Page-inbox messages belong to the conversation, which receives them through
  the `message_echoed` signal; an echo whose `app_id` is not the bank's app is a person
  answering from Meta's Page inbox;
- an echo whose reference names nothing of ours is logged (no personal data) and counted.
"""

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

import messenger
from linking import services as linking_services
from linking.models import Consent
from notifications import metrics
from notifications.models import DeliveryReceipt, MessageEcho, Notification, Outcome
from notifications.services.events import OutcomeRow, outcomes_record
from notifications.services.queue import people_wake
from notifications.signals import message_echoed
from portal.audit import Actor
from portal.models import Bank
from portal.pseudonyms import pseudonym
from portal.services.audit import AuditEntry, audit_record_many

log = logging.getLogger(__name__)

State = Notification.State
EchoOutcome = MessageEcho.Outcome
Source = MessageEcho.Source
ENGINE = Actor.system("delivery engine")
SETTLED_DETAIL = "Messenger's echo of the message shows it was sent."


def echo_record(
    *, bank_id: int, page_id: str, app_id: str, event: messenger.EchoEvent
) -> MessageEcho | None:
    """Store one echo and act on it; None when this `mid` was stored before.

    Runs in the webhook event's transaction. `app_id` is the bank's app as configured
    (blank when the bank has not entered it: then only our reference tells our messages
    apart).
    """
    reference = messenger.reference_parse(event.metadata)
    foreign = bool(app_id) and event.app_id is not None and event.app_id != app_id
    source = Source.PAGE_INBOX if foreign or (not app_id and reference is None) else Source.BANKSIDE
    echo = MessageEcho(
        bank_id=bank_id,
        page_id=page_id,
        recipient_ref=pseudonym(event.recipient_id),
        app_id=event.app_id or "",
        metadata=(event.metadata or "")[:1000],
        mid=event.mid[:128],
        source=source,
        outcome=EchoOutcome.UNKNOWN,
        sent_at=dt.datetime.fromtimestamp(event.timestamp / 1000, tz=dt.UTC),
    )
    try:
        with transaction.atomic():
            echo.save()
    except IntegrityError:
        metrics.echo_observe("duplicate")
        return None
    if source == Source.PAGE_INBOX:
        outcome = _to_conversation(echo, event, reference) or EchoOutcome.PAGE_INBOX
    elif reference is None:
        outcome = EchoOutcome.UNKNOWN
    elif reference.kind == "n":
        outcome = _notification_echo(echo, event, reference.id)
    elif reference.kind == "r":
        outcome = _to_conversation(echo, event, reference) or EchoOutcome.UNKNOWN
    elif reference.kind == "l":
        found = linking_services.link_message_echoed(
            actor=ENGINE,
            bank_id=bank_id,
            message_id=reference.id,
            psid=event.recipient_id,
            sent_at=echo.sent_at,
        )
        outcome = EchoOutcome.LINK if found else EchoOutcome.UNKNOWN
    else:  # the goodbye of an unlink, by consent: sent at most once, nothing to settle
        known = Consent.objects.filter(
            pk=reference.id, bank_id=bank_id, psid=event.recipient_id
        ).exists()
        outcome = EchoOutcome.LINK if known else EchoOutcome.UNKNOWN
    echo.outcome = outcome
    MessageEcho.objects.filter(pk=echo.pk).update(
        outcome=outcome, notification_id=echo.notification_id
    )
    if outcome == EchoOutcome.UNKNOWN:
        log.warning(
            "echo on Page %s of bank %s names no message of ours (reference kind %s)",
            page_id,
            bank_id,
            reference.kind if reference else "none",
            extra={"echo_id": echo.pk},
        )
    metrics.echo_observe(outcome)
    return echo


def _to_conversation(
    echo: MessageEcho, event: messenger.EchoEvent, reference: messenger.Reference | None
) -> str | None:
    """The conversation's share: a reply's echo, or a message written in the Page inbox."""
    answers = message_echoed.send(
        sender=MessageEcho,
        bank_id=echo.bank_id,
        page_id=echo.page_id,
        echo=echo,
        event=event,
        reference=reference,
    )
    return next((str(answer) for _, answer in answers if answer), None)


def _notification_echo(echo: MessageEcho, event: messenger.EchoEvent, pk: int) -> str:
    notification = (
        Notification.objects.select_for_update(of=("self",))
        .select_related("event")
        .filter(pk=pk, bank_id=echo.bank_id, page_id=echo.page_id, psid=event.recipient_id)
        .first()
    )
    if notification is None:
        return EchoOutcome.UNKNOWN
    echo.notification_id = notification.pk
    if notification.state in Notification.SENT_STATES:
        # The worker recorded it; a different `mid` is a second copy (a resend whose
        # first attempt did reach the person after all).
        if notification.message_id and notification.message_id != echo.mid:
            return EchoOutcome.EXTRA
        return EchoOutcome.CONFIRMED
    if notification.state == State.IN_FLIGHT:
        return EchoOutcome.EARLY  # its worker, or the take-over, applies it
    # A digest's message names the notification that led it: the others it carried went
    # out in that same message (those still in flight are their worker's to record).
    carried = (
        Notification.objects.select_for_update(of=("self",))
        .select_related("event")
        .filter(digest=notification.pk, bank_id=echo.bank_id, page_id=echo.page_id)
        .exclude(pk=notification.pk)
        .exclude(state__in=[*Notification.SENT_STATES, State.IN_FLIGHT])
        .order_by("pk")
    )
    settled = [(n, echo.mid, echo.sent_at) for n in [notification, *carried]]
    notifications_settle(settled=settled)
    metrics.settled_observe(len(settled))
    return EchoOutcome.SETTLED


def notifications_settle(*, settled: Sequence[tuple[Notification, str, datetime]]) -> None:
    """Make notifications sent on the evidence of their echoes: each with the `mid` and
    sending time of its echo, in this order; the caller holds their row locks.

    Whatever state the worker left each in (waiting for its echo, retrying, dead-lettered,
    held), the message reached Messenger: it is recorded sent once, audited once, reported
    once in the bank's outcome feed, and its person's next message may go. Settled as one
    batch: one statement updates the rows, one look-up finds their waiting delivery
    receipts, and each bank gets one audit append and one outcome append. A receipt makes
    the first notification of its `mid` delivered (a digest's lead, before the others it
    carried).
    """
    if not settled:
        return
    now = timezone.now()
    receipts = {
        receipt.message_id: receipt
        for receipt in DeliveryReceipt.objects.filter(message_id__in={mid for _, mid, _ in settled})
    }
    delivered: dict[int, DeliveryReceipt] = {}
    for notification, mid, _ in settled:
        receipt = receipts.pop(mid, None)
        if receipt is not None:
            delivered[notification.pk] = receipt
    Notification.objects.bulk_update(
        [
            Notification(
                pk=notification.pk,
                state=State.DELIVERED if notification.pk in delivered else State.SENT,
                reason="",
                detail=SETTLED_DETAIL,
                message_id=mid,
                sent_at=min(sent_at, now),
                delivered_at=(
                    delivered[notification.pk].delivered_at
                    if notification.pk in delivered
                    else None
                ),
                finished_at=now,
                next_attempt_at=None,
                lease_owner="",
                lease_expires_at=None,
                send_started_at=None,
                waiting=False,
            )
            for notification, mid, sent_at in settled
        ],
        _SETTLED_FIELDS,
    )
    if delivered:
        DeliveryReceipt.objects.filter(pk__in=[r.pk for r in delivered.values()]).delete()
    by_bank: dict[int, list[tuple[Notification, str]]] = defaultdict(list)
    for notification, mid, _ in settled:
        by_bank[notification.bank_id].append((notification, mid))
    for bank_id in sorted(by_bank):
        audit_record_many(
            actor=ENGINE,
            bank_id=bank_id,
            entries=[_settled_entry(notification, mid) for notification, mid in by_bank[bank_id]],
        )
    banks = Bank.objects.in_bulk(list(by_bank))
    for bank_id in sorted(by_bank):
        outcomes_record(
            bank=banks[bank_id],
            outcomes=[
                OutcomeRow(
                    bank_id=bank_id,
                    type=kind,
                    event_id=notification.event_id,
                    notification_id=notification.pk,
                    event_ref=notification.event.event_id,
                    event_type=notification.event_type,
                    details={"reason": "echo", "form": notification.form},
                    occurred_at=now,
                )
                for notification, _ in by_bank[bank_id]
                for kind in (
                    [Outcome.Type.NOTIFICATION_SENT, Outcome.Type.NOTIFICATION_DELIVERED]
                    if notification.pk in delivered
                    else [Outcome.Type.NOTIFICATION_SENT]
                )
            ],
        )
    people = {(notification.page_id, notification.psid) for notification, _, _ in settled}
    transaction.on_commit(lambda: people_wake(people))


_SETTLED_FIELDS = [
    "state",
    "reason",
    "detail",
    "message_id",
    "sent_at",
    "delivered_at",
    "finished_at",
    "next_attempt_at",
    "lease_owner",
    "lease_expires_at",
    "send_started_at",
    "waiting",
]


def _settled_entry(notification: Notification, mid: str) -> AuditEntry:
    return AuditEntry(
        action="notification.sent",
        target_type="linking.consent",
        target_id=str(notification.consent_id),
        details={
            "notification": notification.pk,
            "event": notification.event.event_id,
            "event_type": notification.event_type,
            "form": notification.form,
            "attempt": notification.attempts,
            "outcome": "echo",
            "message_id": mid,
            "page_id": notification.page_id,
            "psid": notification.psid,
            "settled_by": "echo",
        },
        data_categories=notification.data_categories,
    )


def echoes_for(notification_ids: list[int]) -> dict[int, tuple[str, datetime]]:
    """The echoes stored for these notifications: id -> (`mid`, when it was sent), the
    first echo of each. A notification carried in a digest has the digest's echo (it names
    the notification that led the digest)."""
    if not notification_ids:
        return {}
    leads = dict(
        Notification.objects.filter(pk__any=notification_ids, digest__isnull=False).values_list(
            "pk", "digest"
        )
    )
    echoes: dict[int, tuple[str, datetime]] = {}
    for pk, mid, sent_at in (
        MessageEcho.objects.filter(notification_id__any={*notification_ids, *leads.values()})
        .order_by("id")
        .values_list("notification_id", "mid", "sent_at")
    ):
        if pk is not None:
            echoes.setdefault(pk, (mid, sent_at))
    found: dict[int, tuple[str, datetime]] = {}
    for pk in notification_ids:
        echo = echoes.get(pk) or echoes.get(leads.get(pk) or 0)
        if echo is not None:
            found[pk] = echo
    return found


def echoes_settled(notification_ids: list[int]) -> None:
    """Their echoes settled these notifications (found by the worker or the claim)."""
    if notification_ids:
        MessageEcho.objects.filter(notification_id__in=notification_ids).filter(
            outcome=EchoOutcome.EARLY
        ).update(outcome=EchoOutcome.SETTLED)
