"""Lease take-over and the sweeper: claims of workers that died go back in the queue."""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications import metrics
from notifications.models import DeliveryAttempt, DeliveryReceipt, Notification
from notifications.services.delivery.jobs import ENGINE, AttemptOutcome, Reason, State
from notifications.services.echoes import echoes_for, echoes_settled, notifications_settle
from notifications.services.queue import (
    open_floor,
    open_floor_raise,
    open_ids_q,
    waiting_wake_stranded,
)
from portal.models import MessengerIntegration
from portal.services.audit import AuditEntry, audit_record_many

log = logging.getLogger(__name__)

RECEIPT_LIFETIME = timedelta(hours=1)
_LOST = (  # what a lost claim's row is read as, in this order
    "pk",
    "bank_id",
    "consent_id",
    "event__event_id",
    "event_type",
    "page_id",
    "psid",
    "attempts",
    "form",
    "send_started_at",
    "data_categories",
    "lease_owner",
)


@dataclass(frozen=True)
class SweepReport:
    taken_over: int
    uncertain: int
    due: int
    urgent_due: bool = False  # urgent notifications among the due ones


def leases_take_over(
    *, now: datetime | None = None, limit: int = 1000, floor: int | None = None
) -> tuple[int, int]:
    """Put claims whose lease ran out back in the queue; returns (taken over, uncertain).

    A claim whose message was never handed to the Send API simply goes back. One whose
    message was (`send_started_at`) may have reached the person before its worker died:
    it is flagged `uncertain`, its lost attempt recorded and audited, and counted, and it
    waits for the message's echo (`awaiting_echo`) up to `NOTIFICATIONS_ECHO_WAIT_SECONDS`
    before it may be sent again, once; if the echo came already, it is due at once, and
    the claim finds the echo and records it sent (`Claiming.echo_wait_over`).
    """
    now = now or timezone.now()
    floor = open_floor() if floor is None else floor
    with transaction.atomic():
        lost = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(open_ids_q(floor), state=State.IN_FLIGHT, lease_expires_at__lt=now)
            .order_by("lease_expires_at")
            .values_list(*_LOST)[:limit]
        )
        if not lost:
            return 0, 0
        started = [row for row in lost if row[9] is not None]
        fresh = [row[0] for row in lost if row[9] is None]
        echoed = _requeue(fresh, started, now)
        _lost_attempts_insert(started)
        _lost_attempts_audit(started)
        _settle_echoed(echoed)
    if started:
        log.warning(
            "%d notifications wait for their echo after their worker died mid-send", len(started)
        )
    return len(lost), len(started)


def _requeue(
    fresh: list[int], started: list[tuple[Any, ...]], now: datetime
) -> dict[int, tuple[str, datetime]]:
    """Back in the queue; the ones whose message's echo came already are returned, the
    others wait for it. A digest's originals keep `digest`, the notification whose
    reference its echo will carry."""
    echoed = echoes_for([row[0] for row in started])
    wait = timedelta(seconds=settings.NOTIFICATIONS_ECHO_WAIT_SECONDS)
    reset = {
        "state": State.PENDING,
        "next_attempt_at": now,
        "lease_owner": "",
        "lease_expires_at": None,
        "send_started_at": None,
        "digest": None,
    }
    Notification.objects.filter(pk__in=fresh).update(**reset)
    digests = dict(
        Notification.objects.filter(pk__in=[row[0] for row in started]).values_list("pk", "digest")
    )
    for pk, _, _, _, _, _, _, attempts, *_ in started:
        Notification.objects.filter(pk=pk).update(
            **{**reset, "digest": digests.get(pk), "next_attempt_at": now + wait},
            attempts=attempts + 1,
            uncertain=True,
            reason=Reason.AWAITING_ECHO,
            detail="The worker sending it died mid-send: waiting for the message's echo "
            "before sending it again.",
        )
    return echoed


def _settle_echoed(echoed: dict[int, tuple[str, datetime]]) -> None:
    """Lost claims whose message's echo came before the take-over: sent, as the echo says
    (after their lost attempt was recorded and audited as uncertain)."""
    if not echoed:
        return
    notifications = (
        Notification.objects.select_for_update(of=("self",))
        .select_related("event")
        .filter(pk__in=list(echoed))
        .order_by("pk")
    )
    notifications_settle(settled=[(n, *echoed[n.pk]) for n in notifications])
    echoes_settled(list(echoed))
    metrics.settled_observe(len(echoed))


def _lost_attempts_insert(started: list[tuple[Any, ...]]) -> None:
    DeliveryAttempt.objects.bulk_create(
        [
            DeliveryAttempt(
                notification_id=pk,
                number=attempts + 1,
                form=form,
                started_at=started_at,
                outcome=AttemptOutcome.WORKER_LOST,
                detail="The worker died before recording the platform's answer.",
            )
            for pk, _, _, _, _, _, _, attempts, form, started_at, _, _ in started
        ]
    )


def _lost_attempts_audit(started: list[tuple[Any, ...]]) -> None:
    """Data may have left the bank: one `send_uncertain` entry per lost attempt."""
    by_bank: dict[int, list[AuditEntry]] = defaultdict(list)
    for (
        pk,
        bank_id,
        consent_id,
        event_ref,
        event_type,
        page_id,
        psid,
        attempts,
        form,
        _,
        cats,
        worker,
    ) in started:
        by_bank[bank_id].append(
            AuditEntry(
                action="notification.send_uncertain",
                target_type="linking.consent",
                target_id=str(consent_id),
                details={
                    "notification": pk,
                    "event": event_ref,
                    "event_type": event_type,
                    "form": form,
                    "attempt": attempts + 1,
                    "outcome": AttemptOutcome.WORKER_LOST,
                    "page_id": page_id,
                    "psid": psid,
                    "worker": worker,
                },
                data_categories=cats,
            )
        )
    for bank_id in sorted(by_bank):
        audit_record_many(actor=ENGINE, bank_id=bank_id, entries=by_bank[bank_id])


def outbox_sweep(*, now: datetime | None = None) -> SweepReport:
    """Raise the open notifications' floor, take over expired leases, drop stale receipts,
    and say how much is due."""
    now = now or timezone.now()
    floor = open_floor_raise()
    taken, uncertain = leases_take_over(now=now, floor=floor)
    waiting_wake_stranded(now=now, floor=floor)
    DeliveryReceipt.objects.filter(received_at__lt=now - RECEIPT_LIFETIME).delete()
    cap = settings.NOTIFICATIONS_CLAIM_BATCH + 1
    pending = Notification.objects.filter(
        open_ids_q(floor),
        state=State.PENDING,
        next_attempt_at__lte=now,
        bank__integration__status=MessengerIntegration.Status.LIVE,
    )
    due = pending.values("pk")[:cap].count()
    urgent_due = bool(due) and pending.filter(urgency=Notification.Urgency.URGENT).exists()
    return SweepReport(taken_over=taken, uncertain=uncertain, due=due, urgent_due=urgent_due)
