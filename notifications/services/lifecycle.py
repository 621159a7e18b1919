"""What happens to notifications after they are written, besides sending them.

Delivery and read receipts from Messenger, a link that ends, a person who writes to the
Page again, and staff replaying dead-lettered notifications. The webhook-driven ones
run inside Messenger's webhook request, so each is one or two statements.
"""

import datetime as dt
from collections import defaultdict

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from linking.models import Consent
from notifications.models import DeliveryReceipt, Notification, Recipient
from notifications.services.nudge import deliveries_nudge
from notifications.services.outbox import sequences_assign
from notifications.services.queue import people_wake
from portal.audit import Actor
from portal.models import Bank
from portal.services import audit_record

State, Reason = Notification.State, Notification.Reason
ENGINE = Actor.system("delivery engine")
REPLAYABLE = (State.DEAD, State.HELD)


def _moment(watermark_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(watermark_ms / 1000, tz=dt.UTC)


def notifications_mark_delivered(
    *, bank_id: int, page_id: str, psid: str, mids: list[str], watermark_ms: int
) -> int:
    """A delivery receipt: these message ids, and everything sent before the watermark.

    Message ids we do not hold yet (the sending worker has not committed them) are kept
    as receipts for the worker to apply when it does.
    """
    now = timezone.now()
    sent = Notification.objects.filter(
        bank_id=bank_id, page_id=page_id, psid=psid, state=State.SENT
    )
    updated = sent.filter(Q(message_id__in=mids) | Q(sent_at__lte=_moment(watermark_ms))).update(
        state=State.DELIVERED, delivered_at=now
    )
    if mids and updated < len(mids):
        DeliveryReceipt.objects.bulk_create(
            [DeliveryReceipt(bank_id=bank_id, message_id=mid, delivered_at=now) for mid in mids],
            ignore_conflicts=True,
        )
    return updated


def notifications_mark_read(*, bank_id: int, page_id: str, psid: str, watermark_ms: int) -> int:
    """A read receipt: everything sent to the person before the watermark was read."""
    now = timezone.now()
    return Notification.objects.filter(
        bank_id=bank_id,
        page_id=page_id,
        psid=psid,
        state__in=(State.SENT, State.DELIVERED),
        sent_at__lte=_moment(watermark_ms),
    ).update(state=State.READ, read_at=now, delivered_at=Coalesce("delivered_at", now))


def recipient_acted(*, bank_id: int, page_id: str, psid: str) -> int:
    """The person wrote to the Page: they are reachable, and the 24-hour window is open.

    Notifications held for want of an allowed form go back in the queue (as long as the
    retry budget's hours allow), and ones that had switched to the utility template try
    free-form again. Returns how many were released.
    """
    now = timezone.now()
    Recipient.objects.filter(page_id=page_id, psid=psid, unreachable_at__isnull=False).update(
        unreachable_at=None, unreachable_reason=""
    )
    mine = Notification.objects.filter(bank_id=bank_id, page_id=page_id, psid=psid)
    mine.filter(state=State.PENDING, window_closed=True).update(window_closed=False)
    released = mine.filter(
        state=State.HELD,
        reason=Reason.NO_ALLOWED_FORM,
        queued_at__gte=now - dt.timedelta(hours=settings.NOTIFICATIONS_MAX_AGE_HOURS),
    ).update(
        state=State.PENDING,
        reason=Reason.QUEUED,
        detail="",
        next_attempt_at=now,
        window_closed=False,
        waiting=False,
    )
    if released:
        deliveries_nudge()
    return released


@transaction.atomic
def notifications_cancel_for_link(*, consent_id: int) -> int:
    """A link ended: nothing more is sent under it. One statement, one audit entry."""
    consent = Consent.objects.select_related("bank").filter(pk=consent_id).first()
    if consent is None:
        return 0
    cancelled = Notification.objects.filter(
        consent_id=consent_id, state__in=Notification.OPEN
    ).update(
        state=State.CANCELLED,
        reason=Reason.LINK_ENDED,
        detail=f"The consent was {consent.get_status_display().lower()}.",
        finished_at=timezone.now(),
    )
    if cancelled:
        people_wake([(consent.page_id, consent.psid)])
        audit_record(
            actor=ENGINE,
            action="notifications.cancelled",
            bank=consent.bank,
            target=consent,
            details={"cancelled": cancelled, "consent_status": consent.status},
        )
    return cancelled


@transaction.atomic
def notifications_replay(
    *,
    actor: Actor,
    bank: Bank,
    notification_ids: list[int] | None = None,
    every_dead: bool = False,
) -> int:
    """Queue dead-lettered (or held) notifications of `bank` again, singly or in bulk.

    Each goes to the end of its person's queue, with a fresh retry budget; an ended
    consent still cancels it when it comes up. Notifications in any other state are left
    alone. One audit entry records the replay. Returns how many were queued.
    """
    if notification_ids is None and not every_dead:
        raise ValueError("Name the notifications to replay, or replay every dead one.")
    found = Notification.objects.for_bank(bank).select_for_update()
    if notification_ids is not None:
        found = found.filter(pk__in=notification_ids, state__in=REPLAYABLE)
    else:
        found = found.filter(state=State.DEAD)
    replayed = list(found.order_by("page_id", "psid", "sequence"))
    if not replayed:
        return 0
    now = timezone.now()
    sequences_assign(bank, replayed)
    for notification in replayed:
        notification.state, notification.reason = State.PENDING, Reason.REPLAYED
        notification.detail = f"Replayed by {actor.label or actor.type}."
        notification.attempts, notification.window_closed = 0, False
        notification.waiting = False
        notification.next_attempt_at = notification.queued_at = now
        notification.finished_at = None
        notification.form = ""
    Notification.objects.bulk_update(
        replayed,
        [
            "state",
            "reason",
            "detail",
            "attempts",
            "window_closed",
            "waiting",
            "next_attempt_at",
            "queued_at",
            "finished_at",
            "form",
            "sequence",
        ],
        batch_size=500,
    )
    ids = [n.pk for n in replayed]
    by_type: dict[str, int] = defaultdict(int)
    for notification in replayed:
        by_type[notification.event_type] += 1
    if len(replayed) == 1:
        audit_record(
            actor=actor,
            action="notification.replayed",
            bank=bank,
            target=replayed[0],
            details={"event_type": replayed[0].event_type},
        )
    else:
        audit_record(
            actor=actor,
            action="notifications.replayed",
            bank=bank,
            target_type="notifications.notification",
            details={"count": len(ids), "ids": ids[:500], "event_types": dict(by_type)},
        )
    deliveries_nudge()
    return len(replayed)
